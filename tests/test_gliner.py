"""GLiNER.predict on long texts, bad input, strict loading, save/load round trips and prompt assembly."""

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch

from gliner_ray import GLiNER
from gliner_ray.checkpoint import CONFIG_FILE
from tests.helpers.context_free import save_context_free_gliner

LABELS = ["person", "place"]


@pytest.fixture(scope="module")
def tiny(tiny_gliner_dir):
    return GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")


# ---- long texts -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def context_free_dir(tmp_path_factory, context_free_encoder_dir):
    """A GLiNER whose scores depend on the words of a span alone: no attention layers, zeroed position and
    segment embeddings, no LSTM, and 4096 positions. Windowing must then give exactly the unwindowed result."""
    path = tmp_path_factory.mktemp("context-free")
    save_context_free_gliner(context_free_encoder_dir, path)
    return path


def test_entities_anywhere_in_a_long_text_are_found_once_at_the_right_offsets(context_free_dir):
    windowed = GLiNER.from_pretrained(context_free_dir, device="cpu")
    whole = GLiNER.from_pretrained(context_free_dir, device="cpu")  # same weights, one window for everything
    whole.config.max_len = 100_000
    whole.prompt_tokenizer.max_tokens = 4096

    filler = "the committee reviewed the annual budget and the minutes of the previous meeting ."

    def best_scores(words, planted_at):
        """Best candidate score among spans containing word ``planted_at`` and among all other spans."""
        rows = windowed.prompt_tokenizer.rows(0, words, LABELS, 384, 12)
        candidates = windowed.score_rows(rows, threshold=1e-6)[0]
        inside = max(c.score for c in candidates if c.start == c.end == planted_at)
        outside = max(c.score for c in candidates if not c.start <= planted_at <= c.end)
        return inside, outside

    # Plant a word that outscores every filler span: a threshold between the two then selects it alone.
    for planted in ["Zanzibar", "Kilimanjaro", "Mozambique", "Tanganyika", "Madagascar", "Serengeti", "Dodoma"]:
        inside, outside = best_scores(f"{filler} {planted} {filler}".split(), len(filler.split()))
        if inside > outside + 1e-3:
            break
    else:
        pytest.fail("no planted word outscores the filler with this seed")
    threshold = (inside + outside) / 2

    parts = []
    for i in range(220):  # ~3,300 words; the planted word lands at many places relative to window edges
        parts.append(filler)
        if i % 7 == 3:
            parts.append(planted)
    parts.append(planted)  # and on the last page
    text = " ".join(parts)
    words = text.split()
    assert len(words) > 3000

    assert len(windowed.prompt_tokenizer.rows(0, words, LABELS, 384, 12)) > 8
    assert len(whole.prompt_tokenizer.rows(0, words, LABELS, 100_000, 12)) == 1
    got = windowed.predict([text], LABELS, threshold=threshold)[0]
    expected = whole.predict([text], LABELS, threshold=threshold)[0]
    assert [(e["start"], e["end"], e["label"]) for e in got] == [(e["start"], e["end"], e["label"]) for e in expected]
    for a, b in zip(got, expected):
        assert abs(a["score"] - b["score"]) < 1e-5
    last = text.rindex(planted)
    assert any(e["start"] <= last and e["end"] >= last + len(planted) for e in got)
    assert len(got) >= 30
    assert all(text[e["start"] : e["end"]] == e["text"] for e in got)


def test_a_label_too_long_for_any_prompt_is_a_clear_error(tiny_gliner_dir):
    # Many labels are split into passes (test_label_passes.py); only one that cannot fit even alone is refused.
    # A prompt word keeps at most 32 sub-tokens, so an encoder of 96 positions shows it (512 always fit one).
    small = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")
    small.prompt_tokenizer.max_tokens = 96
    long_label = " ".join(["supercalifragilistic"] * 20)
    with pytest.raises(ValueError, match="the entity type 'supercalifragilistic supercal.*shorten it"):
        small.predict(["Alice met Bob."], ["person", long_label])
    assert small.predict(["Alice met Bob."], ["person", "city"]) is not None


# ---- predict's contract -----------------------------------------------------------------------------------------
def test_bad_input_is_refused_clearly(tiny):
    with pytest.raises(ValueError, match="empty"):
        tiny.predict(["Alice"], [])
    with pytest.raises(ValueError, match=r"texts\[1\] is a int"):
        tiny.predict(["Alice", 3], LABELS)
    for threshold in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            tiny.predict(["Alice"], LABELS, threshold=threshold)
    with pytest.raises(ValueError, match="2 label lists for 3 texts"):
        tiny.predict(["a", "b", "c"], [["x"], ["y"]])


def test_empty_texts_give_no_entities_and_labels_merge(tiny):
    texts = ["", "   ", "Alice met Bob in Paris on Monday."]
    assert tiny.predict(texts, LABELS, threshold=0.01)[:2] == [[], []]
    once = tiny.predict(texts, LABELS, threshold=0.3)
    assert tiny.predict(texts, LABELS + ["person", "place"], threshold=0.3) == once
    assert tiny.predict(texts[2], LABELS, threshold=0.3) == once[2:]  # a single string is one text


def test_per_text_labels_equal_separate_calls(tiny, assert_same_entities):
    texts = ["Alice met Bob in Paris.", "The river Rhine flows through Basel."]
    labels = [["person", "city"], ["river", "city", "country"]]
    together = tiny.predict(texts, labels, threshold=0.3)
    assert_same_entities(together, [tiny.predict([t], l, threshold=0.3)[0] for t, l in zip(texts, labels)])
    assert {e["label"] for e in together[1]} <= {"river", "city", "country"}


def test_batch_size_does_not_change_results(tiny, assert_same_entities):
    texts = [f"Sentence {i} mentions Alice {'and Bob ' * i}in Paris." for i in range(9)]
    one_by_one = tiny.predict(texts, LABELS, threshold=0.3, batch_size=1)
    assert_same_entities(tiny.predict(texts, LABELS, threshold=0.3, batch_size=4), one_by_one)
    assert sum(map(len, one_by_one)) > 9


def test_prompt_assembly_matches_the_tokenizers_own_encoding(tiny):
    words = "Ünal's state-of-the-art X-ray cost $3.50 in 東京 !".split()
    row = tiny.prompt_tokenizer.rows(0, words, LABELS, 384, 12)[0]
    batch = tiny.prompt_tokenizer.collate([row.prompt], [row.words])
    prompt = ["<<ENT>>", "person", "<<ENT>>", "place", "<<SEP>>"]
    expected = tiny.tokenizer(prompt + words, is_split_into_words=True)["input_ids"]
    assert batch.input_ids[0].tolist() == expected
    assert [expected[i] for i in batch.type_index[0].tolist()] == [tiny.config.class_token_index] * 2


# ---- loading and saving -----------------------------------------------------------------------------------------
def test_round_trip_predicts_the_same(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "copy")
    again = GLiNER.from_pretrained(tmp_path / "copy", device="cpu")
    texts = ["Alice met Bob in Paris.", "Nothing here"]
    assert again.predict(texts, LABELS, threshold=0.2) == tiny.predict(texts, LABELS, threshold=0.2)


def test_a_directory_that_is_not_a_checkpoint_says_what_is_missing(tmp_path, tiny_gliner_dir):
    with pytest.raises(FileNotFoundError, match="gliner_config.json is missing"):
        GLiNER.from_pretrained(tmp_path)
    shutil.copy(f"{tiny_gliner_dir}/{CONFIG_FILE}", tmp_path / CONFIG_FILE)
    with pytest.raises(FileNotFoundError, match="model.safetensors nor pytorch_model.bin"):
        GLiNER.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        GLiNER.from_pretrained(tmp_path / "nope")


def test_loading_is_strict(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    tiny.save_pretrained(tmp_path / "ok")
    state = load_file(tmp_path / "ok" / "model.safetensors")
    for name, change in [("missing", lambda s: s.pop("prompt_rep_layer.3.bias")),
                         ("unexpected", lambda s: s.update({"span_rep_layer.span_rep_layer.extra.weight": torch.ones(1)}))]:
        broken = tmp_path / name
        shutil.copytree(tmp_path / "ok", broken)
        edited = dict(state)
        change(edited)
        save_file(edited, broken / "model.safetensors")
        with pytest.raises(ValueError, match=r"missing \[.prompt_rep_layer.3.bias.\]|unexpected \[.span_rep_layer.span_rep_layer.extra.weight.\]"):
            GLiNER.from_pretrained(broken)
    # a buffer that newer transformers rebuild may be absent
    edited = {k: v for k, v in state.items() if not k.endswith("position_ids")}
    save_file(edited, tmp_path / "ok" / "model.safetensors")
    GLiNER.from_pretrained(tmp_path / "ok")


@pytest.mark.parametrize("key,value", [("span_mode", "query"), ("labels_decoder", "gpt2"), ("subtoken_pooling", "mean"),
                                       ("relations_layer", "gcn"), ("model_type", "gliner_streaming_span"),
                                       ("represent_spans", True), ("words_splitter_type", "mecab")])
def test_unsupported_variants_are_refused_by_name(tiny_gliner_dir, tmp_path, key, value):
    path = tmp_path / "variant"
    shutil.copytree(tiny_gliner_dir, path)
    config = json.loads((path / CONFIG_FILE).read_text())
    config[key] = value
    (path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"{key}.*{value}|{value}.*{key}"):
        GLiNER.from_pretrained(path)


def test_pickle_weights_are_loaded_without_running_code(tiny, tmp_path):
    """A .bin checkpoint that smuggles a callable is refused by torch.load(weights_only=True)."""
    tiny.save_pretrained(tmp_path / "ckpt")
    from safetensors.torch import load_file

    state = load_file(tmp_path / "ckpt" / "model.safetensors")
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    torch.save(state, tmp_path / "ckpt" / "pytorch_model.bin")
    GLiNER.from_pretrained(tmp_path / "ckpt")  # plain tensors load
    evil = copy.copy(state)
    evil["payload"] = Evil()
    torch.save(evil, tmp_path / "ckpt" / "pytorch_model.bin")
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        GLiNER.from_pretrained(tmp_path / "ckpt")


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_hub_id_that_cannot_be_fetched_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no traffic: the hub client refuses at once
    with pytest.raises(OSError, match="GLiNER checkpoint 'urchade/gliner_small-v2.1' is not in the local Hugging Face "
                                      "cache.*`hf download urchade/gliner_small-v2.1`.*local checkpoint"):
        GLiNER.from_pretrained("urchade/gliner_small-v2.1")


def test_a_checkpoint_on_s3_loads(tiny, tiny_gliner_dir, s3_bucket, tmp_path, assert_same_entities):
    import fsspec

    fs = fsspec.filesystem("s3")
    fs.put(f"{tiny_gliner_dir}/", f"{s3_bucket}/runs/final/", recursive=True)
    loaded = GLiNER.from_pretrained(f"s3://{s3_bucket}/runs/final", device="cpu", cache_dir=str(tmp_path))
    (local,) = [p for p in tmp_path.iterdir() if (p / ".complete").is_file()]
    assert {p.name for p in local.iterdir()} == {".complete", *(p.name for p in Path(tiny_gliner_dir).iterdir())}
    texts = ["Alice met Bob in Paris."]
    assert_same_entities(loaded.predict(texts, LABELS, threshold=0.2), tiny.predict(texts, LABELS, threshold=0.2))
    with pytest.raises(FileNotFoundError, match="gliner_config.json is missing"):
        GLiNER.from_pretrained(f"s3://{s3_bucket}/runs/nothing", cache_dir=str(tmp_path))

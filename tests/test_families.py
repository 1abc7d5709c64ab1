"""Checkpoint families other than uni-encoder span models, built and saved by the reference ``gliner`` library on
local encoders, load strictly in ours and predict the same entities and scores; what we save, it loads."""

import shutil

import pytest
from safetensors.torch import load_file, save_file

from gliner_ray import GLiNER
from gliner_ray.predict import TokenGLiNER
from gliner_ray.predict.token import token_spans
from tests.helpers.reference import TEXTS, build_reference

LABELS = ["person", "location", "organization", "date"]
MODES = [(True, False), (False, False), (True, True), (False, True)]  # (flat_ner, multi_label)


def assert_parity(path, assert_same_entities, texts=TEXTS, labels=LABELS, threshold=0.5, min_entities=10):
    from gliner import GLiNER as ReferenceGLiNER

    reference = ReferenceGLiNER.from_pretrained(str(path), map_location="cpu")
    ours = GLiNER.from_pretrained(path, device="cpu")
    found = 0
    for flat_ner, multi_label in MODES:
        expected = reference.inference(texts, labels, threshold=threshold, flat_ner=flat_ner, multi_label=multi_label)
        got = ours.predict(texts, labels, threshold=threshold, flat_ner=flat_ner, multi_label=multi_label)
        assert_same_entities(got, expected)
        found += sum(map(len, got))
    assert found >= min_entities, "the comparison must involve real entities"
    return ours


# ---- token-level ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm_token(tmp_path_factory, minilm_dir):
    return build_reference(tmp_path_factory.mktemp("token-minilm"), model_name=minilm_dir, hidden_size=64,
                           span_mode="token_level")


def test_token_level_minilm_parity(minilm_token, assert_same_entities):
    ours = assert_parity(minilm_token, assert_same_entities)
    assert isinstance(ours, TokenGLiNER)
    nested = ours.predict(TEXTS[:1], LABELS, flat_ner=False)[0]
    assert any(a["start"] <= b["start"] and b["end"] <= a["end"] and a != b for a in nested for b in nested)


@pytest.mark.parametrize("safetensors", [True, False])
def test_token_level_tiny_bert_parity(tiny_bert_dir, tmp_path, safetensors, assert_same_entities):
    path = build_reference(tmp_path / "ref", safetensors=safetensors, model_name=tiny_bert_dir, hidden_size=32,
                           span_mode="token_level")
    assert (path / ("model.safetensors" if safetensors else "pytorch_model.bin")).is_file()
    assert_parity(path, assert_same_entities)


def test_token_level_save_round_trip_loads_in_the_reference(minilm_token, tmp_path, assert_same_entities):
    from gliner import GLiNER as ReferenceGLiNER

    ours = GLiNER.from_pretrained(minilm_token, device="cpu")
    ours.save_pretrained(tmp_path / "ours")
    reference = ReferenceGLiNER.from_pretrained(str(tmp_path / "ours"), map_location="cpu")
    assert type(reference.model).__name__ == "UniEncoderTokenModel"
    expected = reference.inference(TEXTS, LABELS, threshold=0.5, flat_ner=False)
    assert_same_entities(ours.predict(TEXTS, LABELS, flat_ner=False), expected)
    assert_same_entities(GLiNER.from_pretrained(tmp_path / "ours").predict(TEXTS, LABELS, flat_ner=False), expected)


def test_token_level_loading_is_strict(minilm_token, tmp_path):
    path = tmp_path / "broken"
    shutil.copytree(minilm_token, path)
    state = load_file(path / "model.safetensors")
    del state["scorer.proj_label.bias"]
    save_file(state, path / "model.safetensors")
    with pytest.raises(ValueError, match=r"missing \['scorer.proj_label.bias'\]"):
        GLiNER.from_pretrained(path)


def test_token_spans_follow_start_end_and_inside():
    # words x types x (start, end, inside); one type
    probs = [[(0.9, 0.1, 0.8)], [(0.1, 0.7, 0.6)], [(0.1, 0.9, 0.3)], [(0.8, 0.8, 0.9)]]
    assert token_spans(probs, 0.5) == [(0, 1, 0, 0.6), (3, 3, 0, 0.8)]  # 0..2 fails inside at word 2
    assert token_spans(probs, 0.95) == []


@pytest.fixture(scope="module")
def context_free_token_dir(tmp_path_factory, context_free_encoder_dir):
    """A token-level model whose scores depend on each word alone (no attention layers, no position embeddings,
    no LSTM), so windows over a long text must give exactly the unwindowed entities."""
    encoder_dir = context_free_encoder_dir
    return build_reference(tmp_path_factory.mktemp("context-free-token"), model_name=str(encoder_dir),
                           hidden_size=32, span_mode="token_level", num_rnn_layers=0)


@pytest.mark.parametrize("flat_ner", [True, False])
def test_token_level_long_texts_are_windowed_without_loss(context_free_token_dir, flat_ner):
    windowed = GLiNER.from_pretrained(context_free_token_dir, device="cpu")
    whole = GLiNER.from_pretrained(context_free_token_dir, device="cpu")
    whole.config.max_len = 100_000
    whole.prompt_tokenizer.max_tokens = 4096
    sentence = "Barack Obama met Angela Merkel in Berlin on Monday , then flew to New York with Michelle ."
    text = " ".join(f"{sentence} Report {i} ." for i in range(150))
    words = text.split()
    assert len(windowed.prompt_tokenizer.rows(0, words, LABELS, 384, 12)) > 4
    assert len(whole.prompt_tokenizer.rows(0, words, LABELS, 100_000, 12)) == 1
    got = windowed.predict([text], LABELS, threshold=0.6, flat_ner=flat_ner)[0]
    expected = whole.predict([text], LABELS, threshold=0.6, flat_ner=flat_ner)[0]
    assert len(expected) > 100 and max(len(e["text"].split()) for e in expected) < 12
    assert [(e["start"], e["end"], e["label"]) for e in got] == [(e["start"], e["end"], e["label"]) for e in expected]
    assert all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(got, expected))
    assert all(text[e["start"] : e["end"]] == e["text"] for e in got)


# ---- bi-encoders ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["markerV0", "token_level"])
def bi_encoder(request, tmp_path_factory, minilm_dir, tiny_bert_dir):
    """A bi-encoder on MiniLM for texts and the tiny BERT for labels (32 wide: a projection to 64)."""
    return build_reference(tmp_path_factory.mktemp(f"bi-{request.param}"), model_name=minilm_dir,
                           labels_encoder=tiny_bert_dir, hidden_size=64, span_mode=request.param)


def test_bi_encoder_parity(bi_encoder, assert_same_entities):
    from gliner_ray.predict import BiEncoderGLiNER

    ours = assert_parity(bi_encoder, assert_same_entities)
    assert isinstance(ours, BiEncoderGLiNER)
    assert ours.model.label_encoder.projection is not None


@pytest.mark.parametrize("span_mode", ["marker", "token_level"])
def test_bi_encoder_pickle_weights_parity(tmp_path, tiny_bert_dir, span_mode, assert_same_entities):
    path = build_reference(tmp_path / "ref", safetensors=False, model_name=tiny_bert_dir,
                           labels_encoder=tiny_bert_dir, hidden_size=32, span_mode=span_mode)
    assert (path / "pytorch_model.bin").is_file()
    assert_parity(path, assert_same_entities)


def test_bi_encoder_encodes_each_label_once(bi_encoder, assert_same_entities):
    ours = GLiNER.from_pretrained(bi_encoder, device="cpu")
    encoded = []
    ours.model.label_encoder.register_forward_hook(lambda module, args, out: encoded.append(out.shape[0]))
    first = ours.predict(TEXTS, LABELS)
    assert encoded == [len(LABELS)]
    assert_same_entities(ours.predict(TEXTS[::-1], LABELS)[::-1], first)  # no new labels: no label encoder pass
    assert encoded == [len(LABELS)]
    ours.predict(TEXTS, [*LABELS, "city"])
    assert encoded == [len(LABELS), 1]
    per_text = ours.predict(TEXTS[:2], [["person", "city"], LABELS])
    assert_same_entities(per_text, [ours.predict(TEXTS[:1], ["person", "city"])[0], first[1]])
    assert encoded == [len(LABELS), 1]


def test_bi_encoder_inputs_prepared_apart_carry_no_prompt(bi_encoder):
    """Extraction's CPU workers plan model rows from the tokenizer side alone: the same rows as the model's own."""
    from gliner_ray.predict.families import load_prompt_tokenizer

    ours = GLiNER.from_pretrained(bi_encoder, device="cpu")
    prompt_tokenizer, _ = load_prompt_tokenizer(bi_encoder)
    words = TEXTS[0].split()
    apart = prompt_tokenizer.rows(0, words, LABELS, 384, 12)
    own = ours.prompt_tokenizer.rows(0, words, LABELS, 384, 12)
    as_lists = lambda rows: [(r.window, r.labels, r.prompt, r.words) for r in rows]  # noqa: E731
    assert as_lists(apart) == as_lists(own) and apart[0].prompt == []


def test_bi_encoder_save_round_trip_loads_in_the_reference(bi_encoder, tmp_path, assert_same_entities):
    from gliner import GLiNER as ReferenceGLiNER

    ours = GLiNER.from_pretrained(bi_encoder, device="cpu")
    ours.save_pretrained(tmp_path / "ours")
    reference = ReferenceGLiNER.from_pretrained(str(tmp_path / "ours"), map_location="cpu")
    assert type(reference.model).__name__.startswith("BiEncoder")
    expected = reference.inference(TEXTS, LABELS, threshold=0.5, flat_ner=False)
    assert_same_entities(ours.predict(TEXTS, LABELS, flat_ner=False), expected)
    assert_same_entities(GLiNER.from_pretrained(tmp_path / "ours").predict(TEXTS, LABELS, flat_ner=False), expected)

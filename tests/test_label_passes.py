"""Label passes: labels too many for one prompt are split into the fewest balanced groups, each window is scored
once per group, and the union of all groups' candidates is decoded together, as one pass would be."""

import pytest

from gliner_ray import GLiNER
from gliner_ray.decode import greedy_decode
from gliner_ray.encoding import MIN_TEXT_TOKENS, window_rows
from gliner_ray.text import balanced_groups, fewest_groups
from test_families import build_reference

MANY_LABELS = [f"entity type number {i} with a{' long' * (i % 3)} descriptive name" for i in range(60)]
TEXTS = ["Alice met Bob in Paris on Monday .", "The United Nations sent Ada Lovelace to Oslo .", "Nothing here ."]
LONG_TEXT = " ".join(f"Grace Hopper visited IBM in Paris , report {i} ." for i in range(50))


def test_fewest_balanced_groups():
    assert fewest_groups([3, 3, 3], 9) == [[0, 1, 2]]  # all fit: one group
    assert fewest_groups([5, 4, 3, 3, 1], 8) == [[0, 3], [1, 2, 4]]  # 16 in two groups of 8: balanced, in order
    assert balanced_groups([1, 1, 1, 1], 3) == [[0, 3], [1], [2]]
    groups = fewest_groups([7] * 10 + [2] * 7, 20)
    assert len(groups) == 5 and sorted(i for g in groups for i in g) == list(range(17))
    with pytest.raises(ValueError, match="cannot fit"):
        fewest_groups([3, 30], 20)


@pytest.fixture(scope="module", params=["span", "token"])
def model(request, tiny_gliner_dir, tmp_path_factory, tiny_bert_dir):
    if request.param == "span":
        return GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")
    path = build_reference(tmp_path_factory.mktemp("token"), model_name=tiny_bert_dir, hidden_size=32,
                           span_mode="token_level")
    token = GLiNER.from_pretrained(path, device="cpu")
    token.config.max_len = 200  # shorter windows: token decoding walks each window's words in Python
    return token


def test_passes_fit_and_cover_the_labels(model):
    tokenizer = model.prompt_tokenizer
    assert tokenizer.label_passes(MANY_LABELS[:3]) == [tuple(MANY_LABELS[:3])]
    passes = tokenizer.label_passes(MANY_LABELS)
    assert len(passes) > 1 and sorted(label for group in passes for label in group) == sorted(MANY_LABELS)
    budgets = [tokenizer.text_token_budget(group) for group in passes]
    assert min(budgets) >= MIN_TEXT_TOKENS and max(budgets) - min(budgets) < 20  # balanced
    # The fewest: one pass fewer could not hold all the labels' prompt tokens.
    capacity = tokenizer.text_token_budget(()) - MIN_TEXT_TOKENS
    label_tokens = sum(tokenizer.text_token_budget(()) - budget for budget in budgets)
    assert label_tokens > (len(passes) - 1) * capacity


def test_passes_decode_the_union_of_separate_runs(model):
    """The result equals each group run on its own (same windows) and the union of their candidates decoded."""
    tokenizer, config = model.prompt_tokenizer, model.config
    texts = [*TEXTS, LONG_TEXT]
    words = [text.split() for text in texts]
    passes = tokenizer.label_passes(MANY_LABELS)
    separate = [[] for _ in texts]
    for group in passes:
        prompt = tokenizer.prompt_token_ids(group)
        for i, text_words in enumerate(words):
            text, windows = tokenizer.plan(text_words, MANY_LABELS, config.max_len, config.max_width)
            rows = window_rows(i, text, windows, group, prompt)
            for spans in model.score_rows(rows, threshold=0.3, batch_size=1):
                separate[i] += spans
        if len(words[0]) < 40:  # a short text has one window whatever the prompt: a plain call with the group
            alone = model.prompt_tokenizer.rows(0, words[0], group, config.max_len, config.max_width)
            assert len(alone) == 1
    assert len(tokenizer.plan(words[-1], MANY_LABELS, config.max_len, config.max_width)[1]) > 1
    for flat_ner, multi_label in [(True, False), (False, True)]:  # flat; nested with several labels per span
        got = model.predict_words(words, MANY_LABELS, threshold=0.3, flat_ner=flat_ner, multi_label=multi_label,
                                 batch_size=1)  # one row per forward: scores exact, not up to batch padding
        expected = [greedy_decode(c, flat_ner=flat_ner, multi_label=multi_label) for c in separate]
        assert got == expected
        assert sum(map(len, got)) > 10
    found = {s.label for spans in separate for s in spans}
    assert all(found & set(group) for group in passes)  # every pass brings candidates to the union


def test_one_pass_is_unchanged(model):
    """Labels that fit one prompt give the rows (and so the entities) of before: one per window."""
    tokenizer, config = model.prompt_tokenizer, model.config
    text, windows = tokenizer.plan(LONG_TEXT.split(), ["person", "city"], config.max_len, config.max_width)
    assert len(tokenizer.rows(0, LONG_TEXT.split(), ["person", "city"], config.max_len, config.max_width)) == len(windows)


def test_extraction_scores_every_window_once_per_pass(tmp_path, tiny_gliner_dir):
    """The model actor (without Ray) gives ``predict``'s mentions with labels that need several passes."""
    import pyarrow.parquet as pq

    from gliner_ray.corpus import Record
    from gliner_ray.extract import Settings
    from gliner_ray.extract.chunks import plan_chunk
    from gliner_ray.extract.scoring import ScoreChunks

    texts = [*TEXTS, LONG_TEXT]
    settings = Settings(model=tiny_gliner_dir, labels=tuple(MANY_LABELS), threshold=0.3).cleaned()
    chunk = plan_chunk("k", "src", 0, True, [Record(i, f"d{i}", t) for i, t in enumerate(texts)], settings)
    actor = ScoreChunks(settings, str(tmp_path / "out"), batch_size=1, threads=1)
    assert len(actor._passes(settings.labels)) > 1
    summary = actor(chunk).to_pylist()[0]
    table = pq.read_table(tmp_path / "out" / "_tmp" / "k").to_pylist()
    expected = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu").predict(texts, MANY_LABELS, threshold=0.3, batch_size=1)
    assert summary["mentions"] == len(table) == sum(map(len, expected)) > 10
    got = [(r["doc_id"], r["start"], r["end"], r["label"]) for r in table]
    assert sorted(got) == sorted((f"d{i}", e["start"], e["end"], e["label"]) for i, doc in enumerate(expected) for e in doc)

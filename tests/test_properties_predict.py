"""Properties of ``GLiNER.predict`` on any text, with tiny real models: every entity lies inside its text at its
offsets, flat output never overlaps, nested output never crosses, one label per span unless multi-label; and a
long text cut into windows gives each entity once, as the same model reading it in one window does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gliner_ray import GLiNER
from tests.helpers.context_free import save_context_free_gliner

LABELS = ["person", "place", "thing"]
BOUNDED = settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PIECES = ["Ada Lovelace", "Paris", "e\u0301", "👩\u200d💻", "\u05e9\u05dc\u05d5\u05dd", "東京", "\x00", "\u2028", " ", ".", "-"]
texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=10), max_size=25).map(" ".join)
VOCABULARY = ["the", "committee", "met", "Zanzibar", "Oslo", "Ada", "Lovelace", "in", ".", "budget", "IBM", ","]


@pytest.fixture(scope="module")
def tiny(tiny_gliner_dir):
    return GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")


@pytest.fixture(scope="module")
def windowed_and_whole(tmp_path_factory, context_free_encoder_dir):
    """The same context-free model twice: cut into windows of 40 words, and reading any text in one window."""
    path = tmp_path_factory.mktemp("context-free")
    save_context_free_gliner(context_free_encoder_dir, path)
    windowed, whole = GLiNER.from_pretrained(path, device="cpu"), GLiNER.from_pretrained(path, device="cpu")
    windowed.config.max_len = 40
    whole.config.max_len = 100_000
    whole.prompt_tokenizer.max_tokens = 4096
    return windowed, whole


def clash(a: dict, b: dict, flat_ner: bool) -> bool:
    overlap = a["start"] < b["end"] and b["start"] < a["end"]
    nested = (a["start"] <= b["start"] and b["end"] <= a["end"]) or (b["start"] <= a["start"] and a["end"] <= b["end"])
    return overlap if flat_ner else overlap and not nested


@BOUNDED
@given(text=texts, flat_ner=st.booleans(), multi_label=st.booleans())
def test_entities_are_slices_of_their_text_that_never_clash(tiny, text, flat_ner, multi_label):
    (entities,) = tiny.predict([text], LABELS, threshold=0.2, flat_ner=flat_ner, multi_label=multi_label)

    for e in entities:
        assert 0 <= e["start"] < e["end"] <= len(text) and text[e["start"]:e["end"]] == e["text"]
        assert e["label"] in LABELS and 0.2 < e["score"] <= 1
    bounds = [(e["start"], e["end"]) for e in entities]
    if not multi_label:
        assert len(bounds) == len(set(bounds))
    assert not any(clash(a, b, flat_ner) for i, a in enumerate(entities) for b in entities[i + 1:] if (a["start"], a["end"]) != (b["start"], b["end"]))


@settings(max_examples=15, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.sampled_from(VOCABULARY), min_size=41, max_size=200), flat_ner=st.booleans())
def test_a_long_text_cut_into_windows_gives_each_entity_once(windowed_and_whole, words, flat_ner):
    windowed, whole = windowed_and_whole
    text = " ".join(words)
    assert len(windowed.prompt_tokenizer.rows(0, words, LABELS, windowed.config.max_len, windowed.config.max_width)) > 1

    (cut,) = windowed.predict([text], LABELS, threshold=0.5, flat_ner=flat_ner)
    (one,) = whole.predict([text], LABELS, threshold=0.5, flat_ner=flat_ner)

    key = lambda e: (e["start"], e["end"], e["label"])  # noqa: E731
    assert sorted(map(key, cut)) == sorted(map(key, one))
    assert len(set(map(key, cut))) == len(cut)
    assert [round(e["score"], 4) for e in sorted(cut, key=key)] == [round(e["score"], 4) for e in sorted(one, key=key)]

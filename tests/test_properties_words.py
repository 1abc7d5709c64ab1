"""Properties of the word splitters, window planning and greedy decoding, for any input: words are non-empty,
ordered, non-overlapping slices of their text; windows cover every word and own each exactly once; decoded spans
never overlap (flat) or cross (nested), carry one label unless multi-label, and are the best that fit."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gliner_ray.decode import Span, greedy_decode
from gliner_ray.text import WORD_SPLITTERS, plan_windows, split_in_pieces

BOUNDED = settings(max_examples=100, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Pieces of text the general Unicode strategy seldom draws together: combining marks, emoji sequences (ZWJ, flags,
# skin tones), right-to-left scripts and marks, unspaced scripts, control and odd whitespace, very long words.
PIECES = [
    "e\u0301", "\u0915\u094d\u0937", "👩\u200d💻", "🇫🇷", "👍🏽", "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627",
    "\u200f", "\u202e", "中华人民共和国", "東京タワー", "สวัสดีครับ", "ພາສາລາວ", "\x00", "\x1b[0m", "\r\n", "\u2028", "\u00a0",
    "\u3000", "\t", " ", "-", "_", "'", ".", "a" * 3000, "x-y_z", "\ufeff", "\ud800", "Ⅻ", "①",
]
texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=12), max_size=30).map("".join)


@pytest.mark.parametrize("splitter", sorted(WORD_SPLITTERS))
@BOUNDED
@given(text=texts)
def test_words_are_non_empty_ordered_non_overlapping_slices_of_the_text(splitter, text):
    words = WORD_SPLITTERS[splitter](text)

    assert len(words.words) == len(words.starts) == len(words.ends)
    previous_end = 0
    for word, start, end in zip(*words):
        assert word and word.strip() and previous_end <= start < end <= len(text)
        assert text[start:end] == word
        previous_end = end


@pytest.mark.parametrize("splitter", ["whitespace", "universal"])
@BOUNDED
@given(text=texts, piece_chars=st.integers(1, 50))
def test_splitting_in_pieces_gives_the_words_of_splitting_whole(splitter, text, piece_chars):
    split = WORD_SPLITTERS[splitter]
    pieces = list(split_in_pieces(split, text, piece_chars))

    assert tuple(sum((list(p[k]) for p in pieces), []) for k in range(3)) == tuple(split(text))


@BOUNDED
@given(
    counts=st.lists(st.integers(1, 40), max_size=300), max_words=st.integers(1, 60), max_tokens=st.integers(1, 120),
    overlap=st.integers(0, 24), ends=st.lists(st.booleans(), min_size=300, max_size=300),
)
def test_windows_cover_every_word_and_own_each_exactly_once(counts, max_words, max_tokens, overlap, ends):
    windows = plan_windows(counts, max_words, max_tokens, overlap, ends[: len(counts)])

    if not counts:
        assert windows == []
        return
    assert windows[0].own_start == 0 and windows[-1].own_end == len(counts)
    for window, following in zip(windows, windows[1:]):
        assert window.own_end == following.own_start  # own regions tile the text
        assert following.start > window.start
        if window.end - following.start >= overlap:  # a span of up to overlap // 2 words starting in its own region fits
            assert window.own_end - 1 + overlap // 2 <= window.end
    for window in windows:
        assert window.start <= window.own_start <= window.own_end <= window.end and window.end - window.start <= max_words
        assert window.end - window.start == 1 or sum(min(c, max_tokens) for c in counts[window.start:window.end]) <= max_tokens


spans = st.builds(
    lambda start, width, label, score: Span(start, start + width, label, score),
    st.integers(0, 40), st.integers(0, 5), st.sampled_from(["person", "place", "thing"]),
    st.floats(0, 1, allow_nan=False),
)


def overlaps(a: Span, b: Span) -> bool:
    return a.start <= b.end and b.start <= a.end


def crosses(a: Span, b: Span) -> bool:
    nested = (a.start <= b.start and b.end <= a.end) or (b.start <= a.start and a.end <= b.end)
    return overlaps(a, b) and not nested


@BOUNDED
@given(candidates=st.lists(spans, max_size=40), flat_ner=st.booleans(), multi_label=st.booleans())
def test_decoded_spans_never_clash_carry_one_label_unless_multi_label_and_nothing_that_fits_is_dropped(candidates, flat_ner, multi_label):
    kept = greedy_decode(candidates, flat_ner=flat_ner, multi_label=multi_label)

    assert kept == sorted(kept, key=lambda s: (s.start, s.end)) and all(span in candidates for span in kept)
    bounds = [(s.start, s.end) for s in kept]
    if not multi_label:
        assert len(bounds) == len(set(bounds))
    different = [(a, b) for i, a in enumerate(kept) for b in kept[i + 1:] if (a.start, a.end) != (b.start, b.end)]
    clash = overlaps if flat_ner else crosses
    assert not any(clash(a, b) for a, b in different)
    for span in candidates:  # every dropped candidate clashes with a kept one (or repeats a kept span's bounds)
        if span not in kept:
            assert (span.start, span.end) in bounds or any(clash(span, k) for k in kept)

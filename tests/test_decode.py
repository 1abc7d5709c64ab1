import itertools
import random

from gliner_ray.decode import Span, greedy_decode


def reference_greedy(candidates, flat_ner, multi_label):
    """The definition, O(n^2): best score first; keep a span unless it clashes with one kept before."""

    def clash(a, b):
        if (a.start, a.end) == (b.start, b.end):
            return not multi_label
        disjoint = a.end < b.start or b.end < a.start
        if flat_ner:
            return not disjoint
        nested = (a.start <= b.start and b.end <= a.end) or (b.start <= a.start and a.end <= b.end)
        return not (disjoint or nested)

    kept = []
    for span in sorted(candidates, key=lambda s: (-s.score, s.start, s.end)):
        if not any(clash(span, k) for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: (s.start, s.end))


def test_flat_keeps_best_non_overlapping():
    spans = [Span(0, 1, "person", 0.9), Span(1, 2, "person", 0.8), Span(3, 3, "city", 0.7), Span(0, 1, "org", 0.6)]
    assert greedy_decode(spans, flat_ner=True) == [Span(0, 1, "person", 0.9), Span(3, 3, "city", 0.7)]


def test_multi_label_keeps_the_same_span_with_several_labels():
    spans = [Span(0, 1, "person", 0.9), Span(0, 1, "org", 0.6), Span(1, 2, "city", 0.8)]
    assert greedy_decode(spans, flat_ner=True, multi_label=True) == [Span(0, 1, "person", 0.9), Span(0, 1, "org", 0.6)]


def test_nested_allows_containment_but_not_crossing():
    spans = [Span(0, 4, "org", 0.9), Span(1, 2, "person", 0.8), Span(3, 5, "city", 0.7), Span(4, 4, "x", 0.6)]
    assert greedy_decode(spans, flat_ner=False) == [Span(0, 4, "org", 0.9), Span(1, 2, "person", 0.8), Span(4, 4, "x", 0.6)]


def test_matches_the_definition_on_random_candidates():
    rng = random.Random(0)
    for trial in range(300):
        n, max_width = rng.randint(1, 30), rng.randint(1, 12)
        candidates = [
            Span(s, s + w, rng.choice("abc"), round(rng.random(), 2))  # rounded: many ties
            for s in range(n) for w in range(max_width) if s + w < n and rng.random() < 0.3
        ]
        for flat_ner, multi_label in itertools.product((True, False), repeat=2):
            expected = reference_greedy(candidates, flat_ner, multi_label)
            assert greedy_decode(candidates, flat_ner, multi_label) == expected, (trial, flat_ner, multi_label)

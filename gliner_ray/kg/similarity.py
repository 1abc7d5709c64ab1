"""Near-duplicate names of one type: typos ("Volkswagon"), diacritics folded differently ("Muller" / "Müller"),
company suffixes ("Siemens AG" / "Siemens"), hyphenation ("Rolls-Royce" / "Rolls Royce"). Names with the same
folded key merge with score 1; others are compared only inside blocks (same type, same digits, a shared word
prefix or suffix of 3 letters), so the cost grows with the distinct names, not their square, and merge when the
rapidfuzz ratio reaches the threshold and they differ in one word of 5 letters or more."""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections import defaultdict

from rapidfuzz.distance import Levenshtein
from rapidfuzz.fuzz import ratio

logger = logging.getLogger(__name__)

COMPANY_SUFFIXES = frozenset(
    "inc incorporated corp corporation co company ltd limited llc plc ag gmbh sa nv bv spa ab oy asa kg se".split())
NOT_DIGIT = re.compile(r"\D+")
NOT_WORD = re.compile(r"[^\w]+|_")
MAX_BLOCK = 64  # a larger block (a common word) is skipped: its names share that word and little else
MIN_WORD = 5  # the word that differs must be this long in both names: "Mark" / "Mary" are not a typo


@functools.lru_cache(maxsize=1 << 18)
def fold_words(form: str) -> tuple[str, ...]:
    """The words of a normalized form without diacritics, punctuation (hyphens split words) or a trailing company
    suffix: "siemens ag" -> ("siemens",), "rolls-royce" -> ("rolls", "royce")."""
    plain = form if form.isascii() else "".join(
        ch for ch in unicodedata.normalize("NFKD", form) if not unicodedata.combining(ch))
    words = (plain if plain.replace(" ", "").isalnum() else NOT_WORD.sub(" ", plain)).split()
    while len(words) > 1 and words[-1] in COMPANY_SUFFIXES:
        words.pop()
    return tuple(words)


def block_keys(label: str, words: tuple[str, ...]) -> set[tuple]:
    """The blocks a name joins: its type and digits with the first and last 3 letters of each long word."""
    digits = "".join(NOT_DIGIT.sub("", word) for word in words)
    keys = set()
    for word in words:
        if len(word) >= MIN_WORD:
            keys.update({(label, digits, "<" + word[:3]), (label, digits, word[-3:] + ">")})
    return keys


def close_enough(a: tuple[str, ...], b: tuple[str, ...], threshold: float) -> float:
    """The similarity of two folded names (0..1) when they are one typo apart: same number of words, one differs,
    by at most 1 edit (2 for words of 9 letters or more), in words of ``MIN_WORD`` letters; else 0."""
    if len(a) != len(b):
        return 0.0
    differ = [(x, y) for x, y in zip(a, b) if x != y]
    if len(differ) != 1:
        return 0.0
    x, y = differ[0]
    if min(len(x), len(y)) < MIN_WORD or Levenshtein.distance(x, y) > (2 if min(len(x), len(y)) >= 9 else 1):
        return 0.0
    score = ratio(" ".join(a), " ".join(b)) / 100.0
    return score if score >= threshold else 0.0


def similar_pairs(ids: list[str], labels: list[str], forms: list[str], threshold: float) -> list[tuple]:
    """``(i, j, score)`` index pairs of names of one type to merge: equal folded keys (score 1), then typos inside
    blocks (``close_enough``). Deterministic in the order of ``ids``."""
    words = [fold_words(form) for form in forms]
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for i, (label, folded) in enumerate(zip(labels, words)):
        if folded:  # a name without letters or digits ("...") is like no other
            by_key[(label, "".join(folded))].append(i)
    pairs = [(group[0], j, 1.0) for group in by_key.values() for j in group[1:]]
    blocks: dict[tuple, list[int]] = defaultdict(list)
    for group in by_key.values():  # one representative per folded key
        for key in block_keys(labels[group[0]], words[group[0]]):
            blocks[key].append(group[0])
    seen = set()
    for members in blocks.values():
        if len(members) > MAX_BLOCK:
            continue
        for n, i in enumerate(members):
            for j in members[n + 1:]:
                if (i, j) not in seen:
                    seen.add((i, j))
                    score = close_enough(words[i], words[j], threshold)
                    if score:
                        pairs.append((i, j, score))
    logger.debug("%d names, %d blocks, %d compared, %d similar", len(ids), len(blocks), len(seen), len(pairs))
    return pairs

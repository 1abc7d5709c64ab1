"""Text handling in plain Python: words with character offsets, label prompts, windows over long texts.

Nothing here imports torch, so tokenization planning is testable and cheap to run on CPU workers.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np

# The word splitter of the published GLiNER models: words (with inner hyphens or underscores) or single symbols.
WORD_PATTERN = re.compile(r"\w+(?:[-_]\w+)*|\S")
# Scripts written without spaces between words: "universal" makes each of their characters a word.
UNSPACED_CHARACTERS = (
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303c\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"  # Han, kana (Chinese, Japanese)
    "\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff"  # Thai, Lao, Myanmar, Khmer
)
UNIVERSAL_WORD_PATTERN = re.compile(rf"[{UNSPACED_CHARACTERS}]|(?:(?![{UNSPACED_CHARACTERS}])\w)+(?:[-_](?:(?![{UNSPACED_CHARACTERS}])\w)+)*|\S")
WHITESPACE = re.compile(r"\s")
# Words after which a window boundary reads naturally.
SENTENCE_END_WORDS = frozenset({".", "!", "?", "…", "。", "！", "？"})


class Words(NamedTuple):
    """A text split into words; ``text[starts[i]:ends[i]] == words[i]``."""

    words: list[str]
    starts: list[int]
    ends: list[int]


def split_words(text: str) -> Words:
    """Split ``text`` into words and symbols with their character offsets (end exclusive)."""
    return _split_with(WORD_PATTERN, text)


def split_universal(text: str) -> Words:
    """``split_words``, but each character of an unspaced script (Chinese, Japanese, Thai...) is a word of its own,
    so that a sentence in those scripts is not one long "word". Needs no language-specific package."""
    return _split_with(UNIVERSAL_WORD_PATTERN, text)


def split_jieba(text: str) -> Words:
    """Chinese words from jieba's segmenter (extra ``gliner-ray[chinese]``); whitespace between words is dropped."""
    jieba = _optional_module("jieba", "chinese")
    jieba.setLogLevel(30)  # its dictionary-loading messages (logging.DEBUG) would go to every worker's stderr
    words, starts, ends = [], [], []
    for word, start, end in jieba.tokenize(text):
        if word.strip():
            words.append(word)
            starts.append(start)
            ends.append(end)
    return Words(words, starts, ends)


# words_splitter_type of gliner_config.json -> the splitter. A model is trained with one; predicting with another
# changes its words and so its entities.
WORD_SPLITTERS: dict[str, Callable[[str], Words]] = {
    "whitespace": split_words,
    "universal": split_universal,
    "jieba": split_jieba,
}


def word_splitter(splitter_type: str | None) -> Callable[[str], Words]:
    """The word splitter a checkpoint's ``words_splitter_type`` names (``None``: whitespace). A splitter whose
    package is missing fails here, naming the extra to install, not on the first text."""
    name = splitter_type or "whitespace"
    if name not in WORD_SPLITTERS:
        raise ValueError(f"words_splitter_type {name!r} is not supported; supported: {', '.join(WORD_SPLITTERS)}")
    splitter = WORD_SPLITTERS[name]
    splitter("")  # imports the splitter's package now
    return splitter


def split_in_pieces(split: Callable[[str], Words], text: str, piece_chars: int) -> Iterator[Words]:
    """``split(text)`` in consecutive pieces of about ``piece_chars`` characters, cut at whitespace, with offsets
    into the whole text: the same words (no splitter lets a word cross whitespace), never all held at once. A
    stretch without whitespace (unspaced scripts) stays whole."""
    start = 0
    while start < len(text):
        space = WHITESPACE.search(text, start + piece_chars)
        stop = space.start() if space else len(text)
        piece = split(text[start:stop])
        yield Words(piece.words, [s + start for s in piece.starts], [e + start for e in piece.ends])
        start = stop


def _split_with(pattern: re.Pattern, text: str) -> Words:
    """The matches of ``pattern`` with their offsets, without a Python step per word: splitting on the pattern,
    captured, alternates the gaps and the words; the offsets are the running sum of the parts' lengths."""
    parts = _captured(pattern).split(text)  # gap, word, gap, word, ..., gap
    bounds = np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)))
    return Words(parts[1::2], bounds[0:-1:2].tolist(), bounds[1::2].tolist())


@functools.lru_cache(maxsize=8)
def _captured(pattern: re.Pattern) -> re.Pattern:
    return re.compile(f"({pattern.pattern})", pattern.flags)


def _optional_module(name: str, extra: str):
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(
            f"this model splits words with {name!r}, which is not installed: pip install \"gliner-ray[{extra}]\" "
            f"(or pip install {name})"
        ) from error


def clean_labels(labels: Sequence[str]) -> list[str]:
    """Validate entity type names and drop duplicates, keeping first-seen order."""
    if isinstance(labels, str):
        raise ValueError(f"labels must be a list of strings, got the string {labels!r}; pass [{labels!r}]")
    cleaned = list(dict.fromkeys(labels))
    if not cleaned:
        raise ValueError("the label list is empty: give at least one entity type, e.g. ['person', 'organization']")
    for label in cleaned:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"entity type {label!r} is not a non-empty string")
    return cleaned


def label_key(label: str) -> str:
    """What spellings of one entity type share: ``"New  York"`` and ``"new york"`` (case and spacing ignored)."""
    return " ".join(label.casefold().split())


def not_unicode(value: str) -> str | None:
    """What keeps a decoded string from being written as UTF-8 (a lone surrogate from a JSON escape), if anything."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"holds an invalid character ({error.reason} at {error.start})"
    return None


def record_labels(value: object, field: str) -> tuple[str, ...] | str:
    """A record's own entity types (the value of its ``field``), stripped, spellings that differ only in case or
    spacing merged into the first (as ``--labels``); or the reason they cannot be used."""
    if not isinstance(value, (list, tuple)):
        what = "null" if value is None else f"a {type(value).__name__}"
        return f"{field!r} is {what}, not a list of entity types (strings)"
    kept: dict[str, str] = {}
    for label in value:
        if not isinstance(label, str) or not label.strip():
            return f"{field!r} holds {label!r}, not a non-empty string"
        if (problem := not_unicode(label)) is not None:
            return f"{field!r} {problem}"
        kept.setdefault(label_key(label), label.strip())
    if not kept:
        return f"{field!r} is an empty list: give each record at least one entity type"
    return tuple(clean_labels(list(kept.values())))


def build_prompt(labels: Sequence[str], ent_token: str, sep_token: str) -> list[str]:
    """The label prompt as pre-split words: ``<<ENT>> type1 <<ENT>> type2 … <<SEP>>``."""
    prompt = []
    for label in labels:
        prompt += [ent_token, label]
    prompt.append(sep_token)
    return prompt


class Window(NamedTuple):
    """Words ``[start, end)`` go through the model together; spans starting in ``[own_start, own_end)`` are
    taken from this window, so that a span in the overlap of two windows is kept exactly once."""

    start: int
    end: int
    own_start: int
    own_end: int


def plan_windows(
    word_token_counts: Sequence[int],
    max_words: int,
    max_tokens: int,
    overlap: int,
    sentence_end: Sequence[bool] | None = None,
) -> list[Window]:
    """Cover a text with windows of at most ``max_words`` words and ``max_tokens`` sub-tokens.

    Consecutive windows overlap by ``overlap`` words; a window prefers to end after a sentence-ending word
    when one lies in its second half. Ownership switches in the middle of each overlap, so a span of up to
    ``overlap // 2`` words starting in a window's own region lies wholly inside that window.
    """
    n = len(word_token_counts)
    if n == 0:
        return []
    if max_words < 1 or max_tokens < 1:
        raise ValueError(f"a window needs room for at least one word (max_words={max_words}, max_tokens={max_tokens})")
    # Sub-tokens before each word, one huge word cut to max_tokens (never skipped): a window from ``start`` ends
    # at the last word whose running sum stays within max_tokens.
    before = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.minimum(np.asarray(word_token_counts, dtype=np.int64), max_tokens), out=before[1:])
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        fits = int(np.searchsorted(before, before[start] + max_tokens, side="right")) - 1
        end = max(min(fits, start + max_words, n), start + 1)
        if end < n and sentence_end is not None:
            earliest = start + max(2 * overlap, (end - start) // 2)
            for cut in range(end, earliest, -1):
                if sentence_end[cut - 1]:
                    end = cut
                    break
        spans.append((start, end))
        if end >= n:
            break
        start = max(end - overlap, start + 1)
    windows = []
    for k, (start, end) in enumerate(spans):
        own_start = 0 if k == 0 else (start + spans[k - 1][1]) // 2
        own_end = n if k == len(spans) - 1 else (spans[k + 1][0] + end) // 2
        windows.append(Window(start, end, own_start, own_end))
    return windows


def sentence_ends(words: Sequence[str]) -> list[bool]:
    """For each word, whether a sentence ends after it."""
    return [word in SENTENCE_END_WORDS for word in words]


def clean_relations(relations: Sequence[str]) -> tuple[str, ...]:
    """Validate relation type names and drop duplicates, keeping first-seen order."""
    if isinstance(relations, str):
        raise ValueError(f"relations must be a list of strings, got the string {relations!r}; pass [{relations!r}]")
    cleaned = tuple(dict.fromkeys(relations))
    for relation in cleaned:
        if not isinstance(relation, str) or not relation.strip():
            raise ValueError(f"relation type {relation!r} is not a non-empty string")
    return cleaned


def balanced_groups(costs: Sequence[int], groups: int) -> list[list[int]]:
    """The indices of ``costs`` dealt into at most ``groups`` groups of about equal total cost: the costliest first,
    each to the lightest group so far (ties: the earlier group). Each group keeps its items in their given order."""
    loads = [0] * groups
    members: list[list[int]] = [[] for _ in range(groups)]
    for i in sorted(range(len(costs)), key=lambda i: -costs[i]):
        lightest = loads.index(min(loads))
        loads[lightest] += costs[i]
        members[lightest].append(i)
    return [sorted(group) for group in members if group]


def fewest_groups(costs: Sequence[int], capacity: int) -> list[list[int]]:
    """``balanced_groups`` with the fewest groups whose total costs each stay within ``capacity`` (every cost must
    fit alone). One group when all fit together; never more groups than items."""
    too_big = [cost for cost in costs if cost > capacity]
    if too_big:
        raise ValueError(f"a cost of {too_big[0]} cannot fit in a group of capacity {capacity}")
    count = max(1, -(-sum(costs) // capacity)) if capacity > 0 else 1
    while True:
        groups = balanced_groups(costs, count)
        if all(sum(costs[i] for i in group) <= capacity for group in groups):
            return groups
        count += 1

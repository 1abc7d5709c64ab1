"""Planning a long text slice by slice: the windows of ``PromptTokenizer.plan``, while memory holds one slice of
the text, never all of it (extraction's long documents; see ``extract/scoring.py``)."""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple

import numpy as np

from .encoding import PromptTokenizer, TokenizedText
from .text import Window, Words, plan_windows, sentence_ends


class Slice(NamedTuple):
    """Part of a long text planned on its own: its words from ``first_word`` on, their character offsets and
    sub-tokens, and the windows (in the whole text's word indices) that this slice scores."""

    first_word: int
    word_starts: list[int]  # character offset of each word of the slice
    word_ends: list[int]
    text: TokenizedText  # the slice's words only: word first_word + i is text's word i
    windows: list[Window]


def plan_slices(tokenizer: PromptTokenizer, pieces: Iterable[Words], budget: int, max_words: int, max_width: int,
                slice_words: int) -> Iterator[Slice]:
    """``plan`` for a long text given as consecutive pieces of words, one slice of about ``slice_words`` words at a
    time, windows of at most ``budget`` sub-tokens (``PromptTokenizer.window_budget``): exactly ``plan``'s windows.

    Each slice is planned with ``plan_windows`` from a window start on. Only its last window can differ from the
    whole text's (it was cut short by the slice's end): it is dropped and starts the next slice, and the ownership
    at the seam is the one ``plan_windows`` gives between neighbours."""
    overlap = 2 * max_width
    slice_words = max(slice_words, max_words + 1)  # room for a whole window and the start of the next
    pieces = iter(pieces)
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    first, previous_end, context, done = 0, None, None, False
    while True:
        while not done and len(words) < slice_words:
            piece = next(pieces, None)
            done = piece is None
            if piece is not None:
                words += piece.words
                starts += piece.starts
                ends += piece.ends
        if not words:
            return
        text = _tokenize_after(tokenizer, context, words)
        windows = plan_windows(np.diff(text.offsets).tolist(), max_words, budget, overlap, sentence_ends(words))
        cut = None
        if not done:
            cut = windows.pop().start  # reached the slice's end, so maybe not the whole text's window
        windows = [Window(w.start + first, w.end + first, w.own_start + first, w.own_end + first) for w in windows]
        if previous_end is not None:
            windows[0] = windows[0]._replace(own_start=(windows[0].start + previous_end) // 2)
        yield Slice(first, starts, ends, text, windows)
        if cut is None:
            return
        previous_end, context = windows[-1].end, words[cut - 1]
        words, starts, ends, first = words[cut:], starts[cut:], ends[cut:], first + cut


def _tokenize_after(tokenizer: PromptTokenizer, context: str | None, words: list[str]) -> TokenizedText:
    """``tokenize(words)``, as the words tokenize after ``context`` (the word before them) in the whole text: the
    same for a context-free tokenizer; others differ on a text's first word, so they see one more."""
    if context is None or tokenizer.context_free:
        return tokenizer.tokenize(words)
    text = tokenizer.tokenize([context, *words])
    return TokenizedText(text.tokens[text.offsets[1] :], text.offsets[1:] - text.offsets[1])

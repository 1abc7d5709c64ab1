"""From pre-split words and labels to model input tensors, shared by prediction, training and extraction.

Each word is tokenized once, on its own (as ``is_split_into_words`` does); a model input is then only a
concatenation: [specials] prompt word tokens, text word tokens [specials]. A word's vector is taken at its
first sub-token and a type's at its <<ENT>> token, so collation records those positions.

A text's tokens are kept flat (one int32 array, plus the offset of each word's first sub-token), so a window is
two array slices and a batch is a few numpy concatenations, never a Python loop over words. Where the tokenizer
splits a word the same way wherever it stands (WordPiece, sentencepiece; checked on load), each distinct word is
tokenized once per process and remembered: natural text repeats its words, so most are never tokenized at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np
import torch

from .text import Window, build_prompt, fewest_groups, plan_windows, sentence_ends

if TYPE_CHECKING:
    from .model import GLiNERConfig

# A word's later sub-tokens only add context; a pathological "word" (a URL, base64) is cut to this many.
MAX_SUBTOKENS_PER_WORD = 32
WORD_CACHE_SIZE = 1 << 20  # distinct words remembered per tokenizer (cleared when full)
MIN_TEXT_TOKENS = 64  # a label prompt must leave at least this many of the encoder's tokens to the text


@dataclass
class Batch:
    """Model inputs for rows of (prompt, text words); see ``GLiNERModel.forward``."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    word_index: torch.Tensor  # (B, W)
    word_counts: torch.Tensor  # (B,), on the CPU
    type_index: torch.Tensor  # (B, C)
    type_counts: torch.Tensor  # (B,), on the CPU
    relation_index: torch.Tensor | None = None  # (B, R): each <<REL>>, for relation models only

    def to(self, device: torch.device | str) -> "Batch":
        moved = {k: v if k.endswith("counts") or v is None else v.to(device, non_blocking=True)
                 for k, v in vars(self).items()}
        return Batch(**moved)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in vars(self).items() if k != "type_counts" and v is not None}


class Row(NamedTuple):
    """One model input: a window of one text beside its label prompt (all ids already tokenized)."""

    text_index: int  # which text of the request the window belongs to
    window: Window  # word range in that text, and the range of span starts it answers for
    labels: tuple[str, ...]
    prompt: list[list[int]]  # sub-token ids of each prompt word
    tokens: np.ndarray  # (T,) int32: sub-token ids of the window's words, flat
    word_starts: np.ndarray  # (W,) int: position in ``tokens`` of each word's first sub-token
    relations: tuple[str, ...] = ()  # relation types in the prompt (relation models only)

    @property
    def num_tokens(self) -> int:
        return sum(map(len, self.prompt)) + len(self.tokens)

    @property
    def words(self) -> list[list[int]]:
        """Sub-token ids of each word of the window."""
        bounds = [*self.word_starts.tolist(), len(self.tokens)]
        ids = self.tokens.tolist()
        return [ids[a:b] for a, b in zip(bounds, bounds[1:])]


class TokenizedText(NamedTuple):
    """A pre-split text's sub-tokens, flat: word i is ``tokens[offsets[i]:offsets[i + 1]]``."""

    tokens: np.ndarray  # (T,) int32
    offsets: np.ndarray  # (words + 1,) int64


class PromptTokenizer:
    """Wraps a Hugging Face tokenizer with GLiNER's prompt format and the encoder's length limit.

    ``rel_token`` (relation models): the prompt gets a second part, ``<<REL>> relation1 … <<SEP>>``, always
    (empty when no relation is asked for), as the reference library lays it out."""

    def __init__(self, tokenizer, ent_token: str, sep_token: str, max_tokens: int, rel_token: str | None = None):
        self.tokenizer = tokenizer
        self.ent_token = ent_token
        self.sep_token = sep_token
        self.rel_token = rel_token
        self.max_tokens = max_tokens
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.unk_id = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else self.pad_id
        # The tokenizer's own special tokens around one pre-split word tell us its prefix and suffix.
        probe = tokenizer(["x"], is_split_into_words=True)
        word_ids = probe.word_ids()
        first = word_ids.index(0)
        last = len(word_ids) - 1 - word_ids[::-1].index(0)
        self.prefix = probe["input_ids"][:first]
        self.suffix = probe["input_ids"][last + 1 :]
        self._prompt_cache: dict[tuple[str, ...], list[list[int]]] = {}
        self._passes_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[str, ...]]] = {}
        self._word_cache: dict[str, list[int]] = {}
        # Whether a word's sub-tokens are the same wherever it stands (first or later, beside any neighbour):
        # then a word can be tokenized once and remembered. A tokenizer that marks the first word differently
        # fails this and is called on every text.
        probe = ["Hello", "world", ",", "tokenizers", "x"]
        self.context_free = self._tokenize(probe) == [ids for w in probe for ids in self._tokenize([w])] == \
            self._tokenize(probe[::-1])[::-1]
        self.sep_ids = self._tokenize([sep_token])[0]  # the <<SEP>> prompt word, which ends each prompt part

    @classmethod
    def for_encoder(cls, tokenizer, config: "GLiNERConfig", encoder_config) -> "PromptTokenizer":
        """The prompt tokenizer of a GLiNER model: its special tokens, and as many tokens as its encoder takes."""
        encoder_limit = getattr(encoder_config, "max_position_embeddings", 512)
        rel_token = config.rel_token if config.relations_layer is not None else None
        return cls(tokenizer, config.ent_token, config.sep_token, min(tokenizer.model_max_length, encoder_limit),
                   rel_token)

    def word_token_ids(self, words: Sequence[str]) -> list[list[int]]:
        """Sub-token ids of each word. A word the tokenizer drops entirely becomes [UNK], so it keeps a vector."""
        if not self.context_free:
            return self._tokenize(words)
        cache = self._word_cache
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            if len(cache) + len(missing) > WORD_CACHE_SIZE:
                cache.clear()
            cache.update(zip(missing, self._tokenize(missing)))
        return [cache[w] for w in words]

    def _tokenize(self, words: Sequence[str]) -> list[list[int]]:
        """One tokenizer call over the pre-split words; each word's sub-token ids."""
        if not words:
            return []
        encoded = self.tokenizer(list(words), is_split_into_words=True, add_special_tokens=False)
        per_word: list[list[int]] = [[] for _ in words]
        for token_id, word in zip(encoded["input_ids"], encoded.word_ids()):
            if word is not None and len(per_word[word]) < MAX_SUBTOKENS_PER_WORD:
                per_word[word].append(token_id)
        return [ids or [self.unk_id] for ids in per_word]

    def tokenize(self, words: Sequence[str]) -> TokenizedText:
        """A pre-split text's sub-token ids, flat, with each word's offset."""
        per_word = self.word_token_ids(words)
        lengths = np.fromiter(map(len, per_word), dtype=np.int64, count=len(per_word))
        offsets = np.zeros(len(per_word) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        tokens = np.fromiter(chain.from_iterable(per_word), dtype=np.int32, count=int(offsets[-1]))
        return TokenizedText(tokens, offsets)

    def prompt_token_ids(self, labels: Sequence[str], relations: Sequence[str] = ()) -> list[list[int]]:
        """Sub-token ids of the prompt words ``<<ENT>> label … <<SEP>>`` (then ``<<REL>> relation … <<SEP>>`` for
        relation models), cached per label and relation list."""
        key = (tuple(labels), tuple(relations))
        if key not in self._prompt_cache:
            if len(self._prompt_cache) > 4096:
                self._prompt_cache.clear()
            words = build_prompt(labels, self.ent_token, self.sep_token)
            if self.rel_token is not None:
                words += build_prompt(relations, self.rel_token, self.sep_token)
            elif relations:
                raise ValueError(f"relation types {list(relations)} were given, but this model extracts no "
                                 f"relations: use a relation extraction (relex) checkpoint")
            self._prompt_cache[key] = self.word_token_ids(words)
        return self._prompt_cache[key]

    def text_token_budget(self, labels: Sequence[str], relations: Sequence[str] = ()) -> int:
        """How many text sub-tokens fit beside this label prompt; a clear error when the prompt alone is too long."""
        budget = self._text_tokens_left(labels, relations)
        if budget < MIN_TEXT_TOKENS:
            prompt_tokens = sum(map(len, self.prompt_token_ids(labels, relations)))
            raise ValueError(
                f"{len(labels)} entity types{f' and {len(relations)} relation types' if relations else ''} take "
                f"{prompt_tokens} of the encoder's {self.max_tokens} tokens, leaving {max(budget, 0)} for text (at "
                f"least {MIN_TEXT_TOKENS} are needed): pass fewer or shorter "
                f"{'relation types (entity types are split into passes only without relations)' if relations else 'labels'}"
            )
        return budget

    def _text_tokens_left(self, labels: Sequence[str], relations: Sequence[str] = ()) -> int:
        return self.max_tokens - len(self.prefix) - len(self.suffix) - sum(map(len, self.prompt_token_ids(labels, relations)))

    def label_passes(self, labels: Sequence[str], relations: Sequence[str] = ()) -> list[tuple[str, ...]]:
        """The labels in the fewest balanced groups whose prompts each leave ``MIN_TEXT_TOKENS`` to the text: one
        group (all labels) when they fit. A label too long to fit even alone is refused by name; so are relation
        types beside labels that need several passes (a relation's two entities must share one prompt)."""
        key = (tuple(labels), tuple(relations))
        if key not in self._passes_cache:
            if len(self._passes_cache) > 256:
                self._passes_cache.clear()
            self._passes_cache[key] = self._split_labels(*key)
        return self._passes_cache[key]

    def _split_labels(self, labels: tuple[str, ...], relations: tuple[str, ...]) -> list[tuple[str, ...]]:
        if relations or self._text_tokens_left(labels) >= MIN_TEXT_TOKENS:
            self.text_token_budget(labels, relations)  # raises when it does not fit
            return [labels]
        capacity = self._text_tokens_left(()) - MIN_TEXT_TOKENS  # the tokens labels may take in one prompt
        ent_tokens = len(self.word_token_ids([self.ent_token])[0])
        costs = [ent_tokens + len(ids) for ids in self.word_token_ids(labels)]
        for label, cost in zip(labels, costs):
            if cost > capacity:
                raise ValueError(f"the entity type {label[:80]!r} takes {cost} tokens in the prompt, more than the "
                                 f"{capacity} a prompt of this encoder ({self.max_tokens} tokens) leaves beside "
                                 f"{MIN_TEXT_TOKENS} tokens of text: shorten it")
        passes = [tuple(labels[i] for i in group) for group in fewest_groups(costs, capacity)]
        for group in passes:
            self.text_token_budget(group)  # a tokenizer that splits a prompt word by its neighbours could differ
        return passes

    def window_budget(self, labels: Sequence[str], relations: Sequence[str] = ()) -> int:
        """Text sub-tokens per window when every label pass (``label_passes``) scores the same windows: what the
        longest pass prompt leaves."""
        return min(self.text_token_budget(group, relations) for group in self.label_passes(labels, relations))

    def plan(self, words: Sequence[str], labels: Sequence[str], max_words: int, max_width: int,
             relations: Sequence[str] = ()) -> tuple[TokenizedText, list[Window]]:
        """Tokenize a pre-split text once and cut it into windows of at most ``max_words`` words that fit beside
        the prompt. Windows overlap by ``2 * max_width`` words so every span lies whole in the window that owns it."""
        text = self.tokenize(words)
        if not words:
            return text, []
        budget = self.window_budget(labels, relations)
        windows = plan_windows(np.diff(text.offsets).tolist(), max_words, budget, 2 * max_width, sentence_ends(words))
        return text, windows

    def rows(self, text_index: int, words: Sequence[str], labels: Sequence[str], max_words: int, max_width: int,
             relations: Sequence[str] = ()) -> list[Row]:
        """The model rows of a pre-split text (see ``plan``): each window once per label pass (``label_passes``)."""
        labels, relations = tuple(labels), tuple(relations)
        text, windows = self.plan(words, labels, max_words, max_width, relations)
        return [row for group in self.label_passes(labels, relations)
                for row in window_rows(text_index, text, windows, group, self.prompt_token_ids(group, relations), relations)]

    def collate(self, prompts: Sequence[list[list[int]]], texts: Sequence[Sequence[list[int]]]) -> Batch:
        """One row per (prompt word ids, text word ids) pair, padded to the longest row."""
        rows = []
        for prompt, text in zip(prompts, texts):
            lengths = np.fromiter(map(len, text), dtype=np.int64, count=len(text))
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(text) else lengths
            rows.append((prompt, np.fromiter(chain.from_iterable(text), dtype=np.int32), starts))
        return self.collate_flat(rows)

    def collate_rows(self, rows: Sequence[Row]) -> Batch:
        """Model inputs for rows, padded to the longest."""
        return self.collate_flat([(row.prompt, row.tokens, row.word_starts) for row in rows])

    def collate_flat(self, rows: Sequence[tuple[list[list[int]], np.ndarray, np.ndarray]]) -> Batch:
        """(prompt word ids, flat text tokens, first sub-token of each text word) per row -> padded inputs."""
        sequences, word_positions, type_positions, relation_positions = [], [], [], []
        for prompt, tokens, word_starts in rows:
            prompt_lengths = [len(word) for word in prompt]
            prompt_starts = np.cumsum([len(self.prefix), *prompt_lengths])
            # Prompt: (<<ENT>> label)*C <<SEP>>, then for relation models (<<REL>> relation)*R <<SEP>>.
            num_types = (prompt.index(self.sep_ids) if prompt else 1) // 2
            type_positions.append(prompt_starts[0 : 2 * num_types : 2])
            relation_positions.append(prompt_starts[2 * num_types + 1 : len(prompt) - 1 : 2])
            text_start = int(prompt_starts[-1])
            word_positions.append(word_starts + text_start)
            sequences.append(np.concatenate([self.prefix, list(chain.from_iterable(prompt)), tokens, self.suffix]).astype(np.int64))
        lengths = [len(x) for x in sequences]
        return Batch(
            input_ids=_pad(sequences, self.pad_id),
            attention_mask=(torch.arange(max(1, max(lengths))).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).long(),
            word_index=_pad(word_positions, 0),
            word_counts=torch.tensor([len(w) for w in word_positions]),
            type_index=_pad(type_positions, 0),
            type_counts=torch.tensor([len(t) for t in type_positions]),
            relation_index=_pad(relation_positions, 0) if self.rel_token is not None else None,
        )


def window_rows(text_index: int, text: TokenizedText, windows: Sequence[Window], labels: tuple[str, ...],
                prompt: list[list[int]], relations: tuple[str, ...] = (), first_word: int = 0) -> list[Row]:
    """One model row per window of a tokenized text: slices of its flat tokens, no copies. ``first_word``: the
    text's first word is that word of the windows' text (a ``Slice``)."""
    rows = []
    for w in windows:
        start, end = w.start - first_word, w.end - first_word
        first = text.offsets[start]
        rows.append(Row(text_index, w, labels, prompt, text.tokens[first : text.offsets[end]],
                        text.offsets[start:end] - first, relations))
    return rows


def _pad(rows: Sequence[np.ndarray], value: int) -> torch.Tensor:
    width = max(1, max(len(r) for r in rows))
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return torch.from_numpy(out)


def row_sizes(rows: Sequence[Row]) -> tuple[torch.Tensor, torch.Tensor]:
    """Words and labels of each row (a bi-encoder's batch has no prompt to count labels from)."""
    return torch.tensor([len(row.word_starts) for row in rows]), torch.tensor([len(row.labels) for row in rows])

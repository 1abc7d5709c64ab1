"""From pre-split words and labels to model input tensors, shared by prediction, training and extraction.

Each word is tokenized once, on its own (as ``is_split_into_words`` does); a model input is then only a
concatenation: [specials] prompt word tokens, text word tokens [specials]. A word's vector is taken at its
first sub-token and a type's at its <<ENT>> token, so collation records those positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Sequence

import torch

from .text import Window, build_prompt, plan_windows, sentence_ends

if TYPE_CHECKING:
    from .model import GLiNERConfig

# A word's later sub-tokens only add context; a pathological "word" (a URL, base64) is cut to this many.
MAX_SUBTOKENS_PER_WORD = 32


@dataclass
class Batch:
    """Model inputs for rows of (prompt, text words); see ``GLiNERModel.forward``."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    word_index: torch.Tensor  # (B, W)
    word_counts: torch.Tensor  # (B,), on the CPU
    type_index: torch.Tensor  # (B, C)
    type_counts: torch.Tensor  # (B,), on the CPU

    def to(self, device: torch.device | str) -> "Batch":
        moved = {k: v if k.endswith("counts") else v.to(device, non_blocking=True) for k, v in vars(self).items()}
        return Batch(**moved)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in vars(self).items() if k != "type_counts"}


class Row(NamedTuple):
    """One model input: a window of one text beside its label prompt (all ids already tokenized)."""

    text_index: int  # which text of the request the window belongs to
    window: Window  # word range in that text, and the range of span starts it answers for
    labels: tuple[str, ...]
    prompt: list[list[int]]  # sub-token ids of each prompt word
    words: list[list[int]]  # sub-token ids of each word of the window

    @property
    def num_tokens(self) -> int:
        return sum(map(len, self.prompt)) + sum(map(len, self.words))


class PromptTokenizer:
    """Wraps a Hugging Face tokenizer with GLiNER's prompt format and the encoder's length limit."""

    def __init__(self, tokenizer, ent_token: str, sep_token: str, max_tokens: int):
        self.tokenizer = tokenizer
        self.ent_token = ent_token
        self.sep_token = sep_token
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

    @classmethod
    def for_encoder(cls, tokenizer, config: "GLiNERConfig", encoder_config) -> "PromptTokenizer":
        """The prompt tokenizer of a GLiNER model: its special tokens, and as many tokens as its encoder takes."""
        encoder_limit = getattr(encoder_config, "max_position_embeddings", 512)
        return cls(tokenizer, config.ent_token, config.sep_token, min(tokenizer.model_max_length, encoder_limit))

    def word_token_ids(self, words: Sequence[str]) -> list[list[int]]:
        """Sub-token ids of each word. A word the tokenizer drops entirely becomes [UNK], so it keeps a vector."""
        if not words:
            return []
        encoded = self.tokenizer(list(words), is_split_into_words=True, add_special_tokens=False)
        per_word: list[list[int]] = [[] for _ in words]
        for token_id, word in zip(encoded["input_ids"], encoded.word_ids()):
            if word is not None and len(per_word[word]) < MAX_SUBTOKENS_PER_WORD:
                per_word[word].append(token_id)
        return [ids or [self.unk_id] for ids in per_word]

    def prompt_token_ids(self, labels: Sequence[str]) -> list[list[int]]:
        """Sub-token ids of the prompt words ``<<ENT>> label … <<SEP>>``, cached per label list."""
        key = tuple(labels)
        if key not in self._prompt_cache:
            if len(self._prompt_cache) > 4096:
                self._prompt_cache.clear()
            self._prompt_cache[key] = self.word_token_ids(build_prompt(labels, self.ent_token, self.sep_token))
        return self._prompt_cache[key]

    def text_token_budget(self, labels: Sequence[str]) -> int:
        """How many text sub-tokens fit beside this label prompt; a clear error when the prompt alone is too long."""
        prompt_tokens = sum(map(len, self.prompt_token_ids(labels)))
        budget = self.max_tokens - len(self.prefix) - len(self.suffix) - prompt_tokens
        if budget < 64:
            raise ValueError(
                f"{len(labels)} entity types take {prompt_tokens} of the encoder's {self.max_tokens} tokens, "
                f"leaving {max(budget, 0)} for text (at least 64 are needed): pass fewer or shorter labels, "
                f"or split them over several calls"
            )
        return budget

    def rows(self, text_index: int, words: Sequence[str], labels: Sequence[str], max_words: int, max_width: int) -> list[Row]:
        """Tokenize a pre-split text once and cut it into model rows of at most ``max_words`` words that fit beside
        the prompt. Windows overlap by ``2 * max_width`` words so every span lies whole in the window that owns it."""
        if not words:
            return []
        labels = tuple(labels)
        prompt = self.prompt_token_ids(labels)
        word_ids = self.word_token_ids(words)
        windows = plan_windows(
            [len(ids) for ids in word_ids], max_words, self.text_token_budget(labels), 2 * max_width, sentence_ends(words)
        )
        return [Row(text_index, w, labels, prompt, word_ids[w.start : w.end]) for w in windows]

    def collate(self, prompts: Sequence[list[list[int]]], texts: Sequence[Sequence[list[int]]]) -> Batch:
        """One row per (prompt word ids, text word ids) pair, padded to the longest row."""
        rows, word_positions, type_positions = [], [], []
        for prompt, text in zip(prompts, texts):
            ids = list(self.prefix)
            types = []
            for k, word in enumerate(prompt):
                if k % 2 == 0 and k < len(prompt) - 1:  # <<ENT>> words sit at even places; the last is <<SEP>>
                    types.append(len(ids))
                ids += word
            words = []
            for word in text:
                words.append(len(ids))
                ids += word
            ids += self.suffix
            rows.append(ids)
            word_positions.append(words)
            type_positions.append(types)
        return Batch(
            input_ids=_pad(rows, self.pad_id),
            attention_mask=_pad([[1] * len(r) for r in rows], 0),
            word_index=_pad(word_positions, 0),
            word_counts=torch.tensor([len(w) for w in word_positions]),
            type_index=_pad(type_positions, 0),
            type_counts=torch.tensor([len(t) for t in type_positions]),
        )


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(1, max(len(r) for r in rows))
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out

"""From annotated examples to training batches: cleaning, negative types, the span x type label tensor.

A training row is the usual GLiNER input (``<<ENT>> t1 <<ENT>> t2 … <<SEP>> words``) whose prompt holds the
example's own types mixed with negative types taken from the other examples of the batch, and whose target
is a (words, widths, types) tensor with a 1 at (start, end - start, type) for every annotated span.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch

from ..data import Example
from ..encoding import Batch, PromptTokenizer
from ..models.span import span_mask

logger = logging.getLogger(__name__)


def clean_examples(
    examples: Sequence[Example], max_len: int, max_width: int, what: str = "training data"
) -> tuple[list[Example], Counter]:
    """Examples the model can learn from, and a count of what was skipped or cut and why.

    An example without words, or with a span out of range, inverted or with an empty label, is skipped
    whole (its other annotations are suspect too, and a dropped span would teach a false negative). Texts
    longer than ``max_len`` words are cut, and spans past the cut or wider than ``max_width`` words are
    dropped, as the model cannot score them. One warning gives the counts and a few offenders.
    """
    kept, problems, samples = [], Counter(), []

    def note(problem: str, index: int, detail: object) -> None:
        problems[problem] += 1
        if len(samples) < 5:
            samples.append(f"example {index}: {problem} {detail}")

    for index, example in enumerate(examples):
        words = list(example.words)
        bad = next((s for s in example.spans if not 0 <= s[0] <= s[1] < len(words)), None)
        unnamed = next((s for s in example.spans if not isinstance(s[2], str) or not s[2].strip()), None)
        if not words:
            note("example without words (skipped)", index, "")
        elif bad is not None:
            note("example with a span out of range or inverted (skipped)", index, bad)
        elif unnamed is not None:
            note("example with an empty label (skipped)", index, unnamed)
        else:
            if len(words) > max_len:
                note(f"text longer than max_len={max_len} words (cut)", index, f"({len(words)} words)")
                words = words[:max_len]
            spans = []
            for start, end, label in example.spans:
                if end >= len(words):
                    note("span past the max_len cut (dropped)", index, (start, end, label))
                elif end - start >= max_width:
                    note(f"span wider than max_width={max_width} words (dropped)", index, (start, end, label))
                else:
                    spans.append((start, end, label))
            kept.append(Example(words, spans))
    if problems:
        summary = ", ".join(f"{count} x {problem}" for problem, count in problems.most_common())
        logger.warning("%s: %s; e.g. %s", what, summary, "; ".join(samples))
    return kept, problems


def choose_types(own: Sequence[str], others: Sequence[str], max_types: int, rng: random.Random) -> list[str]:
    """The prompt of one training example (the paper's recipe).

    Its own types plus as many negative types drawn from ``others`` (the other examples' types), so about
    half the prompt is negative; shuffled; then a random number of up to half of them dropped, so the model
    sees prompts of varied length; at most ``max_types``. A dropped own type makes its spans unlabelled.
    """
    own = list(dict.fromkeys(own))
    own_set = set(own)
    pool = [t for t in dict.fromkeys(others) if t not in own_set]
    types = own + rng.sample(pool, min(len(pool), max(len(own), 1)))
    rng.shuffle(types)
    dropped = rng.randint(0, len(types) // 2)
    return types[: min(len(types) - dropped, max_types)]


def span_labels(spans: Sequence[Sequence[tuple[int, int, str]]], types: Sequence[Sequence[str]],
                num_words: int, max_width: int) -> torch.Tensor:
    """(B, num_words, max_width, C) float targets: [b, start, end - start, t] = 1 for each span whose label is
    type t of row b's prompt. Spans whose label is not in the prompt stay 0 (negatives for every type)."""
    num_types = max(1, max(map(len, types)))
    labels = torch.zeros(len(spans), num_words, max_width, num_types)
    for b, (row_spans, row_types) in enumerate(zip(spans, types)):
        index = {t: k for k, t in enumerate(row_types)}
        for start, end, label in row_spans:
            if not (0 <= start <= end < num_words and end - start < max_width):
                raise ValueError(f"span {(start, end, label)} does not fit {num_words} words x width {max_width}")
            if label in index:
                labels[b, start, end - start, index[label]] = 1.0
    return labels


def valid_pairs(batch: Batch, num_words: int, max_width: int) -> torch.Tensor:
    """(B, W, K, C) bool: span inside its text and type inside its prompt (the pairs the loss counts)."""
    spans = span_mask(batch.word_counts, num_words, max_width)
    num_types = batch.type_index.shape[1]
    types = torch.arange(num_types) < batch.type_counts.view(-1, 1)
    return spans.unsqueeze(-1) & types.view(-1, 1, 1, num_types)


@dataclass
class TrainingBatch:
    """One batch: the model inputs, the span x type targets, and which of those pairs the loss counts."""

    inputs: Batch
    labels: torch.Tensor  # (B, W, K, C)
    valid: torch.Tensor  # (B, W, K, C) bool
    cut_examples: int  # examples shortened to fit the encoder's token limit beside their prompt
    cut_spans: int  # spans lost to that

    @property
    def size(self) -> int:
        return self.labels.shape[0]

    def pin_memory(self) -> "TrainingBatch":
        """Page-locked copies of the tensors, so ``to(cuda)`` is an asynchronous copy (the counts stay as they are)."""
        inputs = Batch(**{k: v if k.endswith("counts") else v.pin_memory() for k, v in vars(self.inputs).items()})
        return TrainingBatch(inputs, self.labels.pin_memory(), self.valid.pin_memory(), self.cut_examples, self.cut_spans)

    def to(self, device: torch.device) -> "TrainingBatch":
        return TrainingBatch(self.inputs.to(device), self.labels.to(device, non_blocking=True),
                             self.valid.to(device, non_blocking=True), self.cut_examples, self.cut_spans)


class BatchBuilder:
    """Turns a list of clean examples into model inputs and targets, drawing negative types from the batch."""

    def __init__(self, prompt_tokenizer: PromptTokenizer, max_width: int, max_types: int, seed: int):
        self.prompt_tokenizer = prompt_tokenizer
        self.max_width = max_width
        self.max_types = max_types
        self.rng = random.Random(seed)

    def tokenize(self, examples: Sequence[Example]) -> list[list[list[int]]]:
        """Sub-token ids of each word of each example (to measure lengths before batching; see ``__call__``)."""
        return [self.prompt_tokenizer.word_token_ids(ex.words) for ex in examples]

    def __call__(self, examples: Sequence[Example], word_ids: Sequence[list[list[int]]] | None = None) -> TrainingBatch:
        """The batch of ``examples``, each prompted with its own types and negatives from the others;
        ``word_ids`` (from ``tokenize``) saves tokenizing them again."""
        own_types = [[label for _, _, label in ex.spans] for ex in examples]
        types = []
        for i in range(len(examples)):
            others = [t for j, labels in enumerate(own_types) if j != i for t in labels]
            types.append(choose_types(own_types[i], others, self.max_types, self.rng))
        return self.assemble(examples, types, word_ids)

    def assemble(self, examples: Sequence[Example], types: Sequence[Sequence[str]],
                 word_ids: Sequence[list[list[int]]] | None = None) -> TrainingBatch:
        """The batch of ``examples`` with the given prompt types per example."""
        word_ids = self.tokenize(examples) if word_ids is None else word_ids
        prompts, texts, spans = [], [], []
        cut_examples = cut_spans = 0
        for example, words, row_types in zip(examples, word_ids, types):
            keep = self._words_that_fit(words, row_types)
            row_spans = [s for s in example.spans if s[1] < keep]
            if keep < len(words):
                cut_examples += 1
                cut_spans += len(example.spans) - len(row_spans)
            prompts.append(self.prompt_tokenizer.prompt_token_ids(row_types))
            texts.append(words[:keep])
            spans.append(row_spans)
        inputs = self.prompt_tokenizer.collate(prompts, texts)
        num_words = inputs.word_index.shape[1]
        labels = span_labels(spans, types, num_words, self.max_width)
        valid = valid_pairs(inputs, num_words, self.max_width)
        return TrainingBatch(inputs, labels, valid, cut_examples, cut_spans)

    def _words_that_fit(self, words: list[list[int]], types: Sequence[str]) -> int:
        """How many leading words fit in the encoder beside this prompt."""
        budget = self.prompt_tokenizer.text_token_budget(types)
        used = 0
        for k, ids in enumerate(words):
            used += len(ids)
            if used > budget:
                return k
        return len(words)


def token_budget_groups(lengths: Sequence[int], max_tokens: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped into batches of similar length: sorted by length, each batch as many texts as keep
    (texts x its longest text) within ``max_tokens``, so batches are full and carry little padding. A text
    longer than the budget is a batch of its own. The batches come in random order."""
    groups: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random())):
        if current and lengths[i] * (len(current) + 1) > max_tokens:  # sorted: text i is the longest so far
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    rng.shuffle(groups)
    return groups

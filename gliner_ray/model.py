"""The GLiNER network in pure torch: encoder -> word and type vectors -> a score for every span x type.

    input:  [CLS] <<ENT>> type1 <<ENT>> type2 … <<SEP>> word1 word2 … [SEP]
    token states   = encoder(input)                   (then a linear map if hidden_size != encoder width)
    type vectors   = type_ffn(state of each <<ENT>>)
    word states    = BiLSTM(state of each word's first sub-token)
    span score     = span vector(start word, end word) · type vector, for spans of up to max_width words

The parameters keep the layout of the reference library's checkpoints (see checkpoint.py for the names).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .text import WORD_SPLITTERS

# The reference library's model_type names of the families we run (the family itself is read from span_mode and
# labels_encoder, as the reference does: its saved model_type is often None or stale).
MODEL_TYPES = (None, "gliner", "gliner_uni_encoder_span", "gliner_uni_encoder_token", "gliner_bi_encoder_span",
               "gliner_bi_encoder_token")
SPAN_MODES = ("markerV0", "marker")  # span heads; "token_level" models score words instead (models/token.py)


@dataclass
class GLiNERConfig:
    """The fields of ``gliner_config.json`` this implementation reads; all other keys ride along in ``extra``."""

    model_name: str = "microsoft/deberta-v3-small"  # where the tokenizer (and, in old configs, the encoder config) come from
    hidden_size: int = 512
    max_width: int = 12  # longest span, in words
    span_mode: str = "markerV0"
    dropout: float = 0.4
    max_len: int = 384  # words per window
    max_types: int = 25
    num_rnn_layers: int = 1
    ent_token: str = "<<ENT>>"
    sep_token: str = "<<SEP>>"
    class_token_index: int = -1  # -1: old configs, the special tokens are added to the tokenizer at load time
    vocab_size: int = -1
    encoder_config: dict | None = None  # None: old configs, read from model_name
    labels_encoder: str | None = None  # bi-encoders: the encoder of the labels (models/biencoder.py)
    labels_encoder_config: dict | None = None
    words_splitter_type: str = "whitespace"  # see text.WORD_SPLITTERS
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "GLiNERConfig":
        """Read a ``gliner_config.json`` dict, refusing model variants this implementation does not run."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in values.items() if k in names}
        extra = {k: v for k, v in values.items() if k not in names}
        config = cls(**known, extra=extra)
        config.check_supported()
        return config

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **values}

    def check_supported(self) -> None:
        """Raise a ValueError naming the first setting that selects a GLiNER variant we do not implement."""
        if self.span_mode not in (*SPAN_MODES, "token_level"):
            raise ValueError(
                f"span_mode {self.span_mode!r} is not supported; supported span modes: "
                f"{', '.join(SPAN_MODES)}, token_level"
            )
        if (self.words_splitter_type or "whitespace") not in WORD_SPLITTERS:
            raise ValueError(
                f"gliner_config.json sets words_splitter_type={self.words_splitter_type!r}: this word splitter is "
                f"not supported; supported: {', '.join(WORD_SPLITTERS)}"
            )
        refused = {
            "subtoken_pooling": ("first", lambda v: v in (None, "first")),
            "embed_ent_token": (True, lambda v: v in (None, True)),
            "fuse_layers": (False, lambda v: not v),
            "post_fusion_schema": ("", lambda v: not v),
            "represent_spans": (False, lambda v: not v),
            "labels_decoder": (None, lambda v: v is None),
            "relations_layer": (None, lambda v: v is None),
            "span_encoder_config": (None, lambda v: v is None),
            "model_type": (None, lambda v: v in MODEL_TYPES),
        }
        for key, (expected, ok) in refused.items():
            value = self.extra.get(key)
            if not ok(value):
                raise ValueError(
                    f"gliner_config.json sets {key}={value!r}: this GLiNER variant is not supported "
                    f"(only models with {key}={expected!r})"
                )


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask comes from ``torch.rand``: 4x faster there than the ``bernoulli_`` that
    ``F.dropout`` draws with, which took a fifth of a CPU training step (the span head drops 12 x (B, W, 4D))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        dropped = torch.rand_like(x) < self.p
        return x.masked_fill(dropped, 0.0) * (1.0 / (1.0 - self.p))


def ffn(in_dim: int, hidden_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    """Linear -> ReLU -> Dropout -> Linear, indexed 0..3 as in the reference checkpoints."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), Dropout(dropout), nn.Linear(hidden_dim, out_dim))


class SpanHead(nn.Module):
    """Scores every span (start word i, width k) against every type vector q.

    markerV0: span_ij = FFN_out(ReLU([FFN_start(h_i) ; FFN_end(h_j)])), FFN_out = Linear(2D,4D) ReLU Linear(4D,D).
    marker:   span_ij = Linear(2D,D)(ReLU([FFN_start(h_i) ; FFN_end(h_j)])).

    Neither is computed per span. The first map of FFN_out splits into a start term a_i = W_s s_i + b and an
    end term c_j = W_e e_j (once per word), and the last map folds into the type side q' = W_2ᵀ q (once per
    type), so score_ijt = ReLU(a_i + c_j) · q'_t + b_2 · q_t. For ``marker`` both maps are linear and the
    score is a sum of per-word, per-type terms.
    """

    def __init__(self, hidden_size: int, max_width: int, dropout: float, span_mode: str = "markerV0"):
        super().__init__()
        self.max_width = max_width
        self.span_mode = span_mode
        d = hidden_size
        if span_mode == "markerV0":
            self.project_start = ffn(d, 4 * d, d, dropout)
            self.project_end = ffn(d, 4 * d, d, dropout)
            self.out_project = ffn(2 * d, 4 * d, d, dropout)
        elif span_mode == "marker":
            self.project_start = ffn(d, 2 * d, d, dropout)
            self.project_end = ffn(d, 2 * d, d, dropout)
            self.out_project = nn.Linear(2 * d, d)
        else:
            raise ValueError(f"span_mode {span_mode!r} is not supported; use one of {SPAN_MODES}")

    def forward(self, word_vecs: torch.Tensor, type_vecs: torch.Tensor, word_counts: torch.Tensor) -> torch.Tensor:
        """word_vecs (B, W, D), type_vecs (B, C, D), word_counts (B,) -> span logits (B, W, max_width, C).

        Entry [b, i, k, t] scores words i..i+k of text b against type t. Only words and spans inside their text
        are computed (padding is most of a batch of short sentences); the other entries hold no score and must
        be masked (``span_mask``).
        """
        batch, num_words, d = word_vecs.shape
        device = word_vecs.device
        counts = word_counts.cpu().unsqueeze(1)
        positions = torch.arange(num_words)
        real_words = (positions < counts).flatten().nonzero().squeeze(1)  # b * W + i of each word, text by text
        words_after = (counts - 1 - positions).flatten()[real_words]  # how many words follow it in its text
        real_words = real_words.to(device)
        packed = word_vecs.flatten(0, 1)[real_words]  # (N, D)
        starts = F.relu(self.project_start(packed))
        ends = F.relu(self.project_end(packed))
        if self.span_mode == "markerV0":
            first, last = self.out_project[0], self.out_project[3]
            start_weight, end_weight = first.weight.split(d, dim=1)  # split: its gradient is one concatenation
            start_terms = F.linear(starts, start_weight, first.bias)  # (N, 4D)
            end_terms = F.linear(ends, end_weight)  # (N, 4D)
            folded_types = (type_vecs @ last.weight).transpose(1, 2)  # (B, 4D, C)
            scores = []
            for k in range(self.max_width):  # one width at a time: (spans, 4D) rather than (B, W, K, 4D) at once
                # Texts are contiguous in the packed rows, so a width-k span starting at row n ends at row n + k.
                span_starts = (words_after >= k).nonzero().squeeze(1).to(device)
                span_terms = start_terms.index_select(0, span_starts) + end_terms.index_select(0, span_starts + k)
                hidden = self.out_project[2](F.relu(span_terms))
                padded = unpad(hidden, real_words[span_starts], batch, num_words)  # (B, W, 4D), by start word
                scores.append(padded @ folded_types)  # each text against its own types
            return torch.stack(scores, dim=2) + (type_vecs @ last.bias).unsqueeze(1).unsqueeze(1)
        out = self.out_project
        starts, ends = unpad(starts, real_words, batch, num_words), unpad(ends, real_words, batch, num_words)
        start_scores = starts @ (type_vecs @ out.weight[:, :d]).transpose(1, 2)  # (B, W, C)
        end_scores = ends @ (type_vecs @ out.weight[:, d:]).transpose(1, 2)  # (B, W, C)
        bias = (type_vecs @ out.bias).unsqueeze(1).unsqueeze(1)
        end_scores = F.pad(end_scores, (0, 0, 0, self.max_width - 1)).unfold(1, self.max_width, 1).transpose(2, 3)
        return start_scores.unsqueeze(2) + end_scores + bias  # [b, i, k]: start i, end i + k


class WordEncoder(nn.Module):
    """Encoder (+ projection) + BiLSTM: what every family shares. Gives word vectors and the <<ENT>> states."""

    def __init__(self, config: GLiNERConfig, encoder: nn.Module):
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.encoder = encoder
        encoder_width = encoder.config.hidden_size
        self.projection = nn.Linear(encoder_width, d) if encoder_width != d else None
        self.lstm = (
            nn.LSTM(d, d // 2, num_layers=config.num_rnn_layers, bidirectional=True, batch_first=True)
            if config.num_rnn_layers > 0
            else None
        )

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        word_index: torch.Tensor,
        word_counts: torch.Tensor,
        type_index: torch.Tensor,
        use_lstm: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Word vectors (B, W, D) after the BiLSTM, and the token states at each <<ENT>> (B, C, D).

        word_index (B, W): token position of each word's first sub-token; word_counts (B,), on the CPU, words
        per row; type_index (B, C): token position of each <<ENT>>. Padding entries may point anywhere.
        ``use_lstm=False`` skips the BiLSTM (bi-encoders: the reference library never applies theirs).
        """
        token_states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.projection is not None:
            token_states = self.projection(token_states)
        word_vecs = gather_rows(token_states, word_index)
        if self.lstm is not None and use_lstm:
            packed = pack_padded_sequence(word_vecs, word_counts.cpu(), batch_first=True, enforce_sorted=False)
            word_vecs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=word_vecs.shape[1])
        return word_vecs, gather_rows(token_states, type_index)


class GLiNERModel(WordEncoder):
    """Encoder + BiLSTM + span head + type FFN. Inputs come from ``PromptTokenizer.collate`` (encoding.py)."""

    def __init__(self, config: GLiNERConfig, encoder: nn.Module):
        super().__init__(config, encoder)
        d = config.hidden_size
        self.span_head = SpanHead(d, config.max_width, config.dropout, config.span_mode)
        self.type_ffn = ffn(d, 4 * d, d, config.dropout)

    def forward(self, input_ids, attention_mask, word_index, word_counts, type_index) -> torch.Tensor:
        """Span logits (B, W, max_width, C); the inputs are those of ``WordEncoder.encode``."""
        word_vecs, ent_states = self.encode(input_ids, attention_mask, word_index, word_counts, type_index)
        return self.span_head(word_vecs, self.type_ffn(ent_states), word_counts)


def unpad(rows: torch.Tensor, index: torch.Tensor, batch: int, num_words: int) -> torch.Tensor:
    """rows (N, X) of words at flat positions ``index`` (b * W + i) -> (B, W, X), zero elsewhere."""
    padded = rows.new_zeros(batch * num_words, rows.shape[-1])
    return padded.index_copy(0, index, rows).view(batch, num_words, -1)


def gather_rows(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """states (B, T, D), index (B, N) -> (B, N, D) with [b, n] = states[b, index[b, n]]."""
    return torch.gather(states, 1, index.unsqueeze(-1).expand(-1, -1, states.shape[-1]))


def span_mask(word_counts: torch.Tensor, num_words: int, max_width: int) -> torch.Tensor:
    """(B, W, K) bool: whether span [i, i + k] lies inside the text."""
    ends = torch.arange(num_words).unsqueeze(1) + torch.arange(max_width).unsqueeze(0)  # (W, K)
    return ends.unsqueeze(0) < word_counts.view(-1, 1, 1)

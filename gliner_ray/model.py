"""What every checkpoint family shares, in pure torch: the config, the encoder wrapper and small layers.

    token states   = encoder(input)                   (then a linear map if hidden_size != encoder width)
    word states    = BiLSTM(state of each word's first sub-token)
    <<ENT>> states = the token state at each <<ENT>>

Each family's scoring head lives in its own file under models/ (span.py, token.py, biencoder.py). The parameters
keep the layout of the reference library's checkpoints (see checkpoint.py for the names).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .text import WORD_SPLITTERS

# The reference library's model_type names of the families we run (the family itself is read from span_mode and
# labels_encoder, as the reference does: its saved model_type is often None or stale).
MODEL_TYPES = (None, "gliner", "gliner_uni_encoder_span", "gliner_uni_encoder_token", "gliner_bi_encoder_span",
               "gliner_bi_encoder_token", "gliner_uni_encoder_span_relex")
SPAN_MODES = ("markerV0", "marker")  # span heads; "token_level" models score words instead (models/token.py)
# How relex models score entity pairs before typing them ("none": every pair); see models/relex.py.
RELATIONS_LAYERS = ("none", "dot", "bilinear", "mlp")


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
    relations_layer: str | None = None  # relation extraction models (models/relex.py); None: entities only
    rel_token: str = "<<REL>>"
    rel_token_index: int = -1
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
        if self.relations_layer is not None and self.relations_layer not in RELATIONS_LAYERS:
            raise ValueError(
                f"gliner_config.json sets relations_layer={self.relations_layer!r}: this relation layer is not "
                f"supported; supported: {', '.join(RELATIONS_LAYERS)}"
            )
        if self.relations_layer is not None and self.span_mode == "token_level":
            raise ValueError(
                "gliner_config.json sets relations_layer with span_mode='token_level': token-level relation "
                "models are not supported (only span models with relations_layer)"
            )
        refused = {
            "subtoken_pooling": ("first", lambda v: v in (None, "first")),
            "embed_ent_token": (True, lambda v: v in (None, True)),
            "fuse_layers": (False, lambda v: not v),
            "post_fusion_schema": ("", lambda v: not v),
            "represent_spans": (False, lambda v: not v),
            "labels_decoder": (None, lambda v: v is None),
            "triples_layer": (None, lambda v: v is None),
            "embed_rel_token": (True, lambda v: v in (None, True)),
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


def gather_rows(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """states (B, T, D), index (B, N) -> (B, N, D) with [b, n] = states[b, index[b, n]]."""
    return torch.gather(states, 1, index.unsqueeze(-1).expand(-1, -1, states.shape[-1]))

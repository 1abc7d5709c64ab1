"""A GLiNER whose scores depend on the words of a span alone, for tests that compare windowed and whole-text runs."""

from __future__ import annotations

import torch

from gliner_ray import GLiNER


def save_context_free_gliner(encoder_dir: str, path) -> None:
    """A GLiNER on the context-free encoder (no attention layers, zeroed position and segment embeddings) with no
    LSTM: windowing must then give exactly the unwindowed result. Seeded so that a planted word outscores filler."""
    torch.manual_seed(0)
    model = GLiNER.from_backbone(encoder_dir, hidden_size=32, device="cpu")
    model.model.lstm, model.config.num_rnn_layers = None, 0
    with torch.no_grad():
        model.model.type_ffn[3].weight.mul_(8.0)  # spread the scores
    model.save_pretrained(path)

"""The predictors: ``GLiNER`` (base.py) prompts a network from ``models/`` and turns its scores into entities;
each checkpoint family other than uni-encoder span models has its subclass here (token, biencoder, relex)."""

from .base import GLiNER
from .biencoder import BiEncoderGLiNER, BiEncoderTokenGLiNER
from .relex import RelexGLiNER
from .token import TokenGLiNER

__all__ = ["GLiNER", "TokenGLiNER", "BiEncoderGLiNER", "BiEncoderTokenGLiNER", "RelexGLiNER"]

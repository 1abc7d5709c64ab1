"""The checkpoint families of the reference library that gliner-ray runs, one short file each.

A family is a network (an ``nn.Module`` in the checkpoint's parameter layout) and the ``GLiNER`` class that
prompts it and turns its scores into entities. All share the encoder wrapper (``model.WordEncoder``), prompt
building (``encoding.py``) and greedy decoding (``decode.py``):

| family            | config                                     | network                 | file         |
|-------------------|--------------------------------------------|-------------------------|--------------|
| uni-encoder span  | span_mode markerV0 / marker                | ``GLiNERModel``         | span.py      |
| uni-encoder token | span_mode token_level                      | ``TokenModel``          | token.py     |
| bi-encoder span   | labels_encoder, span_mode markerV0 / marker | ``BiEncoderSpanModel``  | biencoder.py |
| bi-encoder token  | labels_encoder, span_mode token_level      | ``BiEncoderTokenModel`` | biencoder.py |
| relation (relex)  | relations_layer, span_mode markerV0 / marker | ``RelexModel``        | relex.py     |

Token-level relation models, triple scorers, label decoders and streaming models are refused by name.

The family is read from the config as the reference library does (``span_mode``, ``labels_encoder``,
``relations_layer``, ``labels_decoder``), never from its ``model_type``, which older releases saved as None.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..model import GLiNERConfig


@dataclass(frozen=True)
class Family:
    name: str
    network: type[nn.Module]  # built as network(config, encoder, ...)
    predictor: type  # a GLiNER subclass (or GLiNER itself)


def family_of(config: GLiNERConfig) -> Family:
    """The family a checkpoint's config selects; a ValueError naming the setting for one we do not run."""
    # Imported here, not at the top: the predictors import gliner.py, which imports this package (span.py).
    from ..predict import BiEncoderGLiNER, BiEncoderTokenGLiNER, GLiNER, RelexGLiNER, TokenGLiNER
    from .span import GLiNERModel
    from .biencoder import BiEncoderSpanModel, BiEncoderTokenModel
    from .relex import RelexModel
    from .token import TokenModel

    config.check_supported()  # relation, decoder and streaming models are refused there, by name
    token_level = config.span_mode == "token_level"
    if config.relations_layer is not None:
        return Family("uni_encoder_span_relex", RelexModel, RelexGLiNER)
    if config.labels_encoder:
        if token_level:
            return Family("bi_encoder_token", BiEncoderTokenModel, BiEncoderTokenGLiNER)
        return Family("bi_encoder_span", BiEncoderSpanModel, BiEncoderGLiNER)
    if token_level:
        return Family("uni_encoder_token", TokenModel, TokenGLiNER)
    return Family("uni_encoder_span", GLiNERModel, GLiNER)

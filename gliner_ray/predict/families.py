"""The checkpoint families of the reference library that gliner-ray runs, and loading a checkpoint as its family.

A family is a network (``models/``: an ``nn.Module`` in the checkpoint's parameter layout) and the ``GLiNER``
class that prompts it and turns its scores into entities (``predict/``):

| family            | config                                     | network                 | predictor                |
|-------------------|--------------------------------------------|-------------------------|--------------------------|
| uni-encoder span  | span_mode markerV0/marker                  | ``GLiNERModel``         | ``GLiNER``               |
| uni-encoder token | span_mode token_level                      | ``TokenModel``          | ``TokenGLiNER``          |
| bi-encoder span   | labels_encoder, span_mode markerV0/marker  | ``BiEncoderSpanModel``  | ``BiEncoderGLiNER``      |
| bi-encoder token  | labels_encoder, span_mode token_level      | ``BiEncoderTokenModel`` | ``BiEncoderTokenGLiNER`` |
| relation (relex)  | relations_layer, span_mode markerV0/marker | ``RelexModel``          | ``RelexGLiNER``          |

Token-level relation models, triple scorers, label decoders and streaming models are refused by name. The family
is read from the config as the reference library does (``span_mode``, ``labels_encoder``, ``relations_layer``,
``labels_decoder``), never from its ``model_type``, which older releases saved as None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from .. import checkpoint
from ..encoding import PromptTokenizer
from ..model import GLiNERConfig
from ..models.biencoder import BiEncoderSpanModel, BiEncoderTokenModel
from ..models.relex import RelexModel
from ..models.span import GLiNERModel
from ..models.token import TokenModel
from .base import GLiNER
from .biencoder import BiEncoderGLiNER, BiEncoderTokenGLiNER
from .relex import RelexGLiNER
from .token import TokenGLiNER


@dataclass(frozen=True)
class Family:
    name: str
    network: type[nn.Module]  # built by checkpoint.build_model as network(config, encoder[, labels encoder])
    predictor: type[GLiNER]


def family_of(config: GLiNERConfig) -> Family:
    """The family a checkpoint's config selects; a ValueError naming the setting for one we do not run."""
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


def load_predictor(
    name_or_path: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
) -> GLiNER:
    """``GLiNER.from_pretrained``: the checkpoint's network, its weights loaded strictly, in its family's class."""
    path = checkpoint.resolve_checkpoint_dir(name_or_path, cache_dir=cache_dir, revision=revision)
    config = checkpoint.read_config(path)
    family = family_of(config)
    tokenizer = checkpoint.load_tokenizer(config, path)
    ent_id = tokenizer.convert_tokens_to_ids(config.ent_token)
    if config.class_token_index not in (-1, ent_id):
        raise ValueError(
            f"{path}: class_token_index={config.class_token_index} in {checkpoint.CONFIG_FILE} but the tokenizer "
            f"gives {config.ent_token!r} id {ent_id}; the tokenizer files do not belong to these weights"
        )
    config.class_token_index = ent_id
    model = checkpoint.build_model(family.network, config, tokenizer)
    checkpoint.load_weights_strictly(model, checkpoint.read_state_dict(path))
    extras = {"labels_tokenizer": checkpoint.load_labels_tokenizer(config, path)} if config.labels_encoder else {}
    return family.predictor(model, tokenizer, config, **extras).to(device, dtype)


def load_prompt_tokenizer(name_or_path: str | os.PathLike) -> tuple[PromptTokenizer, GLiNERConfig]:
    """The tokenizer side of a checkpoint, without its weights: for CPU workers that prepare model inputs. Its
    class is the family's (bi-encoder texts carry no label prompt)."""
    path = checkpoint.resolve_checkpoint_dir(name_or_path)
    config = checkpoint.read_config(path)
    tokenizer = checkpoint.load_tokenizer(config, path)
    prompt_tokenizer_class = family_of(config).predictor.prompt_tokenizer_class
    return prompt_tokenizer_class.for_encoder(tokenizer, config, checkpoint.encoder_config(config)), config

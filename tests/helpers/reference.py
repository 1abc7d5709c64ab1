"""Checkpoints built and saved by the reference ``gliner`` library, and the texts ours and its predictions are
compared on. Random heads score everything near 0.5: each builder spreads the scores so that thresholds select."""

import torch

TEXTS = [
    "Barack Obama visited Paris in 2010 with Michelle, then flew to New York.",
    "Apple's CEO Tim Cook met Emmanuel Macron at the Élysée Palace — in co-operation with e-mail users!",
    "Straße in München, 東京都 and São Paulo: (ISO-8859-1) vs. UTF-8; prices $3.50/€4 at 9:30 a.m.",
    "",
    "state-of-the-art snake_case_names and O'Neill's well-known X-ray",
]
SCORE_SPREAD = 40.0  # scale of a span model's type vectors


def build_reference(path, safetensors=True, inside_bias=2.0, spread_bias=False, pair_scale=None, **config):
    """A model made from ``config`` and saved by the reference library (seed 0). A token-level scorer's last layer
    is scaled by 20 and its "inside" logit raised by ``inside_bias``; a span model's type vectors are scaled by
    ``SCORE_SPREAD`` (their bias too with ``spread_bias``); a relex model's pair layer by ``pair_scale``."""
    from gliner import GLiNER as ReferenceGLiNER
    from gliner import GLiNERConfig as ReferenceConfig

    torch.manual_seed(0)
    reference = ReferenceGLiNER.from_config(ReferenceConfig(**config))
    model = reference.model
    with torch.no_grad():
        if hasattr(model, "scorer"):
            model.scorer.out_mlp[3].weight.mul_(20.0)
            model.scorer.out_mlp[3].bias.add_(torch.tensor([0.0, 0.0, inside_bias]))
        else:
            model.prompt_rep_layer[3].weight.mul_(SCORE_SPREAD)
            if spread_bias:
                model.prompt_rep_layer[3].bias.mul_(SCORE_SPREAD)
        if pair_scale is not None:
            model.pair_rep_layer[3].weight.mul_(pair_scale)
    reference.save_pretrained(path, safe_serialization=safetensors)
    return path


def build_reference_checkpoint(encoder_dir, path, hidden_size, span_mode="markerV0", safetensors=False):
    """A uni-encoder span GLiNER on a local encoder, its type vectors and their bias spread."""
    return build_reference(path, safetensors, spread_bias=True, model_name=str(encoder_dir), hidden_size=hidden_size,
                           span_mode=span_mode, max_width=12)


def build_relex(path, relations_layer, pair_scale, minilm_dir, safetensors=True):
    """A relation extraction GLiNER on MiniLM (hidden 64), its pair layer scaled by ``pair_scale``."""
    return build_reference(path, safetensors, pair_scale=pair_scale, model_name=minilm_dir, hidden_size=64,
                           relations_layer=relations_layer)

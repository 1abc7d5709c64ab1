"""Reading and writing GLiNER checkpoints in the reference library's layout.

A checkpoint directory holds ``gliner_config.json``, ``model.safetensors`` or ``pytorch_model.bin``, and
(in newer checkpoints) the tokenizer files. Older checkpoints (gliner_small-v2.1 era) carry no encoder
config and no tokenizer: both come from ``model_name``, with ``[FLERT] <<ENT>> <<SEP>>`` added.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from torch import nn
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig

from .hub import download_hint, hub_offline
from .model import GLiNERConfig

CONFIG_FILE = "gliner_config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Parameter names: (reference library prefix, ours). Every parameter falls under exactly one of them.
CHECKPOINT_PREFIXES = (
    ("token_rep_layer.bert_layer.model.", "encoder."),
    ("token_rep_layer.projection.", "projection."),
    ("rnn.lstm.", "lstm."),
    ("span_rep_layer.span_rep_layer.", "span_head."),
    ("prompt_rep_layer.", "type_ffn."),
    ("scorer.", "scorer."),  # token-level models (models/token.py)
    ("token_rep_layer.labels_encoder.model.", "label_encoder.encoder."),  # bi-encoders (models/biencoder.py)
    ("token_rep_layer.labels_projection.", "label_encoder.projection."),
    ("relations_rep_layer.relation_rep_layer.", "adjacency."),  # relation models (models/relex.py)
    ("pair_rep_layer.", "pair_ffn."),
)
LABELS_TOKENIZER_DIR = "labels_tokenizer"  # bi-encoders: the label encoder's tokenizer, beside the text one
# Buffers older transformers versions saved and newer ones rebuild: absent or extra, they do not matter.
REBUILT_BUFFERS = ("position_ids", "token_type_ids")
ADDED_TOKENS = ("[FLERT]",)  # followed by the config's ent_token and sep_token


def resolve_checkpoint_dir(name_or_path: str | os.PathLike, cache_dir: str | None = None, revision: str | None = None) -> Path:
    """A local checkpoint directory: a local path as it is, a remote one (``s3://bucket/run/final``) copied into the
    local cache, or a hub id (``urchade/gliner_small-v2.1``) downloaded."""
    if "://" in str(name_or_path):
        return _download_remote(str(name_or_path), cache_dir)
    path = Path(name_or_path)
    if path.is_dir():
        check_checkpoint_dir(path)
        return path
    if path.exists() or str(name_or_path).startswith((".", "/", "~")) or str(name_or_path).count("/") > 1:
        raise FileNotFoundError(f"{name_or_path} is not a directory holding a GLiNER checkpoint")
    path = _download_from_hub(str(name_or_path), cache_dir, revision)
    check_checkpoint_dir(path)
    return path


def _download_from_hub(repo_id: str, cache_dir: str | None, revision: str | None) -> Path:
    """A hub checkpoint's snapshot in the local cache, downloaded when the hub answers (``hub.hub_offline``)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline = hub_offline()
    try:
        return Path(snapshot_download(
            repo_id=repo_id, revision=revision, cache_dir=cache_dir, local_files_only=offline,
            allow_patterns=["*.json", "*.safetensors", "*.bin", "*.model", "*.txt"],
        ))
    except LocalEntryNotFoundError:
        if not offline:
            raise
        raise FileNotFoundError(f"GLiNER checkpoint {repo_id!r} is not in the local Hugging Face cache and the hub "
                                f"is offline: {download_hint(repo_id)}, or pass a local checkpoint directory") from None
    except Exception as error:  # authentication, unknown repository: say which and why
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise OSError(f"could not fetch GLiNER checkpoint {repo_id!r} from the Hugging Face hub ({reason}); "
                      f"for offline use pass the path of a local checkpoint directory") from error


def load_named(load, name: str, what: str):
    """``load(name)`` for a model an older checkpoint names (``model_name``, ``labels_encoder``) instead of saving;
    when it cannot be loaded, an error that names it and the command that fetches it."""
    if not Path(name).is_dir():
        hub_offline()  # a hub id: when the hub does not answer, read the cache at once instead of retrying
    try:
        return load(name)
    except OSError as error:
        raise FileNotFoundError(
            f"this checkpoint's gliner_config.json names its {what} {name!r} instead of saving it, and {name!r} "
            f"cannot be loaded ({str(error).splitlines()[0]}): {download_hint(name)}"
        ) from None


def _download_remote(uri: str, cache_dir: str | None) -> Path:
    """Copy a checkpoint directory from any fsspec filesystem into ``cache_dir/<hash of uri>`` once."""
    import hashlib

    import fsspec

    cache = Path(cache_dir or Path.home() / ".cache" / "gliner_ray")
    local = cache / hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]
    if not (local / ".complete").is_file():
        fs, remote = fsspec.core.url_to_fs(uri)
        if not fs.isfile(f"{remote.rstrip('/')}/{CONFIG_FILE}"):
            raise FileNotFoundError(f"{uri} is not a GLiNER checkpoint: {CONFIG_FILE} is missing")
        partial = local.with_name(local.name + f".partial-{os.getpid()}")
        fs.get(remote.rstrip("/") + "/", str(partial), recursive=True)
        if local.exists():
            shutil.rmtree(local)
        partial.rename(local)
        (local / ".complete").touch()
    check_checkpoint_dir(local)
    return local


def check_checkpoint_dir(path: Path) -> None:
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a GLiNER checkpoint: {CONFIG_FILE} is missing")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise FileNotFoundError(f"{path} is not a GLiNER checkpoint: neither {' nor '.join(WEIGHT_FILES)} is there")


def read_config(path: Path) -> GLiNERConfig:
    with open(path / CONFIG_FILE, encoding="utf-8") as f:
        return GLiNERConfig.from_dict(json.load(f))


def load_tokenizer(config: GLiNERConfig, path: Path | None):
    """The checkpoint's own tokenizer when saved beside it, else ``model_name``'s; special tokens added if missing."""
    if path is not None and (path / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(path)
    else:
        tokenizer = load_named(AutoTokenizer.from_pretrained, config.model_name, "encoder (model_name)")
    # Sentencepiece tokenizers stopped adding bos/eos by default in transformers 5; GLiNER models expect them.
    if hasattr(tokenizer, "add_bos_token") and tokenizer.bos_token_id is not None:
        tokenizer.add_bos_token = True
    if hasattr(tokenizer, "add_eos_token") and tokenizer.eos_token_id is not None:
        tokenizer.add_eos_token = True
    special = [*ADDED_TOKENS, config.ent_token, config.sep_token]
    if config.relations_layer is not None:
        special.append(config.rel_token)
    if any(tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id) for t in special[1:]):
        tokenizer.add_tokens(special, special_tokens=True)
    return tokenizer


def encoder_config(config: GLiNERConfig) -> PretrainedConfig:
    if config.encoder_config is not None:
        values = dict(config.encoder_config)
        return AutoConfig.for_model(values.pop("model_type"), **values)
    loaded = load_named(AutoConfig.from_pretrained, config.model_name, "encoder (model_name)")
    if config.vocab_size != -1:
        loaded.vocab_size = config.vocab_size
    return loaded


def labels_encoder_config(config: GLiNERConfig) -> PretrainedConfig:
    """The config of a bi-encoder's label encoder: saved in the checkpoint, else read from ``labels_encoder``."""
    if config.labels_encoder_config is not None:
        values = dict(config.labels_encoder_config)
        return AutoConfig.for_model(values.pop("model_type"), **values)
    return load_named(AutoConfig.from_pretrained, config.labels_encoder, "label encoder (labels_encoder)")


def load_labels_tokenizer(config: GLiNERConfig, path: Path | None):
    """A bi-encoder's label tokenizer: saved beside the checkpoint, else ``labels_encoder``'s."""
    saved = path / LABELS_TOKENIZER_DIR if path is not None else None
    if saved is not None and saved.is_dir():
        return AutoTokenizer.from_pretrained(saved)
    return load_named(AutoTokenizer.from_pretrained, config.labels_encoder, "label encoder (labels_encoder)")


def build_model(network: type[nn.Module], config: GLiNERConfig, tokenizer) -> nn.Module:
    """A randomly initialised ``network`` (the class of the config's family) with the checkpoint's shapes.
    The embedding matrix fits the tokenizer, except for bi-encoders, whose texts carry no prompt tokens."""
    encoder = AutoModel.from_config(encoder_config(config))
    if config.labels_encoder:
        return network(config, encoder, AutoModel.from_config(labels_encoder_config(config)))
    if encoder.get_input_embeddings().num_embeddings < len(tokenizer):
        encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return network(config, encoder)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Checkpoint tensors under the reference library's names. ``.bin`` files load without running pickled code."""
    weights = path / WEIGHT_FILES[0]
    if weights.is_file():
        with safe_open(weights, framework="pt") as f:
            state = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
            aliases = f.metadata() or {}
        # safetensors writes a tied tensor once and names the other copies in the metadata.
        for alias, stored in aliases.items():
            if alias not in state and stored in state:
                state[alias] = state[stored]
        return state
    return torch.load(path / WEIGHT_FILES[1], map_location="cpu", weights_only=True)


def checkpoint_name(ours: str) -> str:
    """The reference library's name for one of our parameters."""
    for theirs_prefix, ours_prefix in CHECKPOINT_PREFIXES:
        if ours.startswith(ours_prefix):
            return theirs_prefix + ours[len(ours_prefix) :]
    raise KeyError(f"parameter {ours} has no checkpoint name; add its prefix to CHECKPOINT_PREFIXES")


def load_weights_strictly(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load every learned weight or fail naming the checkpoint keys missing or unexpected (never run half-random)."""
    state = {key.replace("_orig_mod.", ""): tensor for key, tensor in state.items()}  # torch.compile artifacts
    ours_by_checkpoint_name = {checkpoint_name(key): key for key in model.state_dict()}
    missing = [k for k in ours_by_checkpoint_name if k not in state and not k.endswith(REBUILT_BUFFERS)]
    unexpected = [k for k in state if k not in ours_by_checkpoint_name and not k.endswith(REBUILT_BUFFERS)]
    if missing or unexpected:
        raise ValueError(
            "checkpoint does not match the model its config describes: "
            f"missing {sorted(missing)[:10]}, unexpected {sorted(unexpected)[:10]}"
        )
    model.load_state_dict({ours_by_checkpoint_name[k]: v for k, v in state.items() if k in ours_by_checkpoint_name},
                          strict=False)


def save_checkpoint(model: nn.Module, tokenizer, config: GLiNERConfig, path: str | os.PathLike) -> None:
    """Write config, safetensors weights and tokenizer in the layout the reference library loads."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    values = config.to_dict()
    values.update(
        encoder_config=model.encoder.config.to_dict(),
        class_token_index=tokenizer.convert_tokens_to_ids(config.ent_token),
        vocab_size=model.encoder.get_input_embeddings().num_embeddings,
    )
    if config.relations_layer is not None:
        values["rel_token_index"] = tokenizer.convert_tokens_to_ids(config.rel_token)
    if hasattr(model, "label_encoder"):  # bi-encoders: texts carry no prompt, the embeddings keep their size
        values.update(labels_encoder_config=model.label_encoder.encoder.config.to_dict(), vocab_size=-1)
    # Copies, so tensors that share storage (or are non-contiguous after CUDA's LSTM flattening) save cleanly.
    state = {checkpoint_name(k): v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    save_file(state, path / WEIGHT_FILES[0], metadata={"format": "pt"})
    with open(path / CONFIG_FILE, "w", encoding="utf-8") as f:
        json.dump(values, f, indent=2, sort_keys=True)
    tokenizer.save_pretrained(path)

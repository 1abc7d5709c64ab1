"""What an extraction run depends on (Settings) and how it spreads (Scale); their checks, and the claim on an
output directory: a resumed run must use the settings recorded there, or its rows would mix with other results."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import MISSING, asdict, dataclass, fields

from .. import corpus
from ..checks import changed_settings, check_at_least, check_threshold
from ..precision import PRECISIONS
from ..predict.families import load_prompt_tokenizer
from ..predict.relex import MAX_PAIRS
from ..shards import SPLIT_BYTES
from ..text import clean_labels, clean_relations
from .store import Store

METADATA_KEY = b"gliner_ray"
SETTINGS_FILE = "_progress/settings.json"


@dataclass(frozen=True)
class Settings:
    """What the output depends on: a resumed run must use the same, or its rows would mix with other results."""

    model: str
    labels: tuple[str, ...]
    threshold: float = 0.5
    flat_ner: bool = True
    multi_label: bool = False
    id_field: str = "id"
    text_field: str = "text"
    max_chars: int | None = None
    max_record_bytes: int | None = corpus.MAX_RECORD_BYTES  # a longer line or document is an error row
    split_bytes: int | None = SPLIT_BYTES  # files over this are read in pieces (a piece's outputs are named after it)
    precision: str = "fp32"  # the model's number format (see precision.py); bf16/fp16 change scores slightly
    relations: tuple[str, ...] = ()  # relation types (relex models): also write relations/
    relation_threshold: float | None = None  # keep relations scoring above this (None: ``threshold``)
    max_pairs: int = MAX_PAIRS  # entity pairs scored per window at most, the best-scoring entities' first
    labels_field: str | None = None  # each record's own entity types are in this field (then ``labels`` is empty)

    def cleaned(self) -> Settings:
        """The same settings with the entity and relation types validated and deduplicated."""
        if self.labels_field is not None and self.labels:
            raise ValueError("--labels (or --labels-file) and --labels-field are alternatives: give all documents "
                             "the same entity types, or read each document's own from its --labels-field, not both")
        labels = self.labels if self.labels_field is not None else tuple(clean_labels(list(self.labels)))
        return dataclasses.replace(self, labels=labels,
                                   relations=clean_relations(list(self.relations)))

    def metadata(self) -> dict[bytes, bytes]:
        """The run's key-value metadata for every Parquet file written."""
        run = {"model": self.model, "labels": list(self.labels), "threshold": self.threshold,
               "flat_ner": self.flat_ner, "multi_label": self.multi_label, "precision": self.precision}
        if self.labels_field is not None:
            run["labels_field"] = self.labels_field
        if self.relations:
            run.update(relations=list(self.relations), relation_threshold=self.relation_threshold)
        return {METADATA_KEY: json.dumps(run).encode()}


@dataclass(frozen=True)
class Scale:
    """How the work spreads over the cluster; None picks a default from the cluster's resources."""

    actors: tuple[int, int] | None = None  # (min, max) model actors
    num_gpus_per_actor: float | None = None
    cpus_per_actor: int = 1  # Ray CPUs each model actor reserves, and its torch threads
    batch_size: int | None = None  # model rows (windows) per forward pass
    max_tokens: int | None = None  # padded sub-tokens per forward pass (with batch_size too: both bounds hold)
    cpu_workers: int | None = None  # concurrent CPU-stage tasks beside GPU actors (None: as many as fit)
    chunk_size: int = 256  # documents per chunk: the unit of work, of retry, and of output files


@functools.lru_cache(maxsize=4)
def prompt_tokenizer(model: str):
    """The checkpoint's tokenizer side, loaded once per worker process (Ray reuses workers across tasks)."""
    return load_prompt_tokenizer(model)


def check_arguments(settings: Settings, scale: Scale) -> None:
    """Refuse bad settings with a message naming the fix (the model is checked by loading its tokenizer)."""
    check_threshold(settings.threshold, "--threshold")
    for name in ("chunk_size", "cpus_per_actor", "batch_size", "max_tokens", "cpu_workers"):
        check_at_least(getattr(scale, name), f"--{name.replace('_', '-')}")
    if settings.split_bytes is not None and settings.split_bytes < 1:
        raise ValueError(f"--split-size must be at least 1 byte (or 0 for no splitting), got {settings.split_bytes}")
    if settings.precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {settings.precision!r}")
    check_at_least(settings.max_chars, "--max-chars")
    check_at_least(settings.max_record_bytes, "--max-record-size")
    check_at_least(settings.max_pairs, "--max-pairs")
    if scale.actors is not None and not 1 <= scale.actors[0] <= scale.actors[1]:
        raise ValueError(f"--actors must be N or MIN,MAX with 1 <= MIN <= MAX, got {scale.actors}")
    if settings.relation_threshold is not None:
        check_threshold(settings.relation_threshold, "--relation-threshold")
    if settings.labels_field is not None and settings.relations:
        raise ValueError("--labels-field cannot go with --relations: relation extraction runs with one set of "
                         "entity types for the whole corpus; pass --labels instead")
    tokenizer, config = prompt_tokenizer(settings.model)
    if settings.relations and config.relations_layer is None:
        raise ValueError(f"--relations needs a relation extraction (relex) checkpoint; {settings.model} extracts "
                         f"entities only: leave --relations out, or pass a relex --model")
    if settings.labels_field is None:
        tokenizer.label_passes(settings.labels, settings.relations)  # raises when a label cannot fit a prompt


def claim(store: Store, settings: Settings) -> None:
    """Record the settings of the output, or refuse to add to an output made with other settings."""
    current = json.loads(json.dumps(asdict(settings)))  # as JSON gives it back: lists, not tuples
    if not store.exists(SETTINGS_FILE):
        store.write_json(SETTINGS_FILE, current)
        return
    defaults = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}
    previous = {**defaults, **store.read_json(SETTINGS_FILE)}  # settings added since that run have their defaults
    changed = changed_settings(previous, current)
    if changed:
        raise ValueError(
            f"{store.uri} holds results of a run with other settings ({', '.join(changed)} differ): "
            f"pass --overwrite to start again, or choose another --output"
        )

"""Per-document label sets (``--labels-field``): each record brings its own entity types, read and cleaned by
``corpus.read_records``. Here: the label set a document is scored with, the records whose set cannot make a prompt
(turned into error records in the CPU stage), and short names of label sets, so the driver counts distinct ones."""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

from ..corpus import Record
from .settings import Settings, prompt_tokenizer


def labels_of(settings: Settings, own: Sequence[str] | None) -> tuple[str, ...]:
    """The entity types a document is scored with: its own (``--labels-field``), else the run's."""
    return tuple(own) if own is not None else settings.labels


def check_label_sets(records: list[Record], settings: Settings) -> list[Record]:
    """The records, each document whose own entity types cannot make a prompt (a label longer than any prompt
    allows) made an error record naming the field; without ``labels_field``, the records as they are."""
    if settings.labels_field is None:
        return records
    tokenizer, _ = prompt_tokenizer(settings.model)
    problems: dict[tuple[str, ...], str | None] = {}
    checked = []
    for record in records:
        if record.error is None and record.labels not in problems:
            try:
                tokenizer.label_passes(record.labels, settings.relations)
                problems[record.labels] = None
            except ValueError as error:
                problems[record.labels] = f"{settings.labels_field!r}: {error}"
        if record.error is None and problems[record.labels] is not None:
            record = Record(record.row, record.doc_id, None, problems[record.labels])
        checked.append(record)
    return checked


def label_set_names(label_sets: Iterable[Sequence[str]]) -> list[str]:
    """A short name (a hash) of each distinct label set: what chunk summaries carry so the driver counts them."""
    return sorted({hashlib.blake2b("\x1f".join(labels).encode(), digest_size=8).hexdigest() for labels in label_sets})

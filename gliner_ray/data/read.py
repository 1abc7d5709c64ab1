"""Reading an annotated NER dataset from a local path or any fsspec URI (``s3://...``) in any of ``FORMATS``.
Readers raise ``ValueError`` naming the file and line for malformed content; an example that parses but cannot be
used (no words, a span out of range or inverted, an empty label) is skipped and counted, with one warning."""

from __future__ import annotations

from typing import Any, Mapping

from .conll import CONLL_SUFFIXES, read_conll
from .examples import Dataset, relabel
from .json_formats import gliner_dataset, read_json_records, uniner_dataset

FORMATS = ("conll", "uniner", "pile-ner", "gliner")


def read_dataset(path: str, format: str | None = None, label_map: Mapping[str, str] | None = None) -> Dataset:
    """Read ``path`` in ``format``; when None, ``.txt``/``.conll``/``.bio`` mean conll, ``.jsonl`` gliner, and
    a ``.json`` file's records tell (``conversations``: uniner, ``tokenized_text``: gliner).

    ``label_map`` renames entity types; for ``conll`` it is applied over ``DEFAULT_LABEL_MAP``.
    """
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown format {format!r} for {path}: use one of {', '.join(FORMATS)}")
    suffix = path.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    if format is None and suffix not in (*CONLL_SUFFIXES, "json", "jsonl"):
        raise ValueError(f"cannot tell the format of {path} from its extension: pass --format ({', '.join(FORMATS)})")
    if format == "conll" or (format is None and suffix in CONLL_SUFFIXES):
        return read_conll(path, label_map)
    records = read_json_records(path)
    format = format or _json_format(records, path)
    dataset = uniner_dataset(records, path) if format in ("uniner", "pile-ner") else gliner_dataset(records, path)
    return relabel(dataset, label_map or {})


def _json_format(records: list[Any], path: str) -> str:
    first = records[0] if records else None
    if isinstance(first, dict) and "conversations" in first:
        return "uniner"
    if isinstance(first, dict) and "tokenized_text" in first:
        return "gliner"
    raise ValueError(
        f"{path}: cannot tell the format: expected records with 'conversations' (uniner, pile-ner) or "
        f"'tokenized_text' (gliner); pass --format"
    )

"""Corpus extraction on Ray Data: text shards (local or S3) in, Parquet mentions (and relations, errors) out."""

from .driver import Scale, Settings, extract
from .store import ERROR_SCHEMA, MENTION_SCHEMA, RELATION_SCHEMA

__all__ = ["ERROR_SCHEMA", "MENTION_SCHEMA", "RELATION_SCHEMA", "Scale", "Settings", "extract"]

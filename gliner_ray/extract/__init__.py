"""Corpus extraction on Ray Data: text shards (local or S3) in, Parquet mentions (and relations, errors) out;
resumable, a record never lost and a mention never written twice. ``settings`` says what a run depends on,
``chunks`` is the CPU stage's output, ``scoring`` the model actor, ``store`` the output directory and its
exactly-once publishing, ``progress`` the running account, ``early_stop`` the checks that stop a clearly wrong run, ``driver`` the Ray Data job (``extract``)."""

from .driver import extract
from .early_stop import Limits
from .settings import Scale, Settings
from .store import ERROR_SCHEMA, MENTION_SCHEMA, RELATION_SCHEMA

__all__ = ["ERROR_SCHEMA", "MENTION_SCHEMA", "RELATION_SCHEMA", "Limits", "Scale", "Settings", "extract"]

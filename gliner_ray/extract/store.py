"""The output directory, local or S3, and how a shard's results reach it exactly once.

    OUTPUT/mentions/<shard>-<chunk>.parquet       MENTION_SCHEMA; relations/ (with --relations) and errors/ alike
    OUTPUT/_tmp/<shard>/<kind>-<chunk>.parquet    staged by the model actors until the whole shard is scored
    OUTPUT/_progress/shard-<shard>.json           a published shard's marker (its counts, input size and mtime)
    OUTPUT/_SUCCESS                               written last, from the markers

Every name derives from the input (``<shard>`` hashes the shard's URI, chunks are numbered in file order), so a
retried chunk rewrites the very same files. A shard's files move out of ``_tmp/`` only once all its chunks are
written, and its marker comes after them: readers never see a partial shard, and a re-run skips marked shards and
deletes what an interrupted run left of the others. Writes are atomic (``storage.write_bytes``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.fs as pafs

from .. import storage
from ..shards import Shard

logger = logging.getLogger(__name__)

MENTION_SCHEMA = pa.schema(
    [("doc_id", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("span", pa.string()),
     ("label", pa.string()), ("score", pa.float32())]
)
# Relation extraction (``--relations``, relex models): one row per (head mention, relation, tail mention).
RELATION_SCHEMA = pa.schema(
    [("doc_id", pa.string()), ("head_start", pa.int64()), ("head_end", pa.int64()), ("head_span", pa.string()),
     ("head_label", pa.string()), ("tail_start", pa.int64()), ("tail_end", pa.int64()), ("tail_span", pa.string()),
     ("tail_label", pa.string()), ("relation", pa.string()), ("score", pa.float32())]
)
# A bad record with its reason (see corpus.py), never a crash.
ERROR_SCHEMA = pa.schema([("source", pa.string()), ("row", pa.int64()), ("doc_id", pa.string()), ("reason", pa.string())])
OUTPUT_SCHEMAS = {"mentions": MENTION_SCHEMA, "relations": RELATION_SCHEMA, "errors": ERROR_SCHEMA}
OUTPUT_FOLDERS = tuple(OUTPUT_SCHEMAS)  # published tables, one file per shard and chunk
COUNTS = ("documents", "failed", "mentions", "relations", "dropped_pairs")  # per chunk summary, per shard marker, per run


class Store:
    """The output directory, local or S3: atomic writes, listings and moves relative to its root."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self.fs, self.root = storage.resolve(self.uri)
        self.root = self.root.rstrip("/")
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def write(self, name: str, data: bytes) -> None:
        storage.write_bytes(self.fs, self.path(name), data)

    def write_parquet(self, name: str, table: pa.Table) -> None:
        self.write(name, storage.parquet_bytes(table))

    def write_json(self, name: str, value: dict) -> None:
        self.write(name, json.dumps(value, indent=2, sort_keys=True).encode())

    def read_json(self, name: str) -> dict:
        with self.fs.open_input_stream(self.path(name)) as f:
            return json.loads(f.read())

    def exists(self, name: str) -> bool:
        return self.fs.get_file_info(self.path(name)).type == pafs.FileType.File

    def files(self, folder: str) -> list[str]:
        """Names of the files directly in ``folder`` (hidden temporary files excluded)."""
        selector = pafs.FileSelector(self.path(folder), allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.File and not i.base_name.startswith("."))

    def move(self, source: str, destination: str) -> None:
        if self.local:
            self.fs.create_dir(self.path(destination).rsplit("/", 1)[0], recursive=True)
        self.fs.move(self.path(source), self.path(destination))

    def delete(self, name: str) -> None:
        """Delete a file or a folder; missing ones are fine."""
        storage.delete(self.fs, self.path(name))

    def check_reachable(self) -> None:
        """Fail before any work when the output bucket does not exist or cannot be reached."""
        if not self.local:
            bucket = self.root.split("/", 1)[0]
            if self.fs.get_file_info(bucket).type != pafs.FileType.Directory:
                raise FileNotFoundError(f"output bucket {bucket!r} of {self.uri} does not exist: create it first")


def shard_key(shard: Shard) -> str:
    """The stable name of a shard's outputs: a hash of its URI, and of its range for a piece of a file."""
    name = shard.uri if shard.stop is None else f"{shard.uri}#{shard.format}:{shard.start}-{shard.stop}"
    return hashlib.sha1(name.encode()).hexdigest()[:16]


def stage(store: Store, key: str, chunk: int, tables: dict[str, pa.Table], metadata: dict[bytes, bytes]) -> None:
    """Write a scored chunk's non-empty tables (``OUTPUT_SCHEMAS``' kinds) under ``_tmp/<shard>/``."""
    for kind, table in tables.items():
        if table.num_rows:
            store.write_parquet(f"_tmp/{key}/{kind}-{chunk:06d}.parquet", table.replace_schema_metadata(metadata))


def publish(store: Store, shard: Shard, key: str, chunks: list[dict]) -> dict:
    """Move a finished shard's staged files into the output folders, then mark it done; when that fails (a full
    disk), the files go back, so a shard is published whole or not at all. Returns the marker."""
    moved = []
    marker = {
        "source": shard.source, "size": shard.size, "mtime_ns": shard.mtime_ns, "chunks": len(chunks),
        **{field: sum(c[field] for c in chunks) for field in COUNTS},
        "damaged": any(c.get("damaged") for c in chunks),
    }
    try:
        for name in store.files(f"_tmp/{key}"):
            kind, suffix = name.split("-", 1)
            store.move(f"_tmp/{key}/{name}", f"{kind}/{key}-{suffix}")
            moved.append((f"_tmp/{key}/{name}", f"{kind}/{key}-{suffix}"))
        store.write_json(f"_progress/shard-{key}.json", marker)
    except BaseException:
        for staged, published in reversed(moved):
            store.move(published, staged)
        raise
    store.delete(f"_tmp/{key}")
    return marker


def finished_shards(store: Store, shards: list[Shard]) -> dict[str, dict]:
    """Markers of the shards an earlier run finished, checking that those input files did not change since. A
    damaged shard is never finished: each re-run reads it again (its earlier outputs are replaced)."""
    names = [n for n in store.files("_progress") if n.startswith("shard-")]
    with ThreadPoolExecutor(16) as pool:
        markers = dict(zip(names, pool.map(lambda n: store.read_json(f"_progress/{n}"), names)))
    by_key = {name.removeprefix("shard-").removesuffix(".json"): marker for name, marker in markers.items()}
    done = {}
    for shard in shards:
        marker = by_key.get(shard_key(shard))
        if marker is None or marker.get("damaged"):
            continue
        if (marker["size"], marker["mtime_ns"]) != (shard.size, shard.mtime_ns):
            raise ValueError(
                f"{shard.uri} changed since {store.uri} was written (size or modification time differ): "
                f"pass --overwrite to start again, or choose another --output"
            )
        done[shard_key(shard)] = marker
    others = set(by_key) - {shard_key(shard) for shard in shards}
    if others:
        logger.warning("%s holds %d finished shards that are not in this input; they are kept", store.uri, len(others))
    return done


def delete_results(store: Store) -> None:
    """Delete every result of earlier runs (``--overwrite``)."""
    for name in ("_SUCCESS", "_progress", "_tmp", *OUTPUT_FOLDERS):
        store.delete(name)


def clear_partial_outputs(store: Store, keys: set[str]) -> None:
    """Delete what an interrupted run left of the shards about to be processed."""
    for key in keys:
        store.delete(f"_tmp/{key}")
    for folder in OUTPUT_FOLDERS:
        for name in store.files(folder):
            if name.split("-", 1)[0] in keys:
                store.delete(f"{folder}/{name}")


def write_empty_tables(store: Store, folders: tuple[str, ...], metadata: dict[bytes, bytes]) -> None:
    """An empty table in each of ``folders`` that holds no file: it still reads as one (SQL globs need a file)."""
    for folder in folders:
        if not store.files(folder):
            store.write_parquet(f"{folder}/empty.parquet", OUTPUT_SCHEMAS[folder].empty_table().replace_schema_metadata(metadata))

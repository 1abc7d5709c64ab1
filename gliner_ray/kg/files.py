"""The files of the kg job: finding the mention and relation Parquet files, grouping them for the read tasks,
checking and clearing the output, and reading and writing one group or partition."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .. import storage
from .neo4j import write_neo4j_parts
from .schema import MENTION_COLUMNS, OUTPUT_NAMES, check_columns


@dataclasses.dataclass
class Input:
    """Input Parquet files (with their sizes): ``uri`` names them in messages, ``root`` is where they were found."""
    uri: str
    fs: pafs.FileSystem
    root: str
    files: list[pafs.FileInfo]


def find_mention_files(uri: str, allow_incomplete: bool = False) -> Input:
    """The mention Parquet files ``uri`` names.

    ``uri`` is an extraction output (then its ``mentions/`` are read, and its ``_SUCCESS`` must exist unless
    ``allow_incomplete``), a directory of Parquet files, one file, or a glob (``*`` may cross directories).
    """
    fs, path = storage.resolve(uri)
    found = uri
    if fs.get_file_info(f"{path}/mentions").type == pafs.FileType.Directory:
        if not allow_incomplete and fs.get_file_info(f"{path}/_SUCCESS").type != pafs.FileType.File:
            raise ValueError(
                f"--mentions {uri} is an extraction output without _SUCCESS: the extraction has not finished "
                "(or crashed); wait for it or re-run it, or pass --allow-incomplete to use the mentions "
                "written so far"
            )
        found = storage.join(uri, "mentions")
    return Input(uri, *parquet_files(found, "--mentions"))


def find_relation_files(mentions: str, relations: str | None) -> Input | None:
    """The relation Parquet files to type edges with (``uri`` where they are): those ``relations`` names (a
    directory, a glob, or an extraction output's ``relations/``), else the ``relations/`` beside the ``mentions/``
    of the extraction output ``mentions``; None when there are none (co-occurrence edges only)."""
    uri = relations or mentions
    fs, path = storage.resolve(uri)
    beside_mentions = fs.get_file_info(f"{path}/mentions").type == pafs.FileType.Directory
    if fs.get_file_info(f"{path}/relations").type == pafs.FileType.Directory and (relations or beside_mentions):
        uri = storage.join(uri, "relations")
    elif relations is None:
        return None
    fs, base, files = parquet_files(uri, "--relations", required=bool(relations))
    return Input(uri, fs, base, files) if files else None


def parquet_files(uri: str, flag: str, required: bool = True) -> tuple[pafs.FileSystem, str, list[pafs.FileInfo]]:
    """The Parquet files under ``uri`` (a directory, one file, or a glob), their filesystem and base directory;
    ``required``: refuse none found, naming ``flag`` (``--mentions`` or ``--relations``)."""
    fs, base, infos = storage.find_files(uri)
    files = [info for info in infos if info.path == base or info.path.endswith(".parquet")]
    if required and fs.get_file_info(base).type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{flag} {uri}: no such file or directory")
    if required and not files:
        raise ValueError(f"{flag} {uri}: no {flag[2:-1]} Parquet files found (expected *.parquet files, or an "
                         f"extraction output with {flag[2:]}/)")
    return fs, base, files


def check_first_file(found: Input, flag: str = "--mentions", columns: dict = MENTION_COLUMNS) -> None:
    """Refuse input whose first file lacks the contract's columns, before any Ray work (its footer only); the read
    tasks check every file."""
    check_columns(pq.read_schema(found.files[0].path, filesystem=found.fs), found.uri, flag, columns)


def group_files(infos: list[pafs.FileInfo], groups: int) -> list[list[str]]:
    """Consecutive files in at most about ``groups`` groups of similar total size: one read task each."""
    target = sum(info.size or 0 for info in infos) / groups
    grouped, current, size = [], [], 0
    for info in infos:
        current.append(info.path)
        size += info.size or 0
        if size >= target:
            grouped.append(current)
            current, size = [], 0
    return grouped + ([current] if current else [])


def check_output(uri: str, overwrite: bool, input_fs: pafs.FileSystem, input_root: str) -> tuple[pafs.FileSystem, str]:
    """The output filesystem and root, after refusing an output that overlaps the input, holds files this command
    did not write, or holds a previous graph while ``overwrite`` is off."""
    fs, root = storage.resolve(uri)
    root = root.rstrip("/")
    if fs.type_name == input_fs.type_name and (
        root == input_root or root.startswith(input_root + "/") or input_root.startswith(root + "/")
    ):
        raise ValueError(f"--output {uri} overlaps the input {input_root}: write the graph somewhere else")
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise FileExistsError(f"--output {uri} is a file: give a directory")
    if info.type == pafs.FileType.NotFound:
        return fs, root
    present = {entry.base_name for entry in fs.get_file_info(pafs.FileSelector(root))}
    foreign = sorted(present - set(OUTPUT_NAMES))
    if foreign:
        raise FileExistsError(f"--output {uri} holds files this command did not write ({', '.join(foreign[:5])}): "
                              "choose a new or empty directory")
    if present and not overwrite:
        raise FileExistsError(f"--output {uri} already holds a graph: pass --overwrite to replace it")
    return fs, root


def clear_output(fs: pafs.FileSystem, root: str) -> None:
    """Delete a previous graph under ``root``: ``_SUCCESS`` first, so a crash midway never looks complete."""
    for name in OUTPUT_NAMES:  # _SUCCESS first
        info = fs.get_file_info(f"{root}/{name}")
        if info.type == pafs.FileType.File:
            fs.delete_file(info.path)
        elif info.type == pafs.FileType.Directory:
            fs.delete_dir(info.path)


def read_files(files: list[str], fs: pafs.FileSystem, uri: str, flag: str, columns: dict) -> pa.Table | dict:
    """The Parquet ``files`` as one table, or ``{"error": ...}`` naming the file that cannot be read or lacks
    ``columns``."""
    tables = []
    for path in files:
        try:
            table = pq.read_table(path, filesystem=fs)
            check_columns(table.schema, uri, flag, columns)
        except (OSError, ValueError, pa.ArrowException) as error:
            return {"error": str(error) if str(error).startswith(flag) else
                    f"{flag} {uri}: cannot read {storage.display(fs, path)}: {error}"}
        tables.append(table)
    return pa.concat_tables(tables, promote_options="permissive")


def write_parts(fs: pafs.FileSystem, root: str, index: int, tables: dict[str, pa.Table], neo4j: bool) -> None:
    """Write partition ``index`` of each of ``tables`` as ``NAME/part-NNNNN.parquet`` (and ``.csv`` under
    ``neo4j/``). Empty partitions write nothing, except partition 0, so that every table has at least one (maybe
    empty) file."""
    for name, table in tables.items():
        if table.num_rows or index == 0:
            storage.write_bytes(fs, f"{root}/{name}/part-{index:05d}.parquet", storage.parquet_bytes(table))
    if neo4j:
        write_neo4j_parts(fs, root, index, tables)

"""Stopping a run whose input is clearly wrong: before any output is written or model started, when its first
records all fail for one reason (a wrong ``--text-field`` or ``--format``, a binary file); and, with
``--max-error-rate``, as soon as the share of failed records passes it once enough records are read."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import corpus, storage
from ..corpus import Record
from ..shards import Shard
from .settings import Settings

EARLY_STOP_RECORDS = 1000
SAMPLE_SHARDS = 16  # the sample also ends after this many shards (text files, and Parquet without the column, give one record each)
NOT_JSON_LINES = "not JSON Lines"
# Reasons (corpus.py) that mean the same about a whole input, by the words they start with: a binary file read as
# JSON Lines fails with any of the first three, line by line.
FAMILIES = {
    "malformed JSON": NOT_JSON_LINES, "line is not valid UTF-8": NOT_JSON_LINES, "line holds a JSON": NOT_JSON_LINES,
}
FIXES = {
    NOT_JSON_LINES: "is the input JSON Lines? pass --format text or --format parquet, or point --input at JSON Lines files",
    "file is not valid UTF-8": "is the input text? pass --format jsonl or --format parquet, or point --input at text files",
    "text has": "pass a larger --max-chars, or leave it out",
    "empty text": "pass --text-field to read another field",
}


@dataclass(frozen=True)
class Limits:
    """When a run stops early: ``early_stop_records`` (0: never) first records all failing for one reason, or
    more than ``max_error_rate`` of the records read failing once that many are read (None: never)."""

    early_stop_records: int = EARLY_STOP_RECORDS
    max_error_rate: float | None = None

    def check(self) -> None:
        if self.early_stop_records < 0:
            raise ValueError(f"--early-stop-records must be 0 (never stop early) or more, got {self.early_stop_records}")
        if self.max_error_rate is not None and not 0 <= self.max_error_rate < 1:
            raise ValueError(f"--max-error-rate must be at least 0 and below 1 (a share of the records), got {self.max_error_rate}")

    @property
    def enough_records(self) -> int:
        """How many records must be read before the error share counts."""
        return self.early_stop_records or EARLY_STOP_RECORDS


def sample(shards: list[Shard], settings: Settings, count: int) -> list[Record]:
    """The first ``count`` records of the shards, read as the job reads them (damaged-shard records left out),
    from at most SAMPLE_SHARDS shards."""
    records: list[Record] = []
    for shard in shards[:SAMPLE_SHARDS]:
        fs, _ = storage.resolve(shard.uri)
        reading = corpus.read_records(fs, shard, settings.id_field, settings.text_field, settings.max_chars,
                                      settings.max_record_bytes, settings.labels_field)
        for record in reading:
            if record.error is None or not record.error.startswith(corpus.DAMAGED):
                records.append(record)
            if len(records) >= count:
                reading.close()
                return records
    return records


def check_first_records(shards: list[Shard], settings: Settings, limits: Limits) -> None:
    """Raise ValueError naming the reason and the flag to fix when the first records of the run (``sample``) all
    fail for one reason, or more of them than ``max_error_rate`` fail."""
    if not limits.early_stop_records:
        return
    records = sample(shards, settings, limits.early_stop_records)
    errors = [r.error for r in records if r.error is not None]
    kinds = {reason_kind(e) for e in errors}
    if records and len(errors) == len(records) and len(kinds) == 1:
        how = f" as {NOT_JSON_LINES}" if kinds == {NOT_JSON_LINES} else ""
        raise ValueError(
            f"stopped before writing anything: the first {len(records)} records read (from {shards[0].uri} on) all "
            f"fail{how} with \"{errors[0]}\"; {fix_for(errors[0])} (--early-stop-records 0 sends them to errors/ instead)"
        )
    check_error_rate(len(errors), len(records), limits)


def check_error_rate(failed: int, read: int, limits: Limits, output: str | None = None) -> None:
    """Raise ValueError when more than ``max_error_rate`` of ``read`` records failed, once enough are read."""
    if limits.max_error_rate is None or read < limits.enough_records or failed <= limits.max_error_rate * read:
        return
    where = f"the reasons are in {output}/errors/; " if output else ""
    raise ValueError(
        f"stopped: {failed} of the {read} records read failed ({failed / read:.0%}), more than --max-error-rate "
        f"{limits.max_error_rate:g}; {where}check --format and --text-field, or raise --max-error-rate"
    )


def reason_kind(reason: str) -> str:
    """A reason without its particulars (columns, byte offsets, lengths): what records failing the same way share."""
    for start, family in FAMILIES.items():
        if reason.startswith(start):
            return family
    return re.sub(r"\d+", "N", re.split(r"[:(;]", reason, maxsplit=1)[0]).strip()


def fix_for(reason: str) -> str:
    """What to change when every record fails with ``reason``."""
    if "pass --" in reason:
        return "fix the flag it names"
    for start, fix in FIXES.items():
        if reason_kind(reason).startswith(start):
            return fix
    if " is null" in reason or " is a " in reason:
        return "pass --text-field to read another field"
    return "check --input, --format and --text-field"

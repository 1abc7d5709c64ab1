"""Evaluation with the GLiNER paper's protocol: each dataset's full type list is the prompt for every sentence, a
prediction counts only if its span and its type both match exactly, precision/recall/F1 are micro-averaged over a
dataset, and the table gives the plain average of the datasets' scores (as in the paper's Table 1).

Scoring follows the reference evaluator: within one sentence, repeated spans count once (gold and predicted are
sets), and a ratio with a zero denominator is 0. Type names are lowercased, as the paper's evaluation does.
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import pyarrow.fs as pafs

from . import storage
from .data import Dataset, relabel

log = logging.getLogger(__name__)

REPORT_FILES = ("report.md", "report.png", "report.json")  # written in this order: report.json last marks a run done
SPLIT_NAMES = {"train", "dev", "valid", "validation", "test", "eval"}
PROGRESS_SECONDS = 5.0  # a progress line per dataset at most this often, and one at its end


@dataclass
class Scores:
    """Exact-match counts and the precision, recall and F1 they give."""

    gold: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "gold": self.gold, "predicted": self.predicted, "correct": self.correct,
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
        }


def score_spans(
    gold: Sequence[Iterable[Sequence]], predicted: Sequence[Iterable[Sequence]]
) -> tuple[Scores, dict[str, Scores]]:
    """Micro scores over all sentences, and scores per type, of predicted against gold spans.

    ``gold[i]`` and ``predicted[i]`` are sentence i's spans ``(start, end_inclusive, label, ...)`` (a ``Span``
    works: its score is ignored). A span counts as correct only when start, end and label all match.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"got gold spans for {len(gold)} sentences but predictions for {len(predicted)}")
    per_type: dict[str, Scores] = defaultdict(Scores)
    for gold_spans, predicted_spans in zip(gold, predicted):
        true = {tuple(span[:3]) for span in gold_spans}
        guessed = {tuple(span[:3]) for span in predicted_spans}
        for _, _, label in true:
            per_type[label].gold += 1
        for _, _, label in guessed:
            per_type[label].predicted += 1
        for _, _, label in true & guessed:
            per_type[label].correct += 1
    total = Scores(
        gold=sum(s.gold for s in per_type.values()),
        predicted=sum(s.predicted for s in per_type.values()),
        correct=sum(s.correct for s in per_type.values()),
    )
    return total, dict(sorted(per_type.items()))


# ---- running a model over datasets ------------------------------------------------------------------------------------
def evaluate_dataset(
    model, dataset: Dataset, name: str, threshold: float = 0.5, flat_ner: bool = True, batch_size: int = 8,
    progress_seconds: float = PROGRESS_SECONDS,
) -> dict[str, Any]:
    """Predict every sentence of ``dataset`` with its full type list as the prompt and score the predictions.

    Sentences go through ``GLiNER.predict_words`` longest first, one batch at a time, so batches hold similar
    lengths and the log shows progress every ``progress_seconds``. Returns the dataset's entry of ``report.json``.
    """
    check_dataset(dataset, name)
    dataset = relabel(dataset, {t: t.lower() for t in dataset.types})
    examples, types = dataset.examples, dataset.types
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].words))
    predictions: list[list] = [[] for _ in examples]
    log.info("%s: %d sentences, %d entity types: %s", name, len(examples), len(types), ", ".join(types))
    started = logged = time.perf_counter()
    for first in range(0, len(order), batch_size):
        chunk = order[first : first + batch_size]
        spans = model.predict_words(
            [examples[i].words for i in chunk], types, threshold=threshold, flat_ner=flat_ner, batch_size=batch_size
        )
        for i, sentence_spans in zip(chunk, spans):
            predictions[i] = sentence_spans
        done, now = first + len(chunk), time.perf_counter()
        if now - logged >= progress_seconds or done == len(order):
            log.info("%s: %d/%d sentences, %.1f sentences/s", name, done, len(examples), done / (now - started))
            logged = now
    seconds = time.perf_counter() - started
    total, per_type = score_spans([e.spans for e in examples], predictions)
    for label in types:
        per_type.setdefault(label, Scores())
    return {
        "sentences": len(examples),
        "skipped": dataset.skipped,
        "types": types,
        **total.as_dict(),
        "seconds": seconds,
        "sentences_per_second": len(examples) / seconds if seconds else 0.0,
        "per_type": {label: scores.as_dict() for label, scores in sorted(per_type.items())},
    }


def check_dataset(dataset: Dataset, name: str) -> None:
    """Refuse a dataset that cannot be evaluated on: no usable sentences, or no entity types to prompt with."""
    if not dataset.examples:
        raise ValueError(f"{name}: no usable sentences to evaluate on")
    if not dataset.types:
        raise ValueError(f"{name}: the dataset names no entity types, so there is nothing to prompt the model with")


def average_scores(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Plain mean of the datasets' precision, recall and F1 (the paper's "Average" row)."""
    return {key: sum(r[key] for r in results.values()) / len(results) for key in ("precision", "recall", "f1")}


def dataset_names(paths: Sequence[str]) -> list[str]:
    """Short unique names for dataset files: the file stem, with its folder when the stem is a split name
    (``crossner/ai/dev.txt`` -> ``ai/dev``), and more folders while two names clash."""
    parts = [posixpath.splitext(path.rstrip("/"))[0].split("/") for path in paths]
    depth = [2 if p[-1].lower() in SPLIT_NAMES and len(p) > 1 else 1 for p in parts]
    while True:
        names = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clashing = [i for i, name in enumerate(names) if names.count(name) > 1 and depth[i] < len(parts[i])]
        if not clashing:
            break
        for i in clashing:
            depth[i] += 1
    if len(set(names)) < len(names):
        raise ValueError(f"the same dataset is given twice in --data: {', '.join(paths)}")
    return names


# ---- the report ------------------------------------------------------------------------------------------------------
def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def summary_table(report: dict[str, Any]) -> list[str]:
    """The paper's Table 1 shape as Markdown lines: one row per dataset, then the average (P, R, F1 in %)."""
    lines = [
        "| Dataset | Sentences | Gold | Predicted | Correct | P | R | F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["datasets"].items():
        lines.append(
            f"| {name} | {r['sentences']} | {r['gold']} | {r['predicted']} | {r['correct']} | "
            f"{percent(r['precision'])} | {percent(r['recall'])} | {percent(r['f1'])} |"
        )
    average = report["average"]
    lines.append(
        f"| **Average** | | | | | {percent(average['precision'])} | {percent(average['recall'])} | "
        f"**{percent(average['f1'])}** |"
    )
    return lines


def report_markdown(report: dict[str, Any]) -> str:
    """The whole report as Markdown: the summary table, then one table of scores per type for each dataset."""
    mode = "flat" if report["flat_ner"] else "nested"
    lines = [
        f"# Evaluation of {report['model']}",
        "",
        f"Threshold {report['threshold']}, {mode} decoding; exact span and type match, micro-averaged per dataset "
        "(P, R, F1 in %).",
        "",
        *summary_table(report),
    ]
    for name, r in report["datasets"].items():
        lines += ["", f"## {name}", "", "| Type | Gold | Predicted | Correct | P | R | F1 |", "|---|---:|---:|---:|---:|---:|---:|"]
        for label, t in r["per_type"].items():
            lines.append(
                f"| {label} | {t['gold']} | {t['predicted']} | {t['correct']} | "
                f"{percent(t['precision'])} | {percent(t['recall'])} | {percent(t['f1'])} |"
            )
    return "\n".join(lines) + "\n"


def report_png(report: dict[str, Any]) -> bytes:
    """F1 per dataset (and their average) as a bar chart, PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    names = [*report["datasets"], "Average"]
    values = [100 * r["f1"] for r in report["datasets"].values()] + [100 * report["average"]["f1"]]
    figure = Figure(figsize=(max(4.0, 1.1 * len(names) + 1.5), 4.0), layout="constrained")
    axes = figure.subplots()
    bars = axes.bar(names, values, color=["tab:blue"] * (len(names) - 1) + ["tab:gray"])
    axes.bar_label(bars, labels=[f"{v:.1f}" for v in values], padding=2)
    axes.set_ylim(0, 105)
    axes.set_ylabel("F1 (%)")
    axes.set_title(f"{report['model']} (threshold {report['threshold']})", fontsize=9)
    axes.tick_params(axis="x", labelrotation=30)
    return png_bytes(figure, dpi=120)


def png_bytes(figure: Any, dpi: int) -> bytes:
    """A matplotlib ``Figure`` drawn as a PNG, its bytes (the one PNG writer: reports and training plots)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def write_report(report: dict[str, Any], output: str) -> None:
    """Write report.md, report.png and, last, report.json under ``output`` (local folder or URI), each whole."""
    contents = {
        "report.md": report_markdown(report).encode(),
        "report.png": report_png(report),
        "report.json": json.dumps(report, indent=2, ensure_ascii=False).encode(),
    }
    fs, root = storage.resolve(output)
    for name in REPORT_FILES:
        storage.write_bytes(fs, storage.join(root, name), contents[name])


def check_output(output: str, overwrite: bool) -> None:
    """Refuse to replace a finished report (``report.json``) at ``output`` unless ``overwrite``."""
    fs, root = storage.resolve(output)
    if not overwrite and fs.get_file_info(storage.join(root, "report.json")).type == pafs.FileType.File:
        raise ValueError(f"{output} already holds a finished evaluation (report.json): pass --overwrite to replace "
                         f"it, or choose another --output")


def remove_old_report(output: str) -> None:
    """Delete a previous run's report.json, so that a run that fails leaves no finished-looking report behind."""
    fs, root = storage.resolve(output)
    storage.delete(fs, storage.join(root, "report.json"))

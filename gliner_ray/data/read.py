"""Annotated data: the ``Example`` every reader produces and every trainer and evaluator consumes, and readers for
the NER dataset formats GLiNER is trained and evaluated on, from a local path or any fsspec URI (``s3://...``).

- ``conll``: one token per line, its tag in the last column (BIO, IOB1 accepted), blank lines between sentences.
- ``uniner``/``pile-ner``: UniNER's conversation JSON: a passage, then "What describes X in the text?" questions
  whose answers are JSON lists of strings; answers become word spans wherever their words occur in the passage.
- ``gliner``: JSON or JSON Lines of ``{"tokenized_text": [...], "ner": [[start, end_inclusive, "label"], ...]}``.

Readers raise ``ValueError`` naming the file and line for malformed content; an example that parses but cannot
be used (no words, a span out of range or inverted, an empty label) is skipped and counted, with one warning.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple

import fsspec

from .text import split_words

log = logging.getLogger(__name__)

FORMATS = ("conll", "uniner", "pile-ner", "gliner")

# Tag names of CoNLL-2003, CrossNER and WNUT as natural-language entity types (the model reads types as words).
# A tag missing here is already a word ("algorithm", "person") and passes through unchanged.
DEFAULT_LABEL_MAP = {
    # CoNLL-2003
    "PER": "person",
    "ORG": "organization",
    "LOC": "location",
    "MISC": "miscellaneous",
    # CrossNER (ai, literature, music, politics, science)
    "organisation": "organization",
    "misc": "miscellaneous",
    "programlang": "programming language",
    "literarygenre": "literary genre",
    "musicalartist": "musical artist",
    "musicgenre": "music genre",
    "musicalinstrument": "musical instrument",
    "politicalparty": "political party",
    "astronomicalobject": "astronomical object",
    "academicjournal": "academic journal",
    "chemicalcompound": "chemical compound",
    "chemicalelement": "chemical element",
    # WNUT-16/17
    "geo-loc": "location",
    "musicartist": "music artist",
    "sportsteam": "sports team",
    "tvshow": "tv show",
    "creative-work": "creative work",
}

CONLL_SUFFIXES = ("txt", "conll", "bio", "iob")
QUESTION = re.compile(r"What describes (.+) in the text\?")
PASSAGE_PREFIX = "Text: "


@dataclass
class Example:
    """One annotated text: pre-split words and entity spans ``(start_word, end_word_inclusive, label)``."""

    words: list[str]
    spans: list[tuple[int, int, str]] = field(default_factory=list)


class Dataset(NamedTuple):
    """What a reader returns: the usable examples, the dataset's entity types (the prompt an evaluation gives
    every sentence) and how many examples were skipped as unusable."""

    examples: list[Example]
    types: list[str]
    skipped: int


# ---- choosing a reader ------------------------------------------------------------------------------------------
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
    records = _read_json_records(path)
    format = format or _json_format(records, path)
    dataset = _uniner_dataset(records, path) if format in ("uniner", "pile-ner") else _gliner_dataset(records, path)
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


def load_label_map(value: str) -> dict[str, str]:
    """A label map from inline JSON (``'{"PER": "person"}'``) or from a JSON file (local path or URI)."""
    if value.lstrip().startswith("{"):
        source, text = "--label-map", value
    else:
        source = value
        with fsspec.open(value, "rt", encoding="utf-8") as f:
            text = f.read()
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValueError(f'{source}: a label map is a JSON object of tag name to type name, e.g. {{"PER": "person"}}')
    return mapping


def relabel(dataset: Dataset, label_map: Mapping[str, str]) -> Dataset:
    """The dataset with each entity type ``t`` renamed to ``label_map.get(t, t)`` (types stay unique, in order)."""
    if not label_map:
        return dataset
    examples = [
        Example(e.words, [(s, t, label_map.get(label, label)) for s, t, label in e.spans]) for e in dataset.examples
    ]
    types = list(dict.fromkeys(label_map.get(t, t) for t in dataset.types))
    return Dataset(examples, types, dataset.skipped)


# ---- checking examples --------------------------------------------------------------------------------------------
def example_problem(example: Example) -> str | None:
    """Why an example cannot be trained or evaluated on (no words, a bad span, an empty label), or None."""
    n = len(example.words)
    if n == 0:
        return "no words"
    if not all(isinstance(word, str) for word in example.words):
        return "words are not all strings"
    for span in example.spans:
        start, end, label = span
        if not isinstance(label, str) or not label.strip():
            return f"empty label in span {span}"
        if not isinstance(start, int) or not isinstance(end, int):
            return f"span {span} has non-integer bounds"
        if end < start:
            return f"inverted span {span}"
        if start < 0 or end >= n:
            return f"span {span} out of range for {n} words"
    return None


def drop_invalid(examples: Iterable[tuple[str, Example]], source: str) -> tuple[list[Example], int]:
    """Keep the usable examples of ``(where, example)`` pairs; warn once with the count and a few reasons."""
    kept, problems = [], []
    for where, example in examples:
        problem = example_problem(example)
        if problem is None:
            kept.append(example)
        else:
            problems.append(f"{where}: {problem}")
    if problems:
        shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
        log.warning("%s: skipped %d of %d examples: %s", source, len(problems), len(kept) + len(problems), shown)
    return kept, len(problems)


# ---- conll ----------------------------------------------------------------------------------------------------------
def read_conll(path: str, label_map: Mapping[str, str] | None = None) -> Dataset:
    """Token-per-line BIO file: token in the first column, tag in the last; blank lines end sentences.

    IOB1 (an entity opened by ``I-``) is accepted. Tag types are renamed through ``DEFAULT_LABEL_MAP`` updated
    with ``label_map``; the dataset's types are the sorted renamed types seen.
    """
    names = {**DEFAULT_LABEL_MAP, **(label_map or {})}
    sentences: list[tuple[str, Example]] = []
    words: list[str] = []
    tags: list[str] = []
    first_line = 0

    def end_sentence() -> None:
        if words:
            spans = [(s, e, names.get(kind, kind)) for s, e, kind in bio_spans(tags)]
            sentences.append((f"line {first_line}", Example(list(words), spans)))
        words.clear()
        tags.clear()

    with fsspec.open(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                end_sentence()
                continue
            if len(columns) < 2:
                raise ValueError(f"{path}:{number}: expected a token and a tag separated by whitespace, got {line.strip()!r}")
            tag = columns[-1]
            prefix, dash, kind = tag.partition("-")
            if tag != "O" and not (prefix in ("B", "I") and dash and kind):
                raise ValueError(f"{path}:{number}: tag {tag!r} is not BIO: use O, B-<type> or I-<type>")
            if not words:
                first_line = number
            words.append(columns[0])
            tags.append(tag)
    end_sentence()
    examples, skipped = drop_invalid(sentences, path)
    types = sorted({label for example in examples for _, _, label in example.spans})
    return Dataset(examples, types, skipped)


def bio_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end_inclusive, type)`` of a BIO or IOB1 tag sequence.

    ``B-x`` opens an entity; ``I-x`` continues the entity just before it if that one has type ``x``, and opens a
    new one otherwise (IOB1, or a sequence that starts with ``I-``).
    """
    spans: list[list] = []
    open_span: list | None = None
    for i, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if tag == "O":
            open_span = None
        elif prefix == "I" and open_span is not None and open_span[2] == kind:
            open_span[1] = i
        else:
            open_span = [i, i, kind]
            spans.append(open_span)
    return [tuple(span) for span in spans]


# ---- JSON formats ---------------------------------------------------------------------------------------------------
def _read_json_records(path: str) -> list[Any]:
    """The records of a JSON array file or of a JSON Lines file (one record per non-blank line)."""
    with fsspec.open(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if not text.strip():
        return []
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg}, column {error.colno})") from None
        return records
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON Lines ({error.msg}, column {error.colno})") from None
    return records


def read_gliner(path: str) -> Dataset:
    """GLiNER's training format, a JSON array or JSON Lines of ``{"tokenized_text", "ner"}``; the dataset's types
    are the sorted labels seen."""
    return _gliner_dataset(_read_json_records(path), path)


def _gliner_dataset(records: list[Any], path: str) -> Dataset:
    parsed = []
    for number, record in enumerate(records, 1):
        where = f"record {number}"
        if not isinstance(record, dict) or not isinstance(record.get("tokenized_text"), list):
            raise ValueError(f"{path}: {where}: expected an object with a 'tokenized_text' list of words")
        ner = record.get("ner", [])
        if not isinstance(ner, list) or not all(isinstance(span, (list, tuple)) and len(span) == 3 for span in ner):
            raise ValueError(f"{path}: {where}: 'ner' must be a list of [start_word, end_word_inclusive, label]")
        parsed.append((where, Example(record["tokenized_text"], [tuple(span) for span in ner])))
    examples, skipped = drop_invalid(parsed, path)
    types = sorted({label for example in examples for _, _, label in example.spans})
    return Dataset(examples, types, skipped)


def read_uniner(path: str) -> Dataset:
    """UniNER / Pile-NER conversation JSON, regrouped into one example per passage with every question's type.

    Entries that repeat a passage (UniNER's benchmark files hold one entry per passage and type) join the first
    example of that passage that has not been asked that type yet, so duplicated passages stay separate sentences.
    An answer becomes a span at every place its words occur in the passage. The dataset's types are those asked,
    in first-seen order.
    """
    return _uniner_dataset(_read_json_records(path), path)


def _uniner_dataset(records: list[Any], path: str) -> Dataset:
    sentences: list[tuple[str, Example]] = []
    asked: list[set[str]] = []  # the types asked so far, per sentence
    by_passage: dict[str, list[int]] = defaultdict(list)  # passage -> its sentences
    types: dict[str, None] = {}
    unfound: list[str] = []
    for number, record in enumerate(records, 1):
        where = f"entry {number}" + (f" (id {record['id']})" if isinstance(record, dict) and "id" in record else "")
        passage, questions = _conversation(record, f"{path}: {where}")
        words = split_words(passage).words
        for label, answers in questions:
            types.setdefault(label, None)
            place = next((i for i in by_passage[passage] if label not in asked[i]), None)
            if place is None:
                place = len(sentences)
                by_passage[passage].append(place)
                sentences.append((where, Example(words, [])))
                asked.append(set())
            asked[place].add(label)
            spans = sentences[place][1].spans
            for answer in answers:
                found = _occurrences(words, split_words(answer).words)
                if not found:
                    unfound.append(f"{where}: {answer!r}")
                spans += [(start, end, label) for start, end in found if (start, end, label) not in spans]
    if unfound:
        log.warning(
            "%s: %d answers do not occur in their passage and give no span: %s",
            path, len(unfound), "; ".join(unfound[:3]) + ("; ..." if len(unfound) > 3 else ""),
        )
    for _, example in sentences:
        example.spans.sort()
    examples, skipped = drop_invalid(sentences, path)
    return Dataset(examples, list(types), skipped)


def _conversation(record: Any, where: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """The passage and the (type, answers) pairs of one UniNER entry."""
    turns = record.get("conversations") if isinstance(record, dict) else None
    if not isinstance(turns, list) or not all(isinstance(t, dict) and isinstance(t.get("value"), str) for t in turns):
        raise ValueError(f"{where}: expected an object with a 'conversations' list of {{'from', 'value'}} turns")
    human = [t["value"] for t in turns if t.get("from") == "human"]
    gpt = [t["value"] for t in turns if t.get("from") == "gpt"]
    if not human or not human[0].startswith(PASSAGE_PREFIX) or len(gpt) != len(human):
        raise ValueError(
            f"{where}: expected a human turn 'Text: <passage>' first, then one gpt answer after every human turn"
        )
    questions = []
    for question, answer in zip(human[1:], gpt[1:]):
        match = QUESTION.fullmatch(question.strip())
        if match is None:
            raise ValueError(f"{where}: question {question!r} is not of the form 'What describes <type> in the text?'")
        try:
            answers = json.loads(answer)
        except json.JSONDecodeError:
            answers = None
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise ValueError(f"{where}: answer {answer!r} is not a JSON list of strings")
        questions.append((match.group(1).strip(), answers))
    return human[0][len(PASSAGE_PREFIX) :], questions


def _occurrences(words: list[str], needle: list[str]) -> list[tuple[int, int]]:
    """Every ``(start, end_inclusive)`` where the word sequence ``needle`` occurs in ``words``."""
    n = len(needle)
    if n == 0:
        return []
    return [(i, i + n - 1) for i in range(len(words) - n + 1) if words[i : i + n] == needle]

"""The JSON formats: ``gliner`` (JSON or JSON Lines of ``{"tokenized_text": [...], "ner": [[start, end, label]]}``)
and ``uniner``/``pile-ner`` (UniNER's conversations: a passage, then "What describes X in the text?" questions whose
answers, JSON lists of strings, become word spans wherever their words occur in the passage)."""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from typing import Any

import fsspec

from ..text import split_words
from .examples import Dataset, Example, drop_invalid

log = logging.getLogger(__name__)

QUESTION = re.compile(r"What describes (.+) in the text\?")
PASSAGE_PREFIX = "Text: "


def read_json_records(path: str) -> list[Any]:
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
    return gliner_dataset(read_json_records(path), path)


def gliner_dataset(records: list[Any], path: str) -> Dataset:
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
    return uniner_dataset(read_json_records(path), path)


def uniner_dataset(records: list[Any], path: str) -> Dataset:
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

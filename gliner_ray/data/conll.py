"""CoNLL-style files: one token per line, its tag in the last column (BIO, IOB1 accepted), blank lines between
sentences; tag names become natural-language entity types through ``DEFAULT_LABEL_MAP``."""

from __future__ import annotations

from typing import Mapping

import fsspec

from .examples import Dataset, Example, drop_invalid

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

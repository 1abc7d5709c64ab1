"""Dataset readers: each format parses a small hand-written file into hand-written examples."""

from __future__ import annotations

import json
import logging

import pytest

from gliner_ray.data import Dataset, Example, bio_spans, load_label_map, read_conll, read_dataset, read_gliner, read_uniner


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# Raw CoNLL-2003: four columns, IOB1 tags (an entity starts with I-; B- only between two adjacent same-type entities).
CONLL_2003_RAW = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER

Paris NNP B-NP I-LOC
London NNP I-NP B-LOC
talks NNS I-NP O
"""


def test_conll_2003_iob1_four_columns(tmp_path):
    dataset = read_conll(write(tmp_path, "raw.txt", CONLL_2003_RAW))
    assert dataset.examples == [
        Example(["EU", "rejects", "German", "call", "."], [(0, 0, "organization"), (2, 2, "miscellaneous")]),
        Example(["Peter", "Blackburn"], [(0, 1, "person")]),
        Example(["Paris", "London", "talks"], [(0, 0, "location"), (1, 1, "location")]),
    ]
    assert dataset.types == ["location", "miscellaneous", "organization", "person"]
    assert dataset.skipped == 0


# CrossNER: two tab-separated columns, BIO, camelCase tags; no trailing blank line; one entity opened by I-.
CROSSNER = "The\tO\nBeatles\tB-band\nmet\tO\nJohn\tB-musicalartist\nLennon\tI-musicalartist\n\n" \
    "I-started\tO\nrock\tI-musicgenre\nand\tO\nroll\tB-misc\nMusic\tB-organisation\nInc\tI-organisation"


def test_crossner_bio_with_default_label_map(tmp_path):
    dataset = read_dataset(write(tmp_path, "dev.txt", CROSSNER))
    assert dataset == Dataset(
        [
            Example(["The", "Beatles", "met", "John", "Lennon"], [(1, 1, "band"), (3, 4, "musical artist")]),
            Example(
                ["I-started", "rock", "and", "roll", "Music", "Inc"],
                [(1, 1, "music genre"), (3, 3, "miscellaneous"), (4, 5, "organization")],
            ),
        ],
        ["band", "miscellaneous", "music genre", "musical artist", "organization"],
        0,
    )


def test_user_label_map_overrides_the_defaults(tmp_path):
    path = write(tmp_path, "dev.conll", CROSSNER)
    dataset = read_dataset(path, label_map={"musicalartist": "singer", "band": "music group"})
    assert dataset.examples[0].spans == [(1, 1, "music group"), (3, 4, "singer")]
    assert dataset.types == ["miscellaneous", "music genre", "music group", "organization", "singer"]


def test_wnut_hyphenated_tags(tmp_path):
    path = write(tmp_path, "wnut.bio", "@user O\nin O\nNew B-geo-loc\nYork I-geo-loc\nwatching O\nthe O\nB-tvshow O\n")
    assert read_dataset(path).examples == [
        Example(["@user", "in", "New", "York", "watching", "the", "B-tvshow"], [(2, 3, "location")])
    ]


def test_bio_spans_switches_type_on_i_of_another_type():
    assert bio_spans(["I-a", "I-a", "I-b", "O", "I-b", "B-b", "I-b", "B-a"]) == [
        (0, 1, "a"), (2, 2, "b"), (4, 4, "b"), (5, 6, "b"), (7, 7, "a")
    ]


@pytest.mark.parametrize(
    "text, line, message",
    [("EU\tB-ORG\nrejects\n", 2, "expected a token and a tag"), ("\n\nEU\tX-ORG\n", 3, "is not BIO"), ("EU B-\n", 1, "is not BIO")],
)
def test_conll_malformed_lines_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(ValueError, match=f"{path}:{line}: .*{message}"):
        read_conll(path)


def uniner_entry(id_: str, passage: str, *questions: tuple[str, list[str]]) -> dict:
    turns = [{"from": "human", "value": f"Text: {passage}"}, {"from": "gpt", "value": "I've read this text."}]
    for label, answers in questions:
        turns.append({"from": "human", "value": f"What describes {label} in the text?"})
        turns.append({"from": "gpt", "value": json.dumps(answers)})
    return {"id": id_, "conversations": turns}


def test_uniner_regroups_one_entry_per_sentence_and_type(tmp_path, caplog):
    first = "a four star place with a bar and a bar-b-q"
    second = "cheap thai food near me"
    entries = [
        uniner_entry("r_0", first, ("Amenity", ["bar"])),
        uniner_entry("r_1", first, ("Rating", ["four star"])),
        uniner_entry("r_2", first, ("Cuisine", [])),
        uniner_entry("r_3", second, ("Amenity", [])),
        uniner_entry("r_4", second, ("Rating", ["cheap"])),  # an answer typed against the wrong question: kept as given
        uniner_entry("r_5", second, ("Cuisine", ["thai", "sushi"])),  # "sushi" is not in the passage
        # the same passage again, annotated again: a second sentence, not a merge into the first
        uniner_entry("r_6", second, ("Amenity", [])),
        uniner_entry("r_7", second, ("Cuisine", ["thai"])),
        # an entry met again later joins its own sentence
        uniner_entry("r_8", first, ("Price", [])),
    ]
    path = write(tmp_path, "mit.json", json.dumps(entries))
    with caplog.at_level(logging.WARNING, logger="gliner_ray.data"):
        dataset = read_dataset(path)
    first_words = ["a", "four", "star", "place", "with", "a", "bar", "and", "a", "bar-b-q"]
    second_words = ["cheap", "thai", "food", "near", "me"]
    assert dataset == Dataset(
        [
            Example(first_words, [(1, 2, "Rating"), (6, 6, "Amenity")]),
            Example(second_words, [(0, 0, "Rating"), (1, 1, "Cuisine")]),
            Example(second_words, [(1, 1, "Cuisine")]),
        ],
        ["Amenity", "Rating", "Cuisine", "Price"],
        0,
    )
    assert "1 answers do not occur" in caplog.text and "'sushi'" in caplog.text


def test_pile_ner_several_questions_per_passage_every_occurrence(tmp_path):
    entries = [
        uniner_entry(
            "ner_0",
            "New York, New York: Frank Sinatra sang New York.",
            ("city", ["New York"]),
            ("person", ["Frank Sinatra"]),
            ("song", ["New York, New York"]),
            ("date", []),
        ),
        uniner_entry("ner_1", "", ("person", [])),  # no words: skipped and counted
    ]
    dataset = read_uniner(write(tmp_path, "pile.json", json.dumps(entries)))
    words = ["New", "York", ",", "New", "York", ":", "Frank", "Sinatra", "sang", "New", "York", "."]
    assert dataset.examples == [
        Example(words, [(0, 1, "city"), (0, 4, "song"), (3, 4, "city"), (6, 7, "person"), (9, 10, "city")])
    ]
    assert dataset.types == ["city", "person", "song", "date"]
    assert dataset.skipped == 1
    assert read_dataset(write(tmp_path, "pile.data", json.dumps(entries)), format="pile-ner") == dataset


def test_uniner_malformed_entries_name_the_entry(tmp_path):
    good = uniner_entry("ok", "a b", ("t", ["b"]))
    no_passage = {"id": "x", "conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "ok"}]}
    unanswered = uniner_entry("x", "a b", ("t", []))
    unanswered["conversations"].pop()
    for entry, where, message in [
        (no_passage, "entry 2 \\(id x\\)", "a human turn 'Text: <passage>' first"),
        (unanswered, "entry 2 \\(id x\\)", "one gpt answer after every human turn"),
        ({"conversations": "a b"}, "entry 2", "a 'conversations' list"),
    ]:
        path = write(tmp_path, "u.json", json.dumps([good, entry]))
        with pytest.raises(ValueError, match=f"{path}: {where}: expected .*{message}"):
            read_uniner(path)


def test_uniner_bad_question_and_answer(tmp_path):
    entry = uniner_entry("x", "a b", ("t", ["a"]))
    entry["conversations"][2]["value"] = "Who is in the text?"
    with pytest.raises(ValueError, match="'Who is in the text\\?' is not of the form"):
        read_uniner(write(tmp_path, "q.json", json.dumps([entry])))
    entry = uniner_entry("x", "a b", ("t", ["a"]))
    entry["conversations"][3]["value"] = "a"
    with pytest.raises(ValueError, match="answer 'a' is not a JSON list of strings"):
        read_uniner(write(tmp_path, "a.json", json.dumps([entry])))


GLINER_RECORDS = [
    {"tokenized_text": ["Ada", "Lovelace", "wrote", "notes", "."], "ner": [[0, 1, "person"], [3, 3, "work"]]},
    {"tokenized_text": ["no", "entities"], "ner": []},
    {"tokenized_text": ["x", "y"], "ner": [[1, 0, "person"]]},  # inverted
    {"tokenized_text": ["x", "y"], "ner": [[0, 2, "person"]]},  # past the end
    {"tokenized_text": ["x", "y"], "ner": [[0, 0, " "]]},  # empty label
    {"tokenized_text": [], "ner": []},  # no words
]
GLINER_EXPECTED = [
    Example(["Ada", "Lovelace", "wrote", "notes", "."], [(0, 1, "person"), (3, 3, "work")]),
    Example(["no", "entities"], []),
]


def test_gliner_jsonl_skips_and_counts_bad_examples(tmp_path, caplog):
    path = write(tmp_path, "train.jsonl", "\n".join(json.dumps(r) for r in GLINER_RECORDS) + "\n\n")
    with caplog.at_level(logging.WARNING, logger="gliner_ray.data"):
        dataset = read_dataset(path)
    assert dataset == Dataset(GLINER_EXPECTED, ["person", "work"], 4)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 4 of 6 examples" in warnings[0].getMessage()
    assert "record 3: inverted span (1, 0, 'person')" in warnings[0].getMessage()


def test_gliner_json_array_and_label_map(tmp_path):
    path = write(tmp_path, "train.json", json.dumps(GLINER_RECORDS[:2], indent=1))
    assert read_gliner(path) == Dataset(GLINER_EXPECTED, ["person", "work"], 0)
    renamed = read_dataset(path, label_map={"work": "written work"})
    assert renamed.examples[0].spans == [(0, 1, "person"), (3, 3, "written work")]
    assert renamed.types == ["person", "written work"]


def test_json_errors_name_file_and_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"tokenized_text": ["a"], "ner": []}\n{"tokenized_text": [\n')
    with pytest.raises(ValueError, match=f"{path}:2: not valid JSON Lines"):
        read_dataset(path)
    path = write(tmp_path, "bad.json", '[\n{"tokenized_text": ["a"]},\n{"tokenized_text" ["b"]}\n]')
    with pytest.raises(ValueError, match=f"{path}:3: not valid JSON"):
        read_dataset(path)
    path = write(tmp_path, "ner.json", '[{"tokenized_text": ["a"], "ner": [[0, "person"]]}]')
    with pytest.raises(ValueError, match="record 1: 'ner' must be a list of"):
        read_dataset(path)


def test_format_inference_and_its_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the format of .*data.csv.*--format"):
        read_dataset(write(tmp_path, "data.csv", "a,b\n"))
    with pytest.raises(ValueError, match="cannot tell the format: expected records with 'conversations'"):
        read_dataset(write(tmp_path, "other.json", '[{"text": "a"}]'))
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        read_dataset(write(tmp_path, "x.txt", ""), format="csv")
    assert read_dataset(write(tmp_path, "empty.txt", "\n\n")) == Dataset([], [], 0)
    conll_as_named = write(tmp_path, "sentences.tsv", "EU\tB-ORG\n")
    assert read_dataset(conll_as_named, format="conll").examples == [Example(["EU"], [(0, 0, "organization")])]
    with pytest.raises(FileNotFoundError):
        read_dataset(str(tmp_path / "missing.txt"))


def test_label_map_inline_or_file(tmp_path):
    assert load_label_map('{"PER": "human"}') == {"PER": "human"}
    assert load_label_map(write(tmp_path, "map.json", '{"ORG": "company"}')) == {"ORG": "company"}
    with pytest.raises(ValueError, match="not valid JSON"):
        load_label_map("{PER: human}")
    with pytest.raises(ValueError, match="a label map is a JSON object of tag name to type name"):
        load_label_map(write(tmp_path, "list.json", '["PER"]'))


def test_conll_from_s3(s3_bucket):
    import boto3

    boto3.client("s3").put_object(Bucket=s3_bucket, Key="data/test.txt", Body=CONLL_2003_RAW.encode())
    dataset = read_dataset(f"s3://{s3_bucket}/data/test.txt")
    assert [e.words for e in dataset.examples] == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"], ["Paris", "London", "talks"]]
    assert dataset.types == ["location", "miscellaneous", "organization", "person"]

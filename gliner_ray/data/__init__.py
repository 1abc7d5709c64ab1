"""Annotated NER data: readers of the formats GLiNER is trained and evaluated on, into ``Example``s."""

from .conll import DEFAULT_LABEL_MAP, bio_spans, read_conll
from .examples import Dataset, Example, drop_invalid, example_problem, load_label_map, relabel
from .json_formats import read_gliner, read_uniner
from .read import FORMATS, read_dataset

__all__ = [
    "DEFAULT_LABEL_MAP", "FORMATS", "Dataset", "Example", "bio_spans", "drop_invalid", "example_problem",
    "load_label_map", "read_conll", "read_dataset", "read_gliner", "read_uniner", "relabel",
]

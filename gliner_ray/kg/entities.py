"""Entities: a mention names the entity ``(normalize_surface(span), label)``, whose id is a 64-bit hash, so ids agree
across runs, input orders and corpora (two entities share one with probability about n²/2⁶⁵: ~3e-4 for 10⁸
entities). The label is hashed as written: "ORG" and "org" are different types."""

from __future__ import annotations

import functools
import hashlib
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@functools.lru_cache(maxsize=1 << 18)  # a Ray worker keeps it across tasks: surface forms repeat across files
def normalize_surface(surface: str) -> str:
    """The form that identifies an entity: NFKC, casefolded, surrounding whitespace and punctuation stripped, inner
    whitespace collapsed. Falls back to the unstripped form when stripping leaves nothing ("..." stays "...")."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", surface).casefold())
    edge_noise = "".join({ch for ch in folded if ch.isspace() or unicodedata.category(ch).startswith("P")})
    return " ".join(folded.strip(edge_noise).split()) or " ".join(folded.split())


def entity_id(surface: str, label: str) -> str:
    """The stable id of the entity a mention names: 16 hex characters of blake2b(normalized form, 0x1F, label)."""
    key = normalize_surface(surface) + "\x1f" + label
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def display_form(surface: str) -> str:
    """A surface form with its whitespace tidied, for entity names: "IBM " and "IBM" read the same."""
    return " ".join(surface.split())


def link_entities(spans: pa.ChunkedArray, labels: pa.ChunkedArray) -> pa.Array:
    """The ``entity_id`` of each (span, label) row. Ids are computed once per distinct (span, label) and
    normalization once per distinct span (Python); mapping them back onto the rows is vectorized."""
    spans = pc.dictionary_encode(spans.combine_chunks())
    labels = pc.dictionary_encode(labels.combine_chunks())
    label_count = max(len(labels.dictionary), 1)
    pair = spans.indices.to_numpy().astype(np.int64) * label_count + labels.indices.to_numpy()
    distinct, row_pair = np.unique(pair, return_inverse=True)
    surfaces, label_names = spans.dictionary.to_pylist(), labels.dictionary.to_pylist()
    ids = [entity_id(surfaces[p // label_count], label_names[p % label_count]) for p in distinct.tolist()]
    return pa.array(ids, pa.string()).take(row_pair.reshape(-1))


def link_mentions(mentions: pa.Table) -> pa.Table:
    """The mentions, each with the ``entity_id`` it names."""
    return mentions.append_column("entity_id", link_entities(mentions["span"], mentions["label"]))


def link_relations(relations: pa.Table) -> pa.Table:
    """The relations as directed edges ``(doc_id, source_id, target_id, relation, score)``: the head's entity to
    the tail's, ids from the very ``entity_id`` that mentions get."""
    return pa.table({
        "doc_id": relations["doc_id"],
        "source_id": link_entities(relations["head_span"], relations["head_label"]),
        "target_id": link_entities(relations["tail_span"], relations["tail_label"]),
        "relation": relations["relation"], "score": relations["score"],
    })


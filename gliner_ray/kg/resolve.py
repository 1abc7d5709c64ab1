"""Entity resolution across the corpus: the within-document aliases of every document (``aliases``) are counted,
then one mapping from normalized forms to entities is made: a short form seen alone merges into the long form its
resolving documents agree on (``corpus``), near-duplicate names merge (``similarity``); each mention then names
``mapping(its within-document form)``. An entity's id is the id of its canonical (long) form, so ids stay stable
across runs, input orders and partitionings."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .aliases import RULE_ACRONYM, RULE_WITHIN_DOCUMENT
from .similarity import similar_pairs
from .tables import sql

logger = logging.getLogger(__name__)

RULE_NORMALIZED, RULE_CORPUS, RULE_SIMILARITY = "normalized", "corpus", "similarity"
RULES = frozenset({RULE_WITHIN_DOCUMENT, RULE_ACRONYM, RULE_CORPUS, RULE_SIMILARITY})
MODES = ("none", "documents", "corpus")
MAPPING_SCHEMA = pa.schema([("form_id", pa.string()), ("entity_id", pa.string()), ("rule", pa.string()),
                            ("score", pa.float64())])


@dataclasses.dataclass(frozen=True)
class Resolution:
    """``mode``: none (normalized forms only), documents (also within-document aliases), corpus (also corpus
    aliases and near-duplicates); a short form seen alone merges into a long form when at least ``min_documents``
    documents resolve it and ``agreement`` of them agree; names merge at ``similarity`` (0..1) or above.
    ``rules`` limits the rules (for measuring them one by one)."""
    mode: str = "corpus"
    agreement: float = 0.9
    min_documents: int = 2
    similarity: float = 0.9
    rules: frozenset = RULES

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"--resolve must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.5 < self.agreement <= 1 or not 0 < self.similarity <= 1:
            raise ValueError(f"--alias-agreement must be in (0.5, 1] and --similarity in (0, 1], got "
                             f"{self.agreement} and {self.similarity}")
        if self.min_documents < 1:
            raise ValueError(f"--alias-min-documents must be >= 1, got {self.min_documents}")

    @property
    def corpus(self) -> bool:
        return self.mode == "corpus"


NAMES_SQL = """
SELECT form_id, any_value(label) AS label, any_value(form) AS form, sum(mentions)::BIGINT AS mentions
FROM names GROUP BY form_id ORDER BY label, form, form_id
"""
CORPUS_SQL = """
WITH totals AS (SELECT form_id, local_id, sum(documents) AS n FROM targets GROUP BY form_id, local_id),
ranked AS (SELECT form_id, local_id, n, sum(n) OVER (PARTITION BY form_id) AS total,
                  row_number() OVER (PARTITION BY form_id ORDER BY n DESC, local_id) AS rank FROM totals)
SELECT form_id, local_id, n / total AS score FROM ranked
WHERE rank = 1 AND total >= {min_documents} AND n / total >= {agreement} ORDER BY form_id
"""


def clusters(names: pa.Table, resolution: Resolution) -> dict[str, tuple[str, float]]:
    """``form_id -> (canonical form_id, score)`` for the names merged by similarity (canonical: the most mentioned
    of its cluster, then the longest form, then the smallest)."""
    ids, labels, forms = (names[c].to_pylist() for c in ("form_id", "label", "form"))
    mentions = names["mentions"].to_pylist()
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best: dict[int, float] = {}
    for i, j, score in similar_pairs(ids, labels, forms, resolution.similarity):
        parent[max(root(i), root(j))] = min(root(i), root(j))
        best[i], best[j] = max(best.get(i, 0), score), max(best.get(j, 0), score)
    members: dict[int, list[int]] = {}
    for i in best:
        members.setdefault(root(i), []).append(i)
    merged = {}
    for group in members.values():
        canonical = min(group, key=lambda i: (-mentions[i], -len(forms[i]), forms[i], ids[i]))
        merged.update({ids[i]: (ids[canonical], best[i]) for i in group if i != canonical})
    return merged


def corpus_mapping(names: pa.Table, targets: pa.Table, resolution: Resolution) -> tuple[pa.Table, dict]:
    """The mapping ``(form_id, entity_id, rule, score)`` of every normalized form that is not its own entity, from
    all documents' evidence (``aliases.resolve_documents``), and its counts."""
    if not resolution.corpus:
        return MAPPING_SCHEMA.empty_table(), {}
    names = sql(NAMES_SQL, names=names)
    similar = clusters(names, resolution) if RULE_SIMILARITY in resolution.rules else {}
    rows = {form: (canonical, RULE_SIMILARITY, score) for form, (canonical, score) in similar.items()}
    if RULE_CORPUS in resolution.rules:
        aliases = sql(CORPUS_SQL.format(min_documents=resolution.min_documents, agreement=resolution.agreement),
                      targets=targets)
        for form, target, score in zip(*(aliases[c].to_pylist() for c in ("form_id", "local_id", "score"))):
            rows[form] = (similar.get(target, (target,))[0], RULE_CORPUS, score)
    rows = {form: row for form, row in rows.items() if row[0] != form}
    counts = {"names": names.num_rows, RULE_SIMILARITY: sum(r[1] == RULE_SIMILARITY for r in rows.values()),
              RULE_CORPUS: sum(r[1] == RULE_CORPUS for r in rows.values())}
    forms = sorted(rows)
    mapping = pa.table([forms, *zip(*(rows[f] for f in forms))] if forms else [[], [], [], []], schema=MAPPING_SCHEMA)
    return mapping, counts


APPLY_RELATIONS_SQL = """
SELECT r.doc_id, coalesce(s.entity_id, r.source_id) AS source_id, coalesce(t.entity_id, r.target_id) AS target_id,
       r.relation, r.score
FROM relations r LEFT JOIN mapping s ON r.source_id = s.form_id LEFT JOIN mapping t ON r.target_id = t.form_id
"""
LOCAL_RELATIONS_SQL = """
SELECT r.doc_id, coalesce(s.local_id, r.source_id) AS source_id, coalesce(t.local_id, r.target_id) AS target_id,
       r.relation, r.score
FROM relations r LEFT JOIN aliases s ON r.doc_id = s.doc_id AND r.source_id = s.form_id
                 LEFT JOIN aliases t ON r.doc_id = t.doc_id AND r.target_id = t.form_id
"""


def apply_mapping(mentions: pa.Table, mapping: pa.Table) -> pa.Table:
    """The resolved mentions with their ``entity_id`` (``mapping`` of their local form), the ``rule`` that linked
    them (the within-document rule, else the mapping's, else normalized), its ``rule_score``, and ``canonical``
    (the mention's form is its entity's own)."""
    local_id, local_rule = mentions["local_id"], mentions["local_rule"]
    if mapping.num_rows:
        entry = pc.index_in(local_id, value_set=mapping["form_id"].combine_chunks())
        mapped, at = pc.is_valid(entry), pc.fill_null(entry, 0)
        entity = pc.if_else(mapped, mapping["entity_id"].take(at), local_id)
        rule = pc.coalesce(local_rule, pc.if_else(mapped, mapping["rule"].take(at), RULE_NORMALIZED))
        score = pc.if_else(pc.and_(pc.is_null(local_rule), mapped), mapping["score"].take(at), 1.0)
    else:
        entity, rule = local_id, pc.coalesce(local_rule, pa.scalar(RULE_NORMALIZED))
        score = pa.array(np.ones(mentions.num_rows))
    canonical = pc.equal(mentions["form_id"], entity)  # the entity's own form: its name is chosen among these
    rule = pc.dictionary_encode(rule)
    return (mentions.drop_columns(["form_id", "local_id", "local_rule"]).append_column("entity_id", entity)
            .append_column("rule", rule).append_column("rule_score", score).append_column("canonical", canonical))


def local_relations(relations: pa.Table, aliases: pa.Table) -> pa.Table:
    """Relation edges (``link_relations``) with each end resolved within its document."""
    return sql(LOCAL_RELATIONS_SQL, relations=relations, aliases=aliases)


def map_relations(relations: pa.Table, mapping: pa.Table) -> pa.Table:
    """Relation edges with each end mapped to its entity."""
    return sql(APPLY_RELATIONS_SQL, relations=relations, mapping=mapping)

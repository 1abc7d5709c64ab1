"""Within-document aliases, per type: a mention whose words are the first or last words of a longer mention of the
same type in the same document names that mention's entity ("Merkel" -> "Angela Merkel", "Siemens" -> "Siemens
AG"); an acronym names the same-type mention whose initials it spells, or that it follows in parentheses
("International Business Machines (IBM)"). A form with several candidate long forms in a document stays itself."""

from __future__ import annotations

import functools
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .entities import normalize_surface
from .tables import sql

logger = logging.getLogger(__name__)

# Words that initials skip: "Bank of England" -> BOE, "Food and Drug Administration" -> FDA.
MINOR_WORDS = frozenset("of and the for & de du des la le der die das von van y e et di del".split())
RULE_WITHIN_DOCUMENT, RULE_ACRONYM = "within-document", "acronym"


@functools.lru_cache(maxsize=1 << 19)
def form_affixes(form: str) -> tuple[str, ...]:
    """Every run of first words and of last words of a form, shorter than the form: the forms that could be its
    short form ("angela merkel" gives "angela" and "merkel")."""
    words = form.split()
    return tuple(" ".join(part) for k in range(1, len(words)) for part in (words[:k], words[k:]))


@functools.lru_cache(maxsize=1 << 19)
def form_features(surface: str) -> tuple[str, str, bool]:
    """``(normalized form, initials, acronym-like)`` of a surface form: initials of the words outside
    ``MINOR_WORDS`` (for two words or more), and whether the surface reads as an acronym (one upper-case token of
    2-6 letters or digits, with at least two letters, punctuation aside: then its letters are its initials)."""
    form = normalize_surface(surface)
    words = form.split()
    initials = "".join(word[0] for word in words if word not in MINOR_WORDS) if len(words) > 1 else ""
    acronym = False
    if len(surface) <= 12 and len(words) == 1:  # "(IBM)" and "U.S." read as IBM and US
        token = "".join(ch for ch in surface if ch.isalnum())
        acronym = 2 <= len(token) <= 6 and token.isupper() and sum(ch.isalpha() for ch in token) >= 2
        initials = token.lower() if acronym else initials
    return form, initials, acronym


def candidate_documents(mentions: pa.Table, spans: pa.DictionaryArray, features: list[tuple]) -> pa.Table:
    """The mentions of the documents that hold a possible short form (an affix of some form, or an acronym), with
    ``form``, ``initials`` and ``acronym``: the only documents where a within-document rule can apply."""
    short = set().union(*[form_affixes(f[0]) for f in features])
    candidate = pa.array([f[2] or f[0] in short for f in features], pa.bool_()).take(spans.indices)
    documents = pc.unique(mentions["doc_id"].filter(candidate))
    keep = pc.is_in(mentions["doc_id"], value_set=documents)
    some, indices = mentions.filter(keep), spans.indices.filter(keep)
    for i, (name, kind) in enumerate((("form", pa.string()), ("initials", pa.string()), ("acronym", pa.bool_()))):
        some = some.append_column(name, pa.array([f[i] for f in features], kind).take(indices))
    return some


LOCAL_SQL = """
WITH forms AS (
    SELECT doc_id, label, form_id, any_value(form) AS form, any_value(initials) AS initials,
           bool_or(acronym) AS acronym, length(any_value(form)) AS size
    FROM mentions GROUP BY doc_id, label, form_id),
short AS (SELECT * FROM mentions WHERE acronym),
candidates AS (
    SELECT s.doc_id, s.form_id, l.form_id AS local_id,
           CASE WHEN s.acronym AND s.initials = l.initials THEN 'acronym' ELSE 'within-document' END AS rule
    FROM forms s JOIN forms l ON s.doc_id = l.doc_id AND s.label = l.label AND s.form_id <> l.form_id
    WHERE (l.size > s.size AND (starts_with(l.form, s.form || ' ') OR ends_with(l.form, ' ' || s.form)))
       OR (s.acronym AND NOT l.acronym AND s.initials = l.initials)
    UNION ALL
    SELECT s.doc_id, s.form_id, l.form_id AS local_id, 'acronym' AS rule  -- "Long Name (LN)"
    FROM short s JOIN mentions l ON s.doc_id = l.doc_id AND s.label = l.label AND s.form_id <> l.form_id
    WHERE s.start - l."end" BETWEEN 1 AND 3 AND NOT l.acronym AND l.initials <> ''
      AND left(l.form, 1) = left(s.form, 1))
SELECT doc_id, form_id, any_value(local_id) AS local_id, min(rule) AS rule
FROM candidates GROUP BY doc_id, form_id HAVING count(DISTINCT local_id) = 1
"""


def local_aliases(mentions: pa.Table, rules: frozenset[str]) -> pa.Table:
    """The within-document aliases of the documents held whole in ``mentions`` (with ``form_id``, the id of the
    normalized form, and ``candidate_documents``' columns): ``(doc_id, form_id, local_id, rule)``, one row per form that
    names exactly one longer form of its type in its document, for the ``rules`` enabled."""
    aliases = sql(LOCAL_SQL, mentions=mentions.select(["doc_id", "start", "end", "label", "form_id", "form",
                                                       "initials", "acronym"]))
    if not {RULE_WITHIN_DOCUMENT, RULE_ACRONYM} <= rules:
        aliases = aliases.filter(pc.is_in(aliases["rule"], value_set=pa.array(sorted(rules), pa.string())))
    return aliases


RESOLVE_SQL = """
SELECT a.local_id, a.rule AS local_rule, m.row FROM mentions m JOIN aliases a USING (doc_id, form_id)
"""
NAMES_SQL = """
SELECT form_id, any_value(label) AS label, any_value(span) AS span, count(*) AS mentions FROM mentions GROUP BY form_id
"""
TARGETS_SQL = """
SELECT form_id, local_id, count(DISTINCT doc_id) AS documents FROM mentions GROUP BY form_id, local_id
"""


def resolve_documents(mentions: pa.Table, rules: frozenset[str]) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """``mentions`` (documents held whole; ``entity_id`` the normalized form's id, renamed ``form_id``) with
    ``local_id`` (the form each names in its document) and ``local_rule`` (null: itself); the aliases; and the
    corpus step's evidence: per form its label, ``form`` and mentions (``names``), and per (form, long form) the
    documents that resolve it so (``targets``)."""
    mentions = mentions.rename_columns(["form_id" if n == "entity_id" else n for n in mentions.column_names])
    spans = pc.dictionary_encode(mentions["span"].combine_chunks())
    features = [form_features(s) for s in spans.dictionary.to_pylist()]
    indexed = mentions.select(["doc_id", "form_id", "label"]).append_column("span", spans.indices)
    names = sql(NAMES_SQL, mentions=indexed)
    names = names.append_column("form", pa.array([features[i][0] for i in names["span"].to_pylist()], pa.string()))
    some = candidate_documents(mentions.append_column("row", pa.array(np.arange(mentions.num_rows))), spans,
                               features)
    aliases = local_aliases(some, rules)
    local_id = mentions["form_id"].combine_chunks()
    local_rule = pa.nulls(mentions.num_rows, pa.string())
    if aliases.num_rows:
        found = sql(RESOLVE_SQL, mentions=some.select(["doc_id", "form_id", "row"]), aliases=aliases)
        rows = found["row"].to_numpy()
        ids = np.array(local_id.to_pylist(), dtype=object)
        ids[rows] = found["local_id"].to_numpy(zero_copy_only=False)
        rules_of = np.full(mentions.num_rows, None, dtype=object)
        rules_of[rows] = found["local_rule"].to_numpy(zero_copy_only=False)
        local_id, local_rule = pa.array(ids, pa.string()), pa.array(rules_of, pa.string())
    resolved = mentions.append_column("local_id", local_id).append_column("local_rule", local_rule)
    targets = sql(TARGETS_SQL, mentions=resolved.filter(pc.is_valid(local_rule)).select(["doc_id", "form_id",
                                                                                         "local_id"]))
    return resolved, aliases, names.drop_columns(["span"]), targets

"""Within-document aliases, per type: a mention whose words are the first or last words of a longer mention of the
same type in the same document names that mention's entity ("Merkel" -> "Angela Merkel", "Siemens" -> "Siemens
AG"); an acronym names the same-type mention whose initials it spells, or that it follows in parentheses
("International Business Machines (IBM)"). A form with several candidate long forms in a document stays itself."""

from __future__ import annotations

import functools
import logging

import pyarrow as pa
import pyarrow.compute as pc

from .entities import normalize_surface
from .tables import sql

logger = logging.getLogger(__name__)

# Words that initials skip: "Bank of England" -> BOE, "Food and Drug Administration" -> FDA.
MINOR_WORDS = frozenset("of and the for & de du des la le der die das von van y e et di del".split())
RULE_WITHIN_DOCUMENT, RULE_ACRONYM = "within-document", "acronym"


@functools.lru_cache(maxsize=1 << 18)
def form_features(surface: str) -> tuple[str, str, bool]:
    """``(normalized form, initials, acronym-like)`` of a surface form: initials of the words outside
    ``MINOR_WORDS`` (for two words or more), and whether the surface reads as an acronym (one upper-case token of
    2-6 letters or digits, with at least two letters)."""
    form = normalize_surface(surface)
    words = form.split()
    initials = "".join(word[0] for word in words if word not in MINOR_WORDS) if len(words) > 1 else ""
    token = "".join(ch for ch in surface if ch.isalnum() or ch.isspace()).strip()  # "(IBM)", "U.S." read so
    acronym = (" " not in token and 2 <= len(token) <= 6 and token.isalnum() and token.isupper()
               and sum(ch.isalpha() for ch in token) >= 2)
    return form, initials, acronym


def with_features(mentions: pa.Table) -> pa.Table:
    """``mentions`` plus ``form``, ``initials`` and ``acronym`` (``form_features``), computed once per distinct
    span."""
    spans = pc.dictionary_encode(mentions["span"].combine_chunks())
    features = [form_features(s) for s in spans.dictionary.to_pylist()]
    columns = zip(*features) if features else ([], [], [])
    for name, values, kind in zip(("form", "initials", "acronym"), columns, (pa.string(), pa.string(), pa.bool_())):
        mentions = mentions.append_column(name, pa.array(list(values), kind).take(spans.indices))
    return mentions


LOCAL_SQL = """
WITH forms AS (
    SELECT doc_id, label, form_id, any_value(form) AS form, any_value(initials) AS initials,
           bool_or(acronym) AS acronym, length(any_value(form)) AS size
    FROM mentions GROUP BY doc_id, label, form_id),
short AS (SELECT * FROM mentions WHERE acronym),
candidates AS (
    SELECT s.doc_id, s.form_id, l.form_id AS local_id,
           CASE WHEN s.acronym AND s.form = l.initials THEN 'acronym' ELSE 'within-document' END AS rule
    FROM forms s JOIN forms l ON s.doc_id = l.doc_id AND s.label = l.label AND s.form_id <> l.form_id
    WHERE (l.size > s.size AND (starts_with(l.form, s.form || ' ') OR ends_with(l.form, ' ' || s.form)))
       OR (s.acronym AND s.form = l.initials)
    UNION ALL
    SELECT s.doc_id, s.form_id, l.form_id AS local_id, 'acronym' AS rule  -- "Long Name (LN)"
    FROM short s JOIN mentions l ON s.doc_id = l.doc_id AND s.label = l.label AND s.form_id <> l.form_id
    WHERE s.start - l."end" BETWEEN 1 AND 3 AND l.initials <> '' AND left(l.form, 1) = left(s.form, 1))
SELECT doc_id, form_id, any_value(local_id) AS local_id, min(rule) AS rule
FROM candidates GROUP BY doc_id, form_id HAVING count(DISTINCT local_id) = 1
"""


def local_aliases(mentions: pa.Table, rules: frozenset[str]) -> pa.Table:
    """The within-document aliases of the documents held whole in ``mentions`` (with ``form_id``, the id of the
    normalized form, and ``with_features``' columns): ``(doc_id, form_id, local_id, rule)``, one row per form that
    names exactly one longer form of its type in its document, for the ``rules`` enabled."""
    aliases = sql(LOCAL_SQL, mentions=mentions.select(["doc_id", "start", "end", "label", "form_id", "form",
                                                       "initials", "acronym"]))
    if not {RULE_WITHIN_DOCUMENT, RULE_ACRONYM} <= rules:
        aliases = aliases.filter(pc.is_in(aliases["rule"], value_set=pa.array(sorted(rules), pa.string())))
    return aliases


RESOLVE_SQL = """
SELECT m.*, coalesce(a.local_id, m.form_id) AS local_id, a.rule AS local_rule
FROM mentions m LEFT JOIN aliases a ON m.doc_id = a.doc_id AND m.form_id = a.form_id
"""


def resolve_documents(mentions: pa.Table, rules: frozenset[str]) -> tuple[pa.Table, pa.Table]:
    """``mentions`` (documents held whole, ``entity_id`` the normalized form's id) renamed to ``form_id`` and
    given ``local_id`` (the form it names in its document) and ``local_rule`` (null: itself), plus the aliases."""
    mentions = mentions.rename_columns(["form_id" if n == "entity_id" else n for n in mentions.column_names])
    featured = with_features(mentions)
    aliases = local_aliases(featured, rules)
    resolved = sql(RESOLVE_SQL + " ORDER BY m.doc_id, m.start, m.form_id",
                   mentions=featured.drop_columns(["initials", "acronym"]), aliases=aliases)
    return resolved, aliases


EVIDENCE_SQL = """
SELECT form_id, any_value(label) AS label, any_value(form) AS form, count(*) AS mentions,
       count(DISTINCT doc_id) AS documents,
       count(DISTINCT doc_id) FILTER (WHERE local_rule IS NULL) AS alone
FROM mentions GROUP BY form_id
"""
TARGETS_SQL = """
SELECT form_id, local_id, count(DISTINCT doc_id) AS documents
FROM mentions WHERE local_rule IS NOT NULL GROUP BY form_id, local_id
"""


def document_evidence(resolved: pa.Table) -> tuple[pa.Table, pa.Table]:
    """What the corpus step needs of some documents: per normalized form its label, form, mentions, documents and
    documents where it stood alone (``alone``); and per (form, long form) the documents that resolved it so."""
    table = resolved.select(["doc_id", "label", "form_id", "form", "local_id", "local_rule"])
    return sql(EVIDENCE_SQL, mentions=table), sql(TARGETS_SQL, mentions=table)

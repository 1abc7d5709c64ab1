"""The knowledge-graph job: extracted mentions (and relations) to entity, co-occurrence and typed-relation tables."""

from .entities import entity_id, normalize_surface
from .graph import build_graph
from .tables import cooccurrences

__all__ = ["build_graph", "cooccurrences", "entity_id", "normalize_surface"]

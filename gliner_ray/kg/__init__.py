"""The knowledge-graph job: extracted mentions (and relations) to entity, co-occurrence and typed-relation tables."""

from .graph import build_graph, cooccurrences, entity_id, normalize_surface

__all__ = ["build_graph", "cooccurrences", "entity_id", "normalize_surface"]

"""Relation extraction GLiNER predictor (``RelexModel``): entities as for any model, and the typed relations
between them.

A relation is kept when σ(logit) passes the relation threshold and both its spans survive greedy decoding
(``decode.decode_relations``). Long texts are windowed as for entities: a pair is scored in every window that
holds both spans, and kept once, with its best score.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from ..checks import check_threshold
from ..decode import Relation, RelationCandidate, Span, decode_relations, greedy_decode
from ..encoding import Batch, Row
from ..models.relex import RelexScores
from ..models.span import span_mask
from ..text import clean_relations
from ..timing import lap
from .base import GLiNER

MAX_PAIRS = 2048  # entity pairs scored per window at most: E entities make E² pairs


class RelexGLiNER(GLiNER):
    """``GLiNER`` for relation extraction checkpoints: ``predict`` as for any model, ``predict_relations`` for
    entities and the typed relations between them."""

    dropped_pairs = 0  # entity pairs left unscored by the ``max_pairs`` cap, over this predictor's life

    def forward(self, batch: Batch, rows: Sequence[Row]) -> RelexScores:
        return self.model(**batch.to(self.device).model_inputs())

    def _candidates(self, scores: RelexScores, rows: Sequence[Row], threshold: float, out: list[list[Span]]) -> None:
        GLiNER._candidates(scores.span_logits, rows, threshold, out)

    def predict_relations(
        self, texts: Sequence[str] | str, labels: Sequence[str], relations: Sequence[str], *args: Any, **options: Any
    ) -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]]]:
        """Entities (as ``predict``) and relations of each text, a relation as ``{"head": entity, "tail": entity,
        "relation", "score"}`` with entities as ``{"start", "end", "text", "label", "score"}`` (character offsets).
        The options after ``relations`` (thresholds, decoding, batch size) are those of ``predict_relations_words``."""
        texts, split = self.split_texts(texts)
        entities, found = self.predict_relations_words([s.words for s in split], labels, relations, *args, **options)
        entity_dicts, relation_dicts = [], []
        for text, words, spans, text_relations in zip(texts, split, entities, found):
            entity_dicts.append([self.entity_dict(text, words, span) for span in spans])
            relation_dicts.append([
                {"head": self.entity_dict(text, words, r.head), "tail": self.entity_dict(text, words, r.tail),
                 "relation": r.relation, "score": r.score}
                for r in text_relations
            ])
        return entity_dicts, relation_dicts

    @torch.inference_mode()
    def predict_relations_words(
        self,
        texts: Sequence[Sequence[str]],
        labels: Sequence[str],
        relations: Sequence[str],
        threshold: float = 0.5,
        adjacency_threshold: float | None = None,
        relation_threshold: float | None = None,
        flat_ner: bool = True,
        multi_label: bool = False,
        batch_size: int = 8,
        max_pairs: int | None = MAX_PAIRS,
    ) -> tuple[list[list[Span]], list[list[Relation]]]:
        """``predict_relations`` over pre-split texts: decoded spans and relations in word indices. The adjacency and
        relation thresholds default to ``threshold``, as in the reference library. ``max_pairs``: entity pairs scored
        per window at most (the best-scoring entities' first; ``dropped_pairs`` counts the others), None: all."""
        labels, relations = tuple(self._label_sets(labels, 1)[0]), clean_relations(relations)
        rows = []
        for i, words in enumerate(texts):
            rows += self.prompt_tokenizer.rows(i, words, labels, self.config.max_len, self.config.max_width, relations)
        span_candidates: list[list[Span]] = [[] for _ in texts]
        relation_candidates: list[list[RelationCandidate]] = [[] for _ in texts]
        scored = self.score_relation_rows(rows, threshold, adjacency_threshold, relation_threshold, batch_size,
                                          max_pairs=max_pairs)
        for row, (spans, pairs) in zip(rows, zip(*scored)):
            span_candidates[row.text_index] += spans
            relation_candidates[row.text_index] += pairs
        entities = [greedy_decode(c, flat_ner=flat_ner, multi_label=multi_label) for c in span_candidates]
        return entities, [decode_relations(c, e) for c, e in zip(relation_candidates, entities)]

    @torch.inference_mode()
    def score_relation_rows(
        self,
        rows: Sequence[Row],
        threshold: float,
        adjacency_threshold: float | None = None,
        relation_threshold: float | None = None,
        batch_size: int | None = 8,
        seconds: dict[str, float] | None = None,
        max_pairs: int | None = MAX_PAIRS,
        max_tokens: int | None = None,
    ) -> tuple[list[list[Span]], list[list[RelationCandidate]]]:
        """For each row: its candidate spans (as ``score_rows``) and its relation candidates, in text word indices.
        Entities for pairing are all spans of the window above ``threshold``, its overlap with the next included;
        at most ``max_pairs`` pairs of them per window, the best-scoring entities' first (``dropped_pairs`` counts
        the pairs left out, over the predictor's life)."""
        check_threshold(threshold, "threshold")
        adjacency_threshold = threshold if adjacency_threshold is None else check_threshold(adjacency_threshold, "adjacency_threshold")
        relation_threshold = threshold if relation_threshold is None else check_threshold(relation_threshold, "relation_threshold")
        spans: list[list[Span]] = [[] for _ in rows]
        pairs: list[list[RelationCandidate]] = [[] for _ in rows]
        for chunk, batch_rows, scores in self.forward_batches(rows, batch_size, seconds, max_tokens):
            tick = time.perf_counter()
            self._candidates(scores, batch_rows, threshold, [spans[i] for i in chunk])
            for b, (i, row) in enumerate(zip(chunk, batch_rows)):
                pairs[i] = self._relation_candidates(scores, b, row, threshold, adjacency_threshold, relation_threshold,
                                                     max_pairs)
            lap(seconds, "candidates", tick)
        return spans, pairs

    def _relation_candidates(self, scores: RelexScores, b: int, row: Row, threshold: float,
                             adjacency_threshold: float, relation_threshold: float,
                             max_pairs: int | None) -> list[RelationCandidate]:
        num_words, num_labels, num_relations = len(row.word_starts), len(row.labels), len(row.relations)
        if num_relations == 0:
            return []
        logits = scores.span_logits[b, :num_words, :, :num_labels].float()
        inside = span_mask(torch.tensor([num_words]), num_words, self.config.max_width)[0].to(logits.device)
        best = torch.sigmoid(logits).amax(-1)  # (W, K): each span's best type score
        selected = ((best > threshold) & inside).nonzero()  # (E, 2): start, width
        if len(selected) < 2:
            return []
        entities = torch.stack([selected[:, 0], selected[:, 0] + selected[:, 1]], dim=1)
        entity_pairs, pair_logits, dropped = self.model.relation_logits(
            scores.word_vecs[b, :num_words], scores.relation_states[b, :num_relations], entities, adjacency_threshold,
            best[selected[:, 0], selected[:, 1]], max_pairs)
        self.dropped_pairs += dropped
        probs = torch.sigmoid(pair_logits.float())
        hits = (probs > relation_threshold).nonzero().tolist()
        bounds = (entities + row.window.start).tolist()
        pair_list, prob_list = entity_pairs.tolist(), probs.tolist()
        return [RelationCandidate(tuple(bounds[pair_list[p][0]]), tuple(bounds[pair_list[p][1]]), row.relations[r],
                                  prob_list[p][r]) for p, r in hits]

"""Bi-encoders score labels a block at a time with the threshold in logit space: the entities are exactly those of
scoring all labels at once through the network's ``forward`` and thresholding sigmoid(logits), for any block size."""

import math

import pytest
import torch

from gliner_ray import GLiNER
from gliner_ray.predict.base import logit_cut
from tests.helpers.reference import TEXTS, build_reference

LABELS = ["person", "location", "organization", "date", *(f"kind {i}" for i in range(296))]  # 300


@pytest.fixture(scope="module", params=["markerV0", "marker", "token_level"])
def bi_encoder(request, tmp_path_factory, tiny_bert_dir):
    path = build_reference(tmp_path_factory.mktemp(f"blocks-{request.param}"), model_name=tiny_bert_dir,
                           labels_encoder=tiny_bert_dir, hidden_size=32, span_mode=request.param)
    return GLiNER.from_pretrained(path, device="cpu")


def unblocked(model):
    """The same predictor scoring all labels at once: per-row label vectors (B, C, D) through ``model.forward``."""

    class Unblocked(type(model)):
        def forward(self, batch, rows):
            label_vecs = torch.zeros(len(rows), max(len(r.labels) for r in rows), self.model.config.hidden_size)
            for b, row in enumerate(rows):
                label_vecs[b, : len(row.labels)] = self.encode_labels(row.labels)
            return [({}, self.model(**batch.model_inputs(), label_vecs=label_vecs))]

    copy = Unblocked.__new__(Unblocked)
    copy.__dict__.update(model.__dict__)
    return copy


@pytest.mark.parametrize("flat_ner", [True, False])
def test_label_blocks_give_the_entities_of_one_pass(bi_encoder, flat_ner, assert_same_entities):
    per_text = [LABELS[100:250], LABELS[::-1], LABELS[:3]]  # rows of one batch with different label sets
    texts = TEXTS[:3]
    expected = {
        labels_name: unblocked(bi_encoder).predict(texts, labels, threshold=0.5, flat_ner=flat_ner, multi_label=True)
        for labels_name, labels in (("shared", LABELS), ("per text", per_text))
    }
    assert sum(map(len, expected["shared"])) > 20
    for block in (64, 1000):  # 300 labels: blocks of 64, and one block larger than the label count
        bi_encoder.label_block = block
        for name, labels in (("shared", LABELS), ("per text", per_text)):
            got = bi_encoder.predict(texts, labels, threshold=0.5, flat_ner=flat_ner, multi_label=True)
            assert_same_entities(got, expected[name], tol=1e-5)
            assert [[(e["start"], e["end"], e["label"]) for e in doc] for doc in got] == [
                [(e["start"], e["end"], e["label"]) for e in doc] for doc in expected[name]]  # same order too


def test_logit_cut_keeps_every_logit_whose_sigmoid_passes():
    logits = torch.linspace(-20, 20, 400_001)
    for threshold in (1e-6, 0.1, 0.5, 0.9, 0.999, 1 - 1e-7):
        passes = torch.sigmoid(logits) > threshold
        assert bool((logits[passes] > logit_cut(threshold)).all())
        if threshold <= 0.999:  # a few float32 steps below the threshold: barely below log(t / (1 - t))
            assert logit_cut(threshold) > math.log(threshold / (1 - threshold)) - 1e-3

"""Relation extraction (relex) checkpoints, built and saved by the reference ``gliner`` library on MiniLM, load
strictly in ours and give the same entities and the same relations, score by score; what we save, it loads."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from gliner_ray import GLiNER
from gliner_ray.checkpoint import CONFIG_FILE
from gliner_ray.predict import RelexGLiNER
from tests.helpers.reference import TEXTS, build_relex

LABELS = ["person", "location", "organization", "date"]
RELATIONS = ["works for", "located in", "born in"]
# (relations_layer, scale of the pair FFN's last weights, adjacency threshold, relation threshold, saved as
# safetensors): random heads spread so that each mode finds relations between decoded entities.
MODES = [("dot", 20.0, 0.5, 0.5, True), ("mlp", 40.0, 0.2, 0.05, False), ("none", 40.0, 0.5, 0.5, True)]


def relation_key(relation):
    head, tail = relation["head"], relation["tail"]
    return (head["start"], head["end"], head["label"], tail["start"], tail["end"], tail["label"], relation["relation"])


def assert_same_relations(got, expected, tol=1e-4):
    """Ours against the reference's (whose head and tail carry ``type`` where ours carry ``label``)."""
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected):
        theirs = [{**r, "head": {**r["head"], "label": r["head"]["type"]},
                   "tail": {**r["tail"], "label": r["tail"]["type"]}} for r in theirs]
        assert sorted(map(relation_key, mine)) == sorted(map(relation_key, theirs))
        by_key = {relation_key(r): r for r in theirs}
        for r in mine:
            assert r["head"]["text"] == by_key[relation_key(r)]["head"]["text"]
            assert abs(r["score"] - by_key[relation_key(r)]["score"]) < tol


@pytest.fixture(scope="module")
def relex_dirs(tmp_path_factory, minilm_dir):
    return {mode: build_relex(tmp_path_factory.mktemp(f"relex-{mode}"), mode, scale, minilm_dir, safetensors)
            for mode, scale, _, _, safetensors in MODES}


@pytest.mark.parametrize("mode,scale,adjacency,relation_threshold,safetensors", MODES)
def test_relex_checkpoints_give_the_references_entities_and_relations(relex_dirs, mode, scale, adjacency,
                                                                      relation_threshold, safetensors,
                                                                      assert_same_entities):
    from gliner import GLiNER as ReferenceGLiNER

    path = relex_dirs[mode]
    assert (path / ("model.safetensors" if safetensors else "pytorch_model.bin")).is_file()
    reference = ReferenceGLiNER.from_pretrained(str(path), map_location="cpu")
    ours = GLiNER.from_pretrained(path, device="cpu")
    assert isinstance(ours, RelexGLiNER)
    options = dict(threshold=0.5, adjacency_threshold=adjacency, relation_threshold=relation_threshold)
    expected_entities, expected_relations = reference.inference(TEXTS, LABELS, relations=RELATIONS, **options)
    # The reference scores every pair; these random heads take about half of all spans as entities, so their
    # windows hold far more pairs than the default cap (test_relation_pairs_are_capped_per_window_and_counted).
    entities, relations = ours.predict_relations(TEXTS, LABELS, RELATIONS, max_pairs=None, **options)
    assert_same_entities(entities, expected_entities)
    assert_same_relations(relations, expected_relations)
    assert sum(map(len, relations)) >= 3, "the comparison must involve real relations"
    for text, text_relations in zip(TEXTS, relations):
        for r in text_relations:
            assert text[r["head"]["start"] : r["head"]["end"]] == r["head"]["text"]
    # Entities alone (the prompt still carries its empty relation part, as the reference lays it out).
    assert_same_entities(ours.predict(TEXTS, LABELS), reference.inference(TEXTS, LABELS, return_relations=False))


def test_relex_save_round_trip_loads_in_the_reference(relex_dirs, tmp_path):
    from gliner import GLiNER as ReferenceGLiNER

    ours = GLiNER.from_pretrained(relex_dirs["dot"], device="cpu")
    ours.save_pretrained(tmp_path / "ours")
    reference = ReferenceGLiNER.from_pretrained(str(tmp_path / "ours"), map_location="cpu")
    assert type(reference.model).__name__ == "UniEncoderSpanRelexModel"
    _, expected = reference.inference(TEXTS, LABELS, relations=RELATIONS, threshold=0.5)
    assert_same_relations(GLiNER.from_pretrained(tmp_path / "ours").predict_relations(TEXTS, LABELS, RELATIONS,
                                                                                  max_pairs=None)[1],
                          expected)


def test_relex_loading_is_strict_and_unknown_relation_layers_are_refused_by_name(relex_dirs, tmp_path):
    path = tmp_path / "broken"
    shutil.copytree(relex_dirs["dot"], path)
    state = load_file(path / "model.safetensors")
    del state["pair_rep_layer.3.bias"]
    save_file(state, path / "model.safetensors")
    with pytest.raises(ValueError, match=r"missing \['pair_rep_layer.3.bias'\]"):
        GLiNER.from_pretrained(path)
    for key, value in [("relations_layer", "gcn"), ("triples_layer", "distmult")]:
        variant = tmp_path / f"variant-{key}"
        shutil.copytree(relex_dirs["dot"], variant)
        config = json.loads((variant / CONFIG_FILE).read_text())
        config[key] = value
        (variant / CONFIG_FILE).write_text(json.dumps(config))
        with pytest.raises(ValueError, match=f"{key}={value!r}"):
            GLiNER.from_pretrained(variant)


def test_relations_of_a_long_text_are_found_across_windows_and_kept_once(relex_dirs):
    """A text cut into overlapping windows: a pair scored in several windows is kept once, with its best score,
    and only between decoded entities."""
    ours = GLiNER.from_pretrained(relex_dirs["none"], device="cpu")
    ours.config.max_len = 30  # windows of 30 words overlapping by 24: most pairs are scored in several
    words = " ".join([TEXTS[0]] * 3).split()
    rows = ours.prompt_tokenizer.rows(0, words, tuple(LABELS), 30, ours.config.max_width, tuple(RELATIONS))
    assert len(rows) >= 3
    candidates = [c for row_candidates in ours.score_relation_rows(rows, 0.5)[1] for c in row_candidates]
    entities, relations = ours.predict_relations_words([words], LABELS, RELATIONS)
    kept = {((r.head.start, r.head.end), (r.tail.start, r.tail.end), r.relation): r.score for r in relations[0]}
    assert len(kept) == len(relations[0]) > 0
    bounds = {(e.start, e.end) for e in entities[0]}
    best = {}
    for c in candidates:
        if c.head in bounds and c.tail in bounds:
            best[(c.head, c.tail, c.relation)] = max(best.get((c.head, c.tail, c.relation), 0.0), c.score)
    assert kept == best
    assert len(candidates) > len(best), "some pairs must have been scored in more than one window"


def test_relation_types_for_a_model_without_relations_are_a_clear_error(tiny_gliner_dir):
    tiny = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")
    assert not hasattr(tiny, "predict_relations")
    with pytest.raises(ValueError, match="relex"):
        tiny.prompt_tokenizer.prompt_token_ids(["person"], ["works for"])


def test_the_predict_command_prints_relations_and_refuses_them_for_entity_only_models(relex_dirs, tiny_gliner_dir,
                                                                                       capsys):
    from gliner_ray.cli import main

    assert main(["predict", "--model", str(relex_dirs["none"]), "--labels", ",".join(LABELS),
                 "--relations", ",".join(RELATIONS), TEXTS[0]]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = GLiNER.from_pretrained(relex_dirs["none"], device="cpu").predict_relations(TEXTS[0], LABELS, RELATIONS)
    assert (printed["entities"], printed["relations"]) == (expected[0][0], expected[1][0]) and printed["relations"]
    assert main(["predict", "--model", tiny_gliner_dir, "--labels", "person", "--relations", "works for", "Ada"]) != 0
    assert "--relations needs a relation extraction" in capsys.readouterr().err


def test_best_pairs_keeps_the_pairs_of_the_best_entities():
    from gliner_ray.models.relex import best_pairs

    scores = torch.tensor([0.6, 0.9, 0.7, 0.8])  # entity ranks: 1 first, then 3, 2, 0
    pairs = (~torch.eye(4, dtype=torch.bool)).nonzero()
    assert best_pairs(pairs, scores, 2).tolist() == [[1, 3], [3, 1]]
    assert best_pairs(pairs, scores, 5).tolist() == [[1, 2], [1, 3], [2, 1], [3, 1], [3, 2]]  # not yet 2 -> 3
    assert best_pairs(pairs, scores, 12).tolist() == pairs.tolist()


def test_relation_pairs_are_capped_per_window_and_counted(relex_dirs):
    """At most ``max_pairs`` entity pairs per window are scored; those left out are counted, never silent."""
    ours = GLiNER.from_pretrained(relex_dirs["none"], device="cpu")
    words = TEXTS[0].split()
    rows = ours.prompt_tokenizer.rows(0, words, tuple(LABELS), 384, ours.config.max_width, tuple(RELATIONS))
    all_pairs = ours.score_relation_rows(rows, 0.5, max_pairs=None)[1][0]
    assert ours.dropped_pairs == 0
    assert len(rows) == 1
    capped = ours.score_relation_rows(rows, 0.5, max_pairs=6)[1][0]
    num_pairs = ours.dropped_pairs + 6  # the window's pairs: those scored and those left out
    assert len({(c.head, c.tail) for c in capped}) <= 6 < len({(c.head, c.tail) for c in all_pairs})
    scores = {(c.head, c.tail, c.relation): c.score for c in all_pairs}
    assert ours.dropped_pairs > 0 and capped
    assert all(abs(scores[(c.head, c.tail, c.relation)] - c.score) < 1e-5 for c in capped)  # fewer pairs: rounding
    # A cap the window does not reach changes nothing.
    dropped = ours.dropped_pairs
    assert ours.score_relation_rows(rows, 0.5, max_pairs=num_pairs)[1][0] == all_pairs and ours.dropped_pairs == dropped

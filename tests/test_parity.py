"""Checkpoints built and saved by the reference ``gliner`` library load in ours and predict the same entities and
scores, for both config generations, both span modes, safetensors and pickle weights; and the reverse."""

import json
import shutil
from pathlib import Path

import pytest

from gliner_ray import GLiNER
from tests.helpers.reference import TEXTS, build_reference_checkpoint

LABELS = ["person", "location", "organization", "date", "city"]
OLD_CONFIG_KEYS = ("model_name", "name", "max_width", "hidden_size", "dropout", "fine_tune", "subtoken_pooling",
                   "span_mode", "max_types", "max_len")


def as_old_generation(new_dir: Path, old_dir: Path) -> Path:
    """The gliner_small-v2.1-era layout: a bare config (plus training arguments), weights, no tokenizer files."""
    old_dir.mkdir()
    full = json.loads((new_dir / "gliner_config.json").read_text())
    old = {key: full[key] for key in OLD_CONFIG_KEYS}
    old.update(lr_encoder="1e-5", lr_others="5e-5", train_data="data/pile-ner.json", num_steps=30000)
    (old_dir / "gliner_config.json").write_text(json.dumps(old))
    for name in ("pytorch_model.bin", "model.safetensors"):
        if (new_dir / name).exists():
            shutil.copy(new_dir / name, old_dir / name)
    return old_dir


def compare_with_reference(checkpoint_dir, assert_same_entities, threshold=0.5):
    from gliner import GLiNER as ReferenceGLiNER

    reference = ReferenceGLiNER.from_pretrained(str(checkpoint_dir), map_location="cpu")
    ours = GLiNER.from_pretrained(checkpoint_dir, device="cpu")
    found = 0
    for flat_ner, multi_label in [(True, False), (False, False), (True, True), (False, True)]:
        expected = reference.inference(TEXTS, LABELS, threshold=threshold, flat_ner=flat_ner, multi_label=multi_label)
        got = ours.predict(TEXTS, LABELS, threshold=threshold, flat_ner=flat_ner, multi_label=multi_label)
        assert_same_entities(got, expected)
        found += sum(map(len, got))
    assert found > 10, "the comparison must involve real entities"


@pytest.fixture(scope="module")
def minilm_reference(tmp_path_factory, minilm_dir):
    return build_reference_checkpoint(minilm_dir, tmp_path_factory.mktemp("ref-minilm"), hidden_size=512)


@pytest.mark.parametrize("generation", ["new", "old"])
def test_minilm_checkpoint_parity(minilm_reference, generation, tmp_path, assert_same_entities):
    path = minilm_reference if generation == "new" else as_old_generation(minilm_reference, tmp_path / "old")
    compare_with_reference(path, assert_same_entities)


@pytest.mark.parametrize("span_mode,safetensors", [("markerV0", True), ("marker", False)])
@pytest.mark.parametrize("generation", ["new", "old"])
def test_tiny_bert_checkpoint_parity(tiny_bert_dir, tmp_path, span_mode, safetensors, generation, assert_same_entities):
    path = build_reference_checkpoint(tiny_bert_dir, tmp_path / "ref", hidden_size=32, span_mode=span_mode,
                                      safetensors=safetensors)
    if generation == "old":
        path = as_old_generation(path, tmp_path / "old")
    compare_with_reference(path, assert_same_entities)


def test_reference_library_loads_what_we_save(minilm_reference, tmp_path, assert_same_entities):
    from gliner import GLiNER as ReferenceGLiNER

    ours = GLiNER.from_pretrained(minilm_reference, device="cpu")
    ours.save_pretrained(tmp_path / "ours")
    assert (tmp_path / "ours" / "model.safetensors").is_file()
    reference = ReferenceGLiNER.from_pretrained(str(tmp_path / "ours"), map_location="cpu")
    expected = reference.inference(TEXTS, LABELS, threshold=0.5, flat_ner=False)
    assert_same_entities(ours.predict(TEXTS, LABELS, flat_ner=False), expected)
    assert_same_entities(GLiNER.from_pretrained(tmp_path / "ours").predict(TEXTS, LABELS, flat_ner=False), expected)

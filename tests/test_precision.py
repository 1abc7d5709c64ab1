"""Model precisions: what the hardware does natively, clear refusals naming the alternative, and bf16
predictions that agree with fp32 on a real encoder. Also the word cache of the prompt tokenizer."""

from __future__ import annotations

import pytest
import torch

from gliner_ray import GLiNER
from gliner_ray.precision import bf16_native, inference_dtype

TEXTS = ["Ada Lovelace met Charles Babbage in London in 1833.", "IBM opened a lab near Zurich, said Grace Hopper."]
LABELS = ["person", "organization", "location", "date"]


def test_precision_names_resolve_or_are_refused_with_the_alternative():
    cpu = torch.device("cpu")
    assert inference_dtype(None, cpu) == inference_dtype("fp32", cpu) == torch.float32
    assert inference_dtype("auto", cpu) == (torch.bfloat16 if bf16_native(cpu) else torch.float32)
    with pytest.raises(ValueError, match="fp16 needs a GPU.*use (bf16|fp32)"):
        inference_dtype("fp16", cpu)
    with pytest.raises(ValueError, match="must be one of auto, bf16, fp16, fp32"):
        inference_dtype("fp8", cpu)
    if bf16_native(cpu):
        assert inference_dtype(torch.bfloat16, cpu) == torch.bfloat16
    else:
        with pytest.raises(ValueError, match="bf16 is not native.*use fp32"):
            inference_dtype("bf16", cpu)


@pytest.mark.skipif(not bf16_native(torch.device("cpu")), reason="this CPU has no native bf16")
def test_bf16_finds_the_entities_of_fp32_on_minilm(minilm_dir, tmp_path):
    torch.manual_seed(0)
    GLiNER.from_backbone(minilm_dir, hidden_size=64, device="cpu").save_pretrained(tmp_path / "model")
    fp32 = GLiNER.from_pretrained(tmp_path / "model", device="cpu")
    bf16 = GLiNER.from_pretrained(tmp_path / "model", device="cpu", dtype="bf16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    rows = [r for i, t in enumerate(TEXTS) for r in fp32.prompt_tokenizer.rows(i, t.split(), LABELS, 384, 12)]
    exact = [s for spans in fp32.score_rows(rows, 1e-6) for s in spans]
    rounded = {(s.start, s.end, s.label): s.score for spans in bf16.score_rows(rows, 1e-6) for s in spans}
    assert len(exact) > 100
    # bf16 keeps 8 bits of mantissa: probabilities agree to a few hundredths, never more
    assert max(abs(s.score - rounded[(s.start, s.end, s.label)]) for s in exact) < 0.05


def test_cli_refuses_an_impossible_precision(tiny_gliner_dir, capsys):
    from gliner_ray.cli import main

    # in this process (tests/test_cli.py runs the command as a subprocess): an uncaught error would raise here
    command = ["predict", "--model", tiny_gliner_dir, "--labels", "person", "--precision", "fp16", "Alice met Bob."]
    assert main(command) == 2
    assert "fp16 needs a GPU" in capsys.readouterr().err


def test_the_word_cache_gives_the_tokenizers_own_ids(tiny_gliner_dir):
    tokenizer = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu").prompt_tokenizer
    assert tokenizer.context_free  # WordPiece splits a word the same way wherever it stands
    words = "Tokenizers split state-of-the-art words , and words again : unbelievably ..".split()
    direct = tokenizer._tokenize(words)
    assert tokenizer.word_token_ids(words[:4]) == direct[:4]  # fills the cache
    assert tokenizer.word_token_ids(words) == direct  # half from the cache
    text = tokenizer.tokenize(words)
    assert text.tokens.tolist() == [i for ids in direct for i in ids]
    assert [text.tokens[a:b].tolist() for a, b in zip(text.offsets, text.offsets[1:])] == direct

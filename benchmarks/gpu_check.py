"""The GPU paths, checked and measured on one CUDA device (run by benchmarks/gpu_check.sh; ``--device cpu``
runs the same code on a CPU, small, to check the script itself).

1. CUDA fp32 finds the entities CPU fp32 finds, with the same scores (to 1e-3).
2. bf16 and fp16 (each where the device does it natively) against fp32: entity F1 and the largest score change.
3. Speed per model and precision: texts/s, tokens/s and the encoder's achieved TFLOP/s against the device's
   measured matmul peak in that precision, for GLiNER on MiniLM-L6 and on random DeBERTa-v3 encoders of the
   small and base dimensions (built from a config with a sentencepiece model trained here: no download).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from _common import EncoderMeter, argument_parser, matmul_peak, minilm, random_sentences, sync

import torch

from gliner_ray import GLiNER  # noqa: E402
from gliner_ray.precision import inference_dtype  # noqa: E402

LABELS = ["person", "organization", "location", "date", "product", "event", "language", "work of art"]
DEBERTA = {"deberta-v3-small": (768, 6, 12, 3072), "deberta-v3-base": (768, 12, 12, 3072)}  # width, layers, heads, ffn


def texts(count: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    sentences = random_sentences(4 * count, seed)
    out = []
    for _ in range(count):
        text = []
        while len(text) < words:
            text += rng.choice(sentences).split()
        out.append(" ".join(text[:words]))
    return out


def deberta_encoder(directory: Path, dims: tuple[int, int, int, int]) -> str:
    """A random DeBERTa-v2/v3 encoder of these dimensions, with a sentencepiece model trained on random text."""
    import sentencepiece as spm
    from transformers import DebertaV2Config, DebertaV2Model, DebertaV2Tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(random_sentences(3000, seed=1)), model_prefix=str(directory / "spm"), vocab_size=400,
        model_type="unigram", pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]",
        eos_piece="[SEP]", unk_piece="[UNK]", user_defined_symbols=["[MASK]"], hard_vocab_limit=False, minloglevel=2,
    )
    tokenizer = DebertaV2Tokenizer.from_pretrained(directory)
    width, layers, heads, ffn = dims
    config = DebertaV2Config(
        vocab_size=len(tokenizer), hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ffn, max_position_embeddings=512, relative_attention=True, pos_att_type=["p2c", "c2p"],
        position_biased_input=False, position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
    )
    DebertaV2Model(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def checkpoint(directory: Path, encoder: str) -> str:
    torch.manual_seed(0)
    model = GLiNER.from_backbone(encoder, device="cpu")
    with torch.no_grad():
        model.model.type_ffn[3].weight.mul_(20.0)  # spread the random scores: confident entities to compare
    model.save_pretrained(directory)
    return str(directory)


def entities(predicted: list[list[dict]]) -> dict[tuple, float]:
    return {(i, e["start"], e["end"], e["label"]): e["score"] for i, found in enumerate(predicted) for e in found}


def f1(got: dict, expected: dict) -> float:
    both = len(got.keys() & expected.keys())
    return 1.0 if not got and not expected else 2 * both / (len(got) + len(expected))


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--words", type=int, default=120, help="words per text")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", default="minilm,deberta-v3-small,deberta-v3-base")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device (pass --device cpu to check the script on a CPU)")
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    print(f"device: {args.device} ({name}); torch {torch.__version__}; {args.texts} texts of {args.words} words, "
          f"{len(LABELS)} labels, batch {args.batch_size}")
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    corpus = texts(args.texts, args.words)
    peaks: dict[str, float] = {}
    for model_name in args.models.split(","):
        if model_name == "minilm":
            encoder = minilm()
        else:
            encoder = deberta_encoder(work / model_name / "encoder", DEBERTA[model_name])
        path = checkpoint(work / model_name / "gliner", encoder)
        fp32 = GLiNER.from_pretrained(path, device=args.device)
        fp32.predict(corpus[:8], LABELS, threshold=args.threshold)
        reference = entities(fp32.predict(corpus, LABELS, threshold=args.threshold, batch_size=args.batch_size))
        if args.device != "cpu":
            cpu = entities(GLiNER.from_pretrained(path, device="cpu").predict(corpus[:64], LABELS, threshold=args.threshold))
            device_64 = {k: v for k, v in reference.items() if k[0] < 64}
            worst = max((abs(cpu[k] - device_64[k]) for k in cpu.keys() & device_64.keys()), default=0.0)
            print(f"{model_name}: {args.device} fp32 vs CPU fp32 on 64 texts: same entities {cpu.keys() == device_64.keys()} "
                  f"({len(cpu)}), largest score difference {worst:.2e}")
        for precision in ("fp32", "bf16", "fp16"):
            try:
                dtype = inference_dtype(precision, args.device)
            except ValueError as refused:
                print(f"{model_name} {precision}: skipped ({refused})")
                continue
            model = fp32 if precision == "fp32" else GLiNER.from_pretrained(path, device=args.device, dtype=dtype)
            model.predict(corpus[:8], LABELS, threshold=args.threshold)
            meter = EncoderMeter(model.model.encoder)
            sync(args.device)
            start = time.perf_counter()
            found = entities(model.predict(corpus, LABELS, threshold=args.threshold, batch_size=args.batch_size))
            sync(args.device)
            seconds = time.perf_counter() - start
            tokens = sum(len(model.prompt_tokenizer.tokenize(t.split()).tokens) for t in corpus)
            if precision not in peaks:
                peaks[precision] = matmul_peak(args.device, dtype, 8192 if args.device != "cpu" else 1024)
            achieved = meter.flops / seconds
            common = found.keys() & reference.keys()
            worst = max((abs(found[k] - reference[k]) for k in common), default=0.0)
            print(f"{model_name} {precision}: {len(corpus) / seconds:8.1f} texts/s {tokens / seconds:10,.0f} tokens/s  "
                  f"encoder {achieved / 1e12:6.2f} TFLOP/s over the whole predict = {achieved / peaks[precision]:5.1%} "
                  f"of measured {precision} matmul ({peaks[precision] / 1e12:.1f} TFLOP/s); entity F1 vs fp32 "
                  f"{f1(found, reference):.4f} ({len(found)} entities), largest score change {worst:.3f}")
            del model
        del fp32
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()

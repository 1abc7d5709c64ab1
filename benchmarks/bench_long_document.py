"""Peak memory of a model actor on one very long document against a short one, side by side in one run:

    python benchmarks/bench_long_document.py /work/shared/data/crossner/ai/dev.txt --words 1000000

Each corpus is one JSON Lines shard holding a single document made of the file's sentences repeated, read by one
actor (``--actors 1``). A GLiNER on a tiny random 2-layer BERT (MiniLM's tokenizer) keeps the run short: the
memory that grows with a document's length is the text, its words and windows, and the candidates, not the
encoder. Prints the peak resident memory (VmHWM) of the actor for both lengths and their ratio.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from _common import LABELS, PeakMemory, argument_parser, local_ray, read_sentences, tiny_bert


def one_document(sentences: list[str], words: int) -> str:
    text, count, i = [], 0, 0
    while count < words:
        text.append(sentences[i % len(sentences)])
        count += len(sentences[i % len(sentences)].split())
        i += 1
    return " ".join(text)


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("sentences", help="a BIO-column file, e.g. /work/shared/data/crossner/ai/dev.txt")
    parser.add_argument("--words", type=int, default=1_000_000, help="words of the long document")
    parser.add_argument("--short-words", type=int, default=10_000, help="words of the short document")
    # A random span head scores about half of all spans over 0.5: at that threshold the candidates (words x 12
    # widths x labels / 2) dominate memory, which a trained model never produces. 0.95 keeps a trained model's few.
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()

    import torch

    from gliner_ray import GLiNER
    from gliner_ray.extract import Scale, Settings, extract

    work = Path(tempfile.mkdtemp(prefix="bench-long-"))
    torch.manual_seed(0)
    bert = tiny_bert(work / "bert", layers=2, width=32, heads=2, ffn=64)
    GLiNER.from_backbone(bert, hidden_size=32, device="cpu").save_pretrained(work / "model")

    local_ray(2)
    sentences = read_sentences(args.sentences)
    results = {}
    for name, words in (("short", args.short_words), ("long", args.words)):
        corpus = work / name
        corpus.mkdir()
        text = one_document(sentences, words)
        (corpus / "doc.jsonl").write_text(json.dumps({"id": name, "text": text}) + "\n", encoding="utf-8")
        settings = Settings(model=str(work / "model"), labels=tuple(LABELS), threshold=args.threshold)
        with PeakMemory() as memory:
            start = time.perf_counter()
            summary = extract(str(corpus), str(work / f"out-{name}"), settings, Scale(actors=(1, 1), batch_size=8))
            seconds = time.perf_counter() - start
        results[name] = (len(text.split()), len(text), memory.max_mib, seconds, summary["mentions"])
    for name, (words, chars, peak, seconds, mentions) in results.items():
        print(f"{name}: {words} words ({chars / 2**20:.1f} MiB of text), peak actor RSS {peak:.0f} MiB, {seconds:.0f} s, {mentions} mentions")
    print(f"long/short: {results['long'][0] / results['short'][0]:.0f}x the words, "
          f"{results['long'][2] / results['short'][2]:.2f}x the peak actor memory")


if __name__ == "__main__":
    main()

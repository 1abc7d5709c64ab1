"""Run a job on a three-node Ray cluster simulated on this machine (``ray.cluster_utils.Cluster``: a head
without CPUs and two one-CPU worker nodes, own temp dir, random ports on 127.0.0.1), and kill a worker node (its
raylet and every worker on it, no goodbye) mid-run; a fresh node joins, as a spot instance's replacement would.
Run as its own process, so the test session's cluster is never touched:

    python tests/node_loss.py extract TEMP_DIR CORPUS OUTPUT MODEL LABELS THRESHOLD

extract kills a node once the first shard is published. Prints one JSON line: the result and the number of
nodes killed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path


def start_cluster(temp_dir: str):
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "temp_dir": temp_dir, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    return cluster, workers


def kill_when(condition, cluster, node, killed: list) -> threading.Thread:
    """A thread that kills ``node`` once ``condition()`` holds, then adds a fresh one-CPU node."""

    def run() -> None:
        while not condition():
            time.sleep(0.05)
        killed.append(condition())
        cluster.remove_node(node, allow_graceful=False)
        cluster.add_node(num_cpus=1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def run_extract(temp_dir: str, corpus: str, output: str, model: str, labels: str, threshold: str) -> dict:
    import ray

    from gliner_ray.pipeline import Scale, Settings, extract

    cluster, workers = start_cluster(temp_dir)
    killed: list = []
    kill_when(lambda: any((Path(output) / "_progress").glob("shard-*.json")), cluster, workers[0], killed)
    try:
        summary = extract(
            corpus, output, Settings(model=model, labels=tuple(labels.split(",")), threshold=float(threshold)),
            Scale(actors=(1, 2), chunk_size=2),
        )
    finally:
        ray.shutdown()  # the driver leaves first: Cluster refuses to remove the node a driver is connected to
        cluster.shutdown()
    return {"summary": summary, "killed": len(killed)}


if __name__ == "__main__":
    job, *arguments = sys.argv[1:]
    print(json.dumps({"extract": run_extract}[job](*arguments)))

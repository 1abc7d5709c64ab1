"""Run the extraction job on a three-node Ray cluster simulated on this machine (``ray.cluster_utils.Cluster``:
a head without CPUs and two one-CPU worker nodes, own temp dir, random ports on 127.0.0.1), and kill a worker node
(its raylet and every worker on it, no goodbye) once the first shard is published; a fresh node joins, as a spot
instance's replacement would. Run as its own process, so the test session's cluster is never touched:

    python tests/node_loss.py CORPUS OUTPUT MODEL LABELS THRESHOLD TEMP_DIR

Prints one JSON line: the job's summary and how many nodes were killed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path


def main(corpus: str, output: str, model: str, labels: str, threshold: str, temp_dir: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from gliner_ray.pipeline import Scale, Settings, extract

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "temp_dir": temp_dir, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    killed = []

    def kill_a_node_mid_run() -> None:
        progress = Path(output) / "_progress"
        while not any(progress.glob("shard-*.json")):
            time.sleep(0.05)
        cluster.remove_node(workers[0], allow_graceful=False)
        killed.append(workers[0].node_id)
        cluster.add_node(num_cpus=1)

    killer = threading.Thread(target=kill_a_node_mid_run, daemon=True)
    killer.start()
    try:
        summary = extract(
            corpus, output, Settings(model=model, labels=tuple(labels.split(",")), threshold=float(threshold)),
            Scale(actors=(1, 2), chunk_size=2),
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps({"summary": summary, "killed": len(killed)}))


if __name__ == "__main__":
    main(*sys.argv[1:])

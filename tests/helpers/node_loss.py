"""Run a job on a three-node Ray cluster simulated on this machine (``ray.cluster_utils.Cluster``: a head
without CPUs and two one-CPU worker nodes, own temp dir, random ports on 127.0.0.1), and kill a worker node (its
raylet and every worker on it, no goodbye) mid-run; a fresh node joins, as a spot instance's replacement would.
Run as its own process, so the test session's cluster is never touched; the jobs given run one after the other
on the same cluster (one cluster start for all):

    python -m tests.helpers.node_loss TEMP_DIR [extract CORPUS OUTPUT MODEL LABELS THRESHOLD] [train OUTPUT BACKBONE STEPS]

extract kills a node once the first shard is published; train kills the node of the (one) Ray Train worker once
a checkpoint of step 2 or later is registered. Prints one JSON line: per job, its result and what was killed.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any


def start_cluster(temp_dir: str):
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "temp_dir": temp_dir, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    return cluster


def run_losing_a_node(job, condition, cluster, choose_node) -> tuple[Any, Any]:
    """Run ``job()`` in a thread; once ``condition()`` returns something true, kill the node ``choose_node()``
    names and add a fresh one-CPU node. The killing is done here, in the main thread, because a new node
    registers signal handlers, which only the main thread may. Returns the job's result and what
    ``condition()`` returned (a false value if the job ended first)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = job()
        except BaseException as error:  # re-raised in the main thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    held = None
    while thread.is_alive() and not (held := condition()):
        time.sleep(0.05)
    if held:
        cluster.remove_node(choose_node(), allow_graceful=False)
        cluster.add_node(num_cpus=1)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], held


def run_extract(cluster, corpus: str, output: str, model: str, labels: str, threshold: str) -> dict:
    from gliner_ray.extract import Scale, Settings, extract

    summary, killed = run_losing_a_node(
        lambda: extract(corpus, output, Settings(model=model, labels=tuple(labels.split(",")), threshold=float(threshold)),
                        Scale(actors=(1, 2), chunk_size=2)),
        lambda: any((Path(output) / "_progress").glob("shard-*.json")), cluster, lambda: next(iter(cluster.worker_nodes)),
    )
    return {"summary": summary, "killed": int(killed)}


def run_train(cluster, output: str, backbone: str, steps: str) -> dict:
    import ray._private.state

    from gliner_ray.training import train
    from tests.helpers.training import metrics_of, registered_checkpoint_step, synthetic_task, tiny_settings

    def worker_node():
        """The node the Ray Train worker runs on (the head has no CPUs, so never the head)."""
        (node_id,) = {a["Address"]["NodeID"] for a in ray._private.state.actors().values()
                      if a["ActorClassName"] == "RayTrainWorker" and a["State"] == "ALIVE"}
        return next(node for node in cluster.worker_nodes if node.node_id == node_id)

    settings = tiny_settings(output, backbone, workers=1, cpus_per_worker=1, steps=int(steps), log_every=1,
                             checkpoint_every=2)
    _, killed = run_losing_a_node(
        lambda: train(synthetic_task(1, 200), [], settings),
        lambda: (step := registered_checkpoint_step(output)) >= 2 and {"after_checkpoint": step}, cluster, worker_node,
    )
    return {"killed": killed, "records": metrics_of(output)}


JOBS = {"extract": (run_extract, 5), "train": (run_train, 3)}  # job -> (function, number of arguments)


if __name__ == "__main__":
    import ray

    temp_dir, *rest = sys.argv[1:]
    os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.2"  # Ray Train takes one report per poll (default 2 s)
    cluster = start_cluster(temp_dir)
    results = {}
    try:
        while rest:
            job, (run, count) = rest[0], JOBS[rest[0]]
            results[job] = run(cluster, *rest[1:1 + count])
            rest = rest[1 + count:]
    finally:
        ray.shutdown()  # the driver leaves first: Cluster refuses to remove the node a driver is connected to
        cluster.shutdown()
    print(json.dumps(results))

"""``ray job submit`` as the README says, against a real head node (``ray start --head``, dashboard and job API on
127.0.0.1, token authentication): an extraction job, then a kg job on its output, then a bad job that must fail
with exit code 1 and our message. The head has its own temp dir, ports, ``HOME`` (so its token file is its own)
and environment; the test process's environment and the suite's local cluster are never touched, and the head's
processes are stopped by id, whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from tests.helpers import REPO

RAY = str(Path(sys.executable).parent / "ray")
HEAD_MARKER = "GLINER_RAY_TEST_HEAD"  # in the environment of every process of the head, to stop them by id
# Variables that would point a Ray client or the head somewhere else; never passed on, never set here.
RAY_CLIENT_VARIABLES = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
                        "RAY_AUTH_TOKEN_PATH")


@dataclass
class Head:
    job_api: str  # http://127.0.0.1:PORT, what `ray job submit --address` takes
    token: str  # from the head's token file: what a client needs with RAY_AUTH_MODE=token
    temp_dir: str


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any Ray address or token, plus ``extra``; ``python`` is this venv's."""
    env = {k: v for k, v in os.environ.items() if k not in RAY_CLIENT_VARIABLES}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def head_processes(temp_dir: str) -> list[psutil.Process]:
    """The processes started for the head at ``temp_dir``: the marker is in their environment, which its job
    drivers and workers inherit."""
    processes = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(HEAD_MARKER) == temp_dir:
                processes.append(process)
    return processes


def stop_head(temp_dir: str) -> None:
    """Terminate (then kill) the head's processes, by id: ``ray stop`` would stop every Ray on the machine. The
    GCS goes last: terminated at the same time, the raylet and the autoscaler's monitor outlive 15 s waiting for it."""
    processes = head_processes(temp_dir)
    names = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            names[process.pid] = process.name()
    gcs = [process for process in processes if names.get(process.pid) == "gcs_server"]
    alive = []
    for group in ([process for process in processes if process not in gcs], gcs):
        for process in group:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        alive += psutil.wait_procs(group, timeout=15)[1]
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


@contextlib.contextmanager
def ray_head():
    """A head node with the job API on 127.0.0.1 and token authentication on, started as the README says
    (``ray get-auth-token --generate``, then ``RAY_AUTH_MODE=token ray start --head``), stopped on the way out."""
    temp_dir = tempfile.mkdtemp(prefix="rayh-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    home = Path(temp_dir) / "home"
    home.mkdir()
    ports = free_ports(10)
    while any(ports[-1] <= port <= ports[-1] + 200 for port in ports[:-1]):  # Ray refuses a worker range holding one
        ports = free_ports(10)
    (gcs, dashboard, client, node_manager, object_manager, agent_listen, agent_grpc, runtime_env, metrics,
     first_worker) = ports
    env = clean_environment(HOME=str(home), RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0",
                            HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **{HEAD_MARKER: temp_dir},
                            RAY_gcs_server_port_wait_time_s="120")  # a loaded CI machine: ~20 s is too short
    try:
        # `ray start --head` with token authentication needs a token: the user's one-time step, here in its HOME.
        subprocess.run([RAY, "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
        started = subprocess.run([
            RAY, "start", "--head", f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1", f"--port={gcs}",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
            f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}",
            f"--dashboard-agent-listen-port={agent_listen}", f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
            f"--min-worker-port={first_worker}", f"--max-worker-port={min(first_worker + 200, 65535)}",
            "--num-cpus=2", "--object-store-memory=200000000", "--disable-usage-stats",
        ], env=env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        token = (home / ".ray" / "auth_token").read_text().strip()  # the head's own token file
        yield Head(f"http://127.0.0.1:{dashboard}", token, temp_dir)
    finally:
        stop_head(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def submit(head: Head, *command: str, token: bool = True, home: Path | None = None) -> subprocess.CompletedProcess:
    """``ray job submit --address JOB_API --working-dir . -- python COMMAND`` from the repository root, as the
    README says: with ``RAY_AUTH_MODE=token`` and the head's token, or with neither (and an empty ``HOME``)."""
    env = clean_environment(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=head.token) if token else clean_environment(
        HOME=str(home))
    return subprocess.run(
        [RAY, "job", "submit", "--address", head.job_api, "--working-dir", ".", "--", "python", *command],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.timeout(1200)  # a head node and three jobs; fail with a message, never hang CI
@pytest.mark.slow  # a head node and three jobs: about 1 to 4 minutes depending on the machine's load
def test_extract_then_kg_jobs_on_a_head_node_and_a_bad_job_fails_with_our_message(ray_cluster, tmp_path,
                                                                                  tiny_gliner_dir):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = ["Ada Lovelace", "Alan Turing", "IBM", "Paris", "Oslo", "Grace Hopper"]
    with open(corpus / "part-0.jsonl", "w") as f:
        for i in range(12):
            f.write(json.dumps({"id": f"d{i}", "text": f"{names[i % 6]} met {names[(i + 1) % 6]} in "
                                                      f"{names[(i + 3) % 6]} in {1900 + i}."}) + "\n")
    environment_before = dict(os.environ)
    suite_cluster = ray_cluster.get_runtime_context().gcs_address

    with ray_head() as head:
        (tmp_path / "empty-home").mkdir()
        refused = submit(head, "jobs/extract.py", "--help", token=False, home=tmp_path / "empty-home")
        assert refused.returncode != 0 and "Authentication" in refused.stdout + refused.stderr

        extraction, graph = tmp_path / "extraction", tmp_path / "graph"
        job = submit(head, "jobs/extract.py", "--input", str(corpus), "--output", str(extraction),
                     "--model", tiny_gliner_dir, "--labels", "person,organization,location", "--threshold", "0.3",
                     "--actors", "1")
        assert job.returncode == 0, job.stdout[-5000:] + job.stderr[-3000:]
        assert "succeeded" in job.stdout
        mentions = pq.read_table(extraction / "mentions")
        assert json.loads((extraction / "_SUCCESS").read_text())["mentions"] == mentions.num_rows
        assert mentions.num_rows > 0 and set(mentions["doc_id"].to_pylist()) <= {f"d{i}" for i in range(12)}

        job = submit(head, "jobs/build_kg.py", "--mentions", str(extraction), "--output", str(graph))
        assert job.returncode == 0, job.stdout[-5000:] + job.stderr[-3000:]
        summary = json.loads((graph / "_SUCCESS").read_text())
        assert summary["mentions_read"] == summary["mentions_kept"] == mentions.num_rows
        assert pq.read_table(graph / "entities").num_rows == summary["entities"] > 0
        assert pq.read_table(graph / "mention_entities").num_rows == mentions.num_rows

        bad = submit(head, "jobs/build_kg.py", "--mentions", str(tmp_path / "nowhere"), "--output",
                     str(tmp_path / "graph-2"))
        assert bad.returncode == 1
        assert "gliner-ray kg: error: --mentions" in bad.stdout and "no such file or directory" in bad.stdout
        assert not (tmp_path / "graph-2").exists()

    # The head is gone, and nothing of it leaked here: same environment, the suite's cluster still works.
    assert dict(os.environ) == environment_before
    assert head_processes(head.temp_dir) == []
    assert ray_cluster.get_runtime_context().gcs_address == suite_cluster
    assert ray_cluster.get(ray_cluster.remote(lambda: 42).remote()) == 42



def test_cluster_yaml_turns_token_authentication_on_with_the_users_token():
    import yaml

    with open(REPO / "cluster.yaml", encoding="utf-8") as f:
        cluster = yaml.safe_load(f)
    # Every node holds the token of the machine that runs `ray up`, the one `ray job submit` sends from there...
    assert cluster["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    # ...and starts Ray with token authentication: a worker without it could not join the head.
    for commands in (cluster["head_start_ray_commands"], cluster["worker_start_ray_commands"]):
        assert any("RAY_AUTH_MODE=token ray start" in command for command in commands)

"""cluster.yaml passes the Ray cluster launcher's own checks, and says what users rely on: GPU workers that scale
from zero, the rayproject/ray GPU image of the installed Ray, gliner-ray installed on every node, S3 through instance
profiles. The KubeRay example is checked for the same essentials."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
GPU_IMAGE = re.compile(r"rayproject/ray:(?P<version>[\d.]+)-py3\d+-(gpu|cu\d+)")


def launcher_check(config: dict) -> dict:
    """What `ray up` does to a config before it talks to the cloud: fill in the provider's defaults, then validate
    against ray/autoscaler/ray-schema.json plus the launcher's cross-field rules. Returns the filled-in config."""
    filled = prepare_config(copy.deepcopy(config))
    validate_config(filled)
    return filled


@pytest.fixture(scope="module")
def cluster() -> dict:
    with open(ROOT / "cluster.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def worker_types(config: dict) -> dict[str, dict]:
    return {name: spec for name, spec in config["available_node_types"].items() if name != config["head_node_type"]}


def test_cluster_yaml_passes_the_launcher_schema(cluster):
    filled = launcher_check(cluster)
    assert filled["provider"]["type"] == "aws" and filled["provider"]["region"]


def misspell_min_workers(config: dict) -> None:
    gpu = config["available_node_types"]["gpu_worker"]
    gpu["min_worker"] = gpu.pop("min_workers")


def count_gpus_in_a_string(config: dict) -> None:
    config["available_node_types"]["gpu_worker"]["resources"]["GPU"] = "1"


def keep_more_workers_than_allowed(config: dict) -> None:
    config["available_node_types"]["cpu_worker"]["min_workers"] = config["max_workers"] + 1


def name_a_missing_head_type(config: dict) -> None:
    config["head_node_type"] = "no_such_type"


@pytest.mark.parametrize(
    "breakage", [misspell_min_workers, count_gpus_in_a_string, keep_more_workers_than_allowed, name_a_missing_head_type]
)
def test_launcher_check_rejects_a_broken_copy(cluster, breakage):
    """The check above can fail: small mistakes in a copy of cluster.yaml are caught."""
    broken = copy.deepcopy(cluster)
    breakage(broken)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        launcher_check(broken)


def test_gpu_workers_scale_from_zero(cluster):
    gpu_types = {name: spec for name, spec in worker_types(cluster).items() if spec["resources"].get("GPU", 0) >= 1}
    assert gpu_types, "no worker type declares GPU in its resources"
    for name, spec in gpu_types.items():
        assert spec.get("min_workers", 0) == 0, f"{name} keeps GPU nodes running while idle"
        assert spec["max_workers"] >= 1
        run_options = cluster["docker"].get("run_options", []) + spec.get("docker", {}).get("worker_run_options", [])
        assert "--gpus all" in run_options, f"{name} starts its container without the GPUs"


def test_cpu_workers_for_preprocessing_scale_from_zero(cluster):
    cpu_types = [spec for spec in worker_types(cluster).values() if not spec["resources"].get("GPU")]
    assert cpu_types and all(spec["resources"]["CPU"] > 0 and spec.get("min_workers", 0) == 0 for spec in cpu_types)


def test_image_is_the_rayproject_gpu_image_of_the_installed_ray(cluster):
    images = {cluster["docker"]["image"]} | {
        spec["docker"]["worker_image"] for spec in cluster["available_node_types"].values()
        if "worker_image" in spec.get("docker", {})
    }
    for image in images:
        match = GPU_IMAGE.fullmatch(image)
        assert match, f"{image} is not a rayproject/ray GPU image (ray-ml images are no longer published)"
        assert match["version"] == ray.__version__, f"{image} runs Ray {match['version']}, this install has {ray.__version__}"


def test_every_node_installs_this_repository(cluster):
    """The repository root is synced to each node, and pip installs exactly that path there."""
    synced = [remote for remote, local in cluster["file_mounts"].items() if Path(local) == Path(".")]
    assert len(synced) == 1, "cluster.yaml must sync the repository root ('.') to the nodes"
    installs = [shlex.split(command) for command in cluster["setup_commands"]]
    assert any(words[:2] == ["pip", "install"] and synced[0] in words for words in installs)


def test_every_node_reads_s3_through_an_instance_profile(cluster):
    for name, spec in cluster["available_node_types"].items():
        assert spec["node_config"].get("IamInstanceProfile"), f"{name} has no IamInstanceProfile: no S3 credentials"
    text = (ROOT / "cluster.yaml").read_text(encoding="utf-8")
    assert not re.search(r"AWS_SECRET_ACCESS_KEY|aws_secret_access_key", text)


@pytest.fixture(scope="module")
def rayjob() -> dict:
    with open(ROOT / "examples" / "kuberay-rayjob.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_kuberay_rayjob_runs_the_extract_job_on_gpu_workers(rayjob):
    assert (rayjob["apiVersion"], rayjob["kind"]) == ("ray.io/v1", "RayJob")
    spec = rayjob["spec"]
    assert shlex.split(spec["entrypoint"])[:2] == ["python", "jobs/extract.py"]
    assert yaml.safe_load(spec["runtimeEnvYAML"])["working_dir"]
    cluster_spec = spec["rayClusterSpec"]
    assert cluster_spec["rayVersion"] == ray.__version__
    pods = [cluster_spec["headGroupSpec"]["template"]] + [group["template"] for group in cluster_spec["workerGroupSpecs"]]
    for pod in pods:
        for container in pod["spec"]["containers"]:
            match = GPU_IMAGE.fullmatch(container["image"])
            assert match and match["version"] == ray.__version__
    gpu_groups = [
        group for group in cluster_spec["workerGroupSpecs"]
        if any(int(c["resources"]["limits"].get("nvidia.com/gpu", 0)) >= 1 for c in group["template"]["spec"]["containers"])
    ]
    assert gpu_groups, "no worker group asks for nvidia.com/gpu"
    assert all(group["minReplicas"] == 0 for group in gpu_groups)

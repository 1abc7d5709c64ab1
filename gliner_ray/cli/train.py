"""``gliner-ray train``: its flags, and the call into the job."""

from __future__ import annotations

from ..training.driver import add_train_arguments as add_arguments, run_train as run

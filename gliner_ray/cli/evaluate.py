"""``gliner-ray evaluate``: its flags, and the call into the job."""

from __future__ import annotations

from ..evaluate import add_evaluate_arguments as add_arguments, run_evaluate as run


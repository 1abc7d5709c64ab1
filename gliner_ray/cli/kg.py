"""``gliner-ray kg``: its flags, and the call into the job."""

from __future__ import annotations

from ..kg.graph import add_kg_arguments as add_arguments, run_kg as run

"""``gliner-ray extract``: its flags, and the call into the job."""

from __future__ import annotations

from ..extract.driver import add_extract_arguments as add_arguments, run_extract as run


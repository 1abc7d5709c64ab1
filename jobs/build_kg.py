"""``ray job submit --working-dir . -- python jobs/build_kg.py ...``: the flags of ``gliner-ray kg``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the working directory's gliner_ray

from gliner_ray.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["kg", *sys.argv[1:]]))

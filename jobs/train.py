"""``ray job submit --working-dir . -- python jobs/train.py ...``: the flags of ``gliner-ray train``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the working directory's gliner_ray

from gliner_ray.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))

"""Entry point for ``ray job submit --working-dir . -- python jobs/evaluate.py --model ... --data ... --output ...``:
the flags of ``gliner-ray evaluate``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gliner_ray.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))

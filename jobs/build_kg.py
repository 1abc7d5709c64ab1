"""Build a knowledge graph from an extraction output on a Ray cluster; takes the flags of ``gliner-ray kg``:

    ray job submit --working-dir . -- python jobs/build_kg.py \
        --mentions s3://bucket/extraction --output s3://bucket/graph
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gliner_ray.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["kg", *sys.argv[1:]]))

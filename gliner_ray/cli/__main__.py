"""``python -m gliner_ray.cli``: the same as the ``gliner-ray`` command."""

import sys

from .main import main

sys.exit(main())

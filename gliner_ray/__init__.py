"""gliner-ray: open-type named entity recognition (GLiNER) at corpus scale, on Ray."""

import importlib

from .decode import Span

__all__ = ["GLiNER", "GLiNERConfig", "Span"]
__version__ = "0.1.0"

# The model exports load on first use: Ray workers that run only the data layers (kg, the extract CPU stage) unpickle
# functions from this package, and importing torch and transformers in each new worker costs seconds.
_LAZY_EXPORTS = {"GLiNER": ".predict", "GLiNERConfig": ".model"}


def __getattr__(name: str):
    if name in _LAZY_EXPORTS:
        return getattr(importlib.import_module(_LAZY_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""gliner-ray: open-type named entity recognition (GLiNER) at corpus scale, on Ray."""

from .decode import Span
from .gliner import GLiNER
from .model import GLiNERConfig

__all__ = ["GLiNER", "GLiNERConfig", "Span"]
__version__ = "0.1.0"

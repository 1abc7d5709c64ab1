"""The ``gliner-ray`` command line: ``main`` dispatches to one module of flags per command. Nothing imports cli."""

from .main import main

__all__ = ["main"]

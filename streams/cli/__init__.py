"""The ``gravitas`` command line."""

from gravitas.streams.cli.main import main

__all__ = ["main"]

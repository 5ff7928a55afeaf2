"""The ``gravitas`` command line."""

from gravitas.streams.cli.entry import main

__all__ = ["main"]

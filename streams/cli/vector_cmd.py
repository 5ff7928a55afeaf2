"""``gravitas vector``: load vector layers onto the grid and join them with rasters."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from gravitas.schemas.errors import RequestError
from gravitas.storage.vector import VectorLayerInfo, VectorStore
from gravitas.storage.vector.gridwarp import overlap_bbox, raster_bbox, warp_to_grid
from gravitas.streams.cli.common import DataOpt, console, out, settings_from

vector_app = typer.Typer(
    help="Vector layers (points, polygons) keyed on the nested grid.", no_args_is_help=True
)

LayerOpt = Annotated[str, typer.Option("--layer", "-l", help="Name of the vector layer.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store(data: Path | None) -> VectorStore:
    return VectorStore.for_data_dir(settings_from(data=data).data_dir)


def _fmt(v: float) -> str:
    return "" if math.isnan(v) else f"{v:.4g}"


def _layer_row(info: VectorLayerInfo) -> list[str]:
    levels = ", ".join(f"{lv}:{n}" for lv, n in sorted(info.levels.items()))
    classes = ", ".join(f"{c}={v}" for c, v in sorted(info.class_names().items()))
    return [info.name, str(info.count), info.geometry_type, levels, classes[:60], info.source]


@vector_app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="GeoPackage, GeoJSON or Shapefile.")],
    layer: LayerOpt,
    class_field: Annotated[
        str | None, typer.Option("--class-field", help="Categorical field -> class codes.")
    ] = None,
    id_field: Annotated[
        str | None, typer.Option("--id-field", help="Field with feature ids.")
    ] = None,
    source_layer: Annotated[
        str | None, typer.Option("--source-layer", help="Layer inside a multi-layer file.")
    ] = None,
    crs: Annotated[
        str | None, typer.Option("--crs", help="Source CRS when the file has none.")
    ] = None,
    point_level: Annotated[int, typer.Option("--point-level", help="Grid level of points.")] = 24,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite the layer.")] = False,
    data: DataOpt = None,
) -> None:
    """Load a vector file into the node's vector store (<data_dir>/vector).

    Example: gravitas vector add s2l1c_ref.gpkg --layer labels --class-field cid
    """
    with _store(data) as store:
        info = store.add_layer(
            layer,
            path,
            id_field=id_field,
            class_field=class_field,
            source_layer=source_layer,
            crs=crs,
            point_level=point_level,
            replace=replace,
        )
    table = Table("layer", "features", "geometry", "level:count", "classes", "source")
    table.add_row(*_layer_row(info))
    out.print(table)
    if info.skipped:
        console.print(f"skipped {info.skipped} features without geometry")


@vector_app.command("layers")
def layers(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List the vector layers of the node.

    Example: gravitas vector layers --data ./node-a
    """
    with _store(data) as store:
        infos = store.layers()
    if as_json:
        rows = [{"name": i.name, "count": i.count, "classes": i.classes} for i in infos]
        out.print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode(), highlight=False)
        return
    table = Table("layer", "features", "geometry", "level:count", "classes", "source")
    for info in infos:
        table.add_row(*_layer_row(info))
    out.print(table)


@vector_app.command("stats")
def stats(
    raster: Annotated[Path, typer.Argument(help="GeoTIFF (any GDAL raster) to summarise.")],
    layer: LayerOpt,
    level: Annotated[int, typer.Option("--level", help="Grid level to warp the raster onto.")],
    band: Annotated[int, typer.Option("--band", help="Band number (1-based).")] = 1,
    resampling: Annotated[
        str, typer.Option("--resampling", help="nearest, bilinear, average, ...")
    ] = "nearest",
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Zonal statistics of a raster band inside each feature of a vector layer.

    Warps the band onto the grid at --level where raster and layer overlap.

    Example: gravitas vector stats B04.tif --layer labels --level 22
    """
    with _store(data) as store:
        info = store.layer(layer)
        bbox = overlap_bbox(raster_bbox(raster), info.bounds) if info.bounds else None
        if bbox is None:
            raise RequestError(f"{raster} does not overlap vector layer {layer!r}")
        arr, transform = warp_to_grid(raster, level, bbox, band, resampling)
        result = store.zonal_stats(arr, transform, layer, level)
    if as_json:
        rows = [z.as_dict() for z in result]
        clean = [{k: (None if v != v else v) for k, v in r.items()} for r in rows]
        out.print(orjson.dumps(clean, option=orjson.OPT_INDENT_2).decode(), highlight=False)
        return
    names = info.class_names()
    table = Table("fid", "id", "class", "count", "mean", "min", "max", "std")
    for z in result:
        table.add_row(
            str(z.fid),
            str(z.feature_id),
            names.get(z.class_code, ""),
            str(z.count),
            *(_fmt(v) for v in (z.mean, z.min, z.max, z.std)),
        )
    out.print(table)
    console.print(f"{len(result)} features of {layer!r} at level {level}")


def register(app: typer.Typer) -> None:
    """Add the ``vector`` command group to the app."""
    app.add_typer(vector_app, name="vector")

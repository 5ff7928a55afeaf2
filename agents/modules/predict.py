"""Predictions of a federated model written back as a layer (a workflow step).

The step reads the model registered by a training (STAC collection ``models``, a skops
file loaded with trusted types only), reads the model's input layers over the step's
bbox and time window from this node's pixel store, builds the pixel features the way
training built them (bands averaged over time, times the model's value scale), predicts
a class per pixel and writes the class map as a COG into the object store under a key
named by the step id (a replay writes the same bytes). Its ``announce_scene`` output
asks the module agent to announce that COG on ``scenes.new`` as a categorical layer, so
the node's ingest agent (the one writer of the pixel store) indexes it with its
overviews: the predictions can be searched, tiled and featurized like any other layer.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gravitas.agents.modules.context import ModuleContext
from gravitas.agents.modules.errors import ModuleError
from gravitas.agents.modules.model import Module, schema

NODATA = -1
"""Class-map value of pixels without a complete, finite feature vector."""
COLLECTION = "predictions"
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
_LAYER = r"^[a-z][a-z0-9_]{0,62}$"


def model_inputs(item: dict[str, Any]) -> tuple[list[str], float, list[int]]:
    """(input layer names, value scale, class codes) of a model item (``mlm``)."""
    props = item.get("properties", {})
    try:
        first = props["mlm:input"][0]
        layers = [str(b).rpartition(":")[2] for b in first["bands"]]
        scale = float(first.get("value_scaling", [{}])[0].get("scale", 1.0))
        classes = [int(c["value"]) for c in props["mlm:output"][0]["classification:classes"]]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModuleError(
            f"model item {item.get('id')!r} is not an mlm model card this module can run "
            f"({type(exc).__name__}: {exc}); train it with `gravitas train`"
        ) from exc
    return layers, scale, classes


def features(cube: xr.DataArray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``(bands, time, lat, lon)`` -> pixel features ``(lat*lon, bands)`` and the mask of
    pixels whose features are all finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        mean = np.nanmean(np.asarray(cube.values, np.float64), axis=1) * scale  # (band, y, x)
    flat = np.moveaxis(mean, 0, -1).reshape(-1, mean.shape[0])
    return flat, np.all(np.isfinite(flat), axis=1)


def class_map_cog(classes: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> bytes:
    """An int16 class map on the pixel-store grid as COG bytes (EPSG:4326, nodata -1)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    arr = xr.DataArray(classes.astype(np.int16), dims=("lat", "lon"),
                       coords={"lat": lat, "lon": lon})  # fmt: skip
    arr = arr.rio.set_spatial_dims(x_dim="lon", y_dim="lat").rio.write_crs("EPSG:4326")
    arr = arr.rio.write_nodata(NODATA)
    arr.attrs["long_name"] = "predicted class"
    with tempfile.TemporaryDirectory(prefix="gravitas-predict-") as tmp:
        path = Path(tmp) / "classes.tif"
        arr.rio.to_raster(path, driver="COG", compress="DEFLATE")
        return path.read_bytes()


def run(inputs: dict[str, Any], ctx: ModuleContext) -> dict[str, Any]:
    """The module function."""
    from gravitas.agents.training.model_card import COLLECTION as MODELS
    from gravitas.agents.training.model_card import load_model
    from gravitas.storage.catalog.errors import ItemNotFoundError
    from gravitas.storage.pixels.lazy import open_layers

    services = ctx.services
    if services is None:
        raise ModuleError("predict needs a node (its catalog, object store and pixels)")
    model_id, layer = str(inputs["model"]), str(inputs["layer"])
    if not re.match(_ID, model_id):
        raise ModuleError(f"model id {model_id!r} is not an item id")
    try:
        item = services.catalog.get_item(MODELS, model_id)
    except ItemNotFoundError as exc:
        raise ModuleError(
            f"no model {model_id!r} in collection {MODELS!r} on node {ctx.node_id}; "
            "train one first or name a registered model"
        ) from exc
    layers, scale, codes = model_inputs(item)
    model_key = f"models/{model_id}.skops"
    model = load_model(services.object_store.get_bytes(model_key))
    start = datetime.fromisoformat(str(inputs["start"]).replace("Z", "+00:00"))
    end = datetime.fromisoformat(str(inputs["end"]).replace("Z", "+00:00"))
    bbox = tuple(float(v) for v in inputs["bbox"])
    cube = open_layers(services.block_store, services.layers, layers, bbox,  # type: ignore[arg-type]
                       start, end, inputs.get("level"))  # fmt: skip
    if cube.sizes["time"] == 0:
        raise ModuleError(
            f"layers {layers} hold no time step in [{inputs['start']}, {inputs['end']}] over "
            f"{list(bbox)}; widen the window or onboard the scenes first"
        )
    x, ok = features(cube, scale)
    out = np.full(x.shape[0], NODATA, np.int16)
    if ok.any():
        out[ok] = model.predict(x[ok]).astype(np.int16)
    grid = out.reshape(cube.sizes["lat"], cube.sizes["lon"])
    data = class_map_cog(grid, cube["lat"].values, cube["lon"].values)
    digest = hashlib.sha256(data).hexdigest()
    key = f"predictions/{ctx.step_id}.tif"
    services.object_store.put_bytes(key, data)
    values, counts = np.unique(grid[grid != NODATA], return_counts=True)
    scene_id = "pred-" + hashlib.sha256(ctx.step_id.encode()).hexdigest()[:24]
    lon, lat = cube["lon"].values, cube["lat"].values
    return {
        "layer": layer,
        "model": model_id,
        "cog_key": key,
        "sha256": digest,
        "pixels": int(ok.sum()),
        "class_counts": {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)},
        "classes": codes,
        "level": int(cube.attrs["level"]),
        "announce_scene": {
            "scene_id": scene_id,
            "collection": COLLECTION,
            "hrefs": [services.object_store.href(key)],
            "bbox": [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())],
            "datetime": _latest(cube),
            "layer": layer,
            "categorical": True,
            "nodata": NODATA,
        },
    }


def _latest(cube: xr.DataArray) -> str:
    """The class map's time: the latest input time step it was predicted from."""
    import pandas as pd

    stamp = pd.Timestamp(cube["time"].values.max())
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.isoformat()


MODULE = Module(
    name="predict",
    version="1.0.0",
    description="Apply a federated model (STAC collection 'models') to its input layers "
    "here and write the class map back as a categorical layer (indexed by the ingest agent).",
    author="gravitas",
    lifecycle="published",
    kind="python",
    target="gravitas.agents.modules.predict:run",
    inputs=schema(
        {
            "model": {"type": "string", "pattern": _ID},
            "layer": {"type": "string", "pattern": _LAYER},
            "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "level": {"type": "integer", "minimum": 1, "maximum": 29},
        },
        ["model", "layer", "bbox", "start", "end"],
    ),
    outputs=schema(
        {
            "layer": {"type": "string"},
            "model": {"type": "string"},
            "cog_key": {"type": "string"},
            "sha256": {"type": "string"},
            "pixels": {"type": "integer"},
            "class_counts": {"type": "object"},
            "classes": {"type": "array"},
            "level": {"type": "integer"},
            "announce_scene": {"type": "object"},
        }
    ),
    provenance={"source": "built-in", "package": "gravitas"},
)

"""Labels read at each time step of a cube, for per-time training samples.

A label layer with time (a categorical raster indexed once per date, e.g. the Fmask
classes that ship with every Landsat scene) gives each cube time step its own label:
the layer's dates that fall in the step (``[centre - step/2, centre + step/2)``),
nearest-resampled onto the cube's grid window. A pixel whose dates in one step disagree,
or that no date of the step covers, gets the label's ``nodata`` (left out of training);
so does the layer's own nodata (the Fmask fill, 255). A vector label layer has no time:
it is static, and the caller keeps the cube's label tiles for every step.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gravitas.agents.datacube.retrieve import Retrieved
from gravitas.agents.services import NodeServices
from gravitas.kernels.datacube import crop_pad, to_level
from gravitas.schemas.errors import RequestError
from gravitas.schemas.events import LabelSpec
from gravitas.storage.pixels.read import read_layer
from gravitas.storage.vector import VectorStore


class NoLabelTimesError(RequestError):
    """The label layer has no date within the cube's time steps."""


def is_static(services: NodeServices, label: LabelSpec) -> bool:
    """Whether the label is a vector layer (one label for every time step)."""
    store = VectorStore.for_data_dir(services.data_dir)
    try:
        return label.layer in {v.name for v in store.layers()}
    finally:
        store.close()


def _codes(
    plane: NDArray[np.generic], layer_nodata: float | None, nodata: int
) -> NDArray[np.int64]:
    """A label plane as int64 with every missing or nodata pixel set to ``nodata``."""
    a = np.asarray(plane)
    missing = np.zeros(a.shape, bool)
    if a.dtype.kind == "f":
        missing |= ~np.isfinite(a)
        a = np.where(missing, nodata, a)
    if layer_nodata is not None and not np.isnan(layer_nodata):
        missing |= np.asarray(plane) == layer_nodata
    out = a.astype(np.int64)
    out[missing] = nodata
    return out


def label_series(
    services: NodeServices,
    label: LabelSpec,
    got: Retrieved,
    centres: NDArray[np.float64],
    step_s: float,
) -> NDArray[np.int64]:
    """``(time, y, x)`` label codes on the cube's grid window at each time step."""
    half = step_s / 2.0
    t0, t1 = int(np.floor(centres[0] - half)), int(np.ceil(centres[-1] + half))
    info = services.layers.get(label.layer)  # NotFoundError names the layer
    arr = read_layer(services.block_store, services.layers, label.layer, got.bbox, t0, t1,
                     info.native_level)  # fmt: skip
    stamps = np.asarray(services.layers.times(label.layer, t0, t1), np.float64)
    if stamps.size != arr.shape[0]:  # a date indexed between the two reads: read again
        raise RequestError(f"label layer {label.layer!r} changed while it was read; retry")
    if not stamps.size:
        raise NoLabelTimesError(
            f"label layer {label.layer!r} has no date in the cube's time steps "
            f"(epoch {t0}..{t1}); use samples: time_mean for a static label"
        )
    x0, y1 = int(arr.attrs["x0"]), int(arr.attrs["y1"])
    h, w = arr.shape[-2:]
    src = (x0, y1 - h + 1, x0 + w - 1, y1)
    rows, cols = got.window[3] - got.window[1] + 1, got.window[2] - got.window[0] + 1
    nodata = label.nodata
    out = np.full((centres.size, rows, cols), nodata, np.int64)
    values = arr.values
    for i, centre in enumerate(centres):
        inside = np.flatnonzero((stamps >= centre - half) & (stamps < centre + half))
        step: NDArray[np.int64] | None = None
        for j in inside:
            plane = _codes(values[j], info.nodata, nodata)
            moved, win = to_level(plane, src, info.native_level, got.level, method="nearest",
                                  nodata=nodata)  # fmt: skip
            codes = np.asarray(crop_pad(moved, win, got.window, fill=nodata), np.int64)
            # several dates in one step: keep only the pixels they agree on
            step = codes if step is None else np.where(step == codes, step, nodata)
        if step is not None:
            out[i] = step
    return out

"""A participant's training data: its own datacube, built through the harmonize path.

The cube covers the part of the request's area that this node's own scenes cover (its
local catalog, not the federation's). Samples (``TrainingSpec.samples``): ``time_mean``
gives one per pixel, the bands averaged over the cube's time steps, with the per-pixel
label codes; ``per_time`` gives one per (pixel, time step) where every band was observed
(not gap-filled) at that step, with the label read at that step
(:mod:`.time_labels`). Features are scaled by ``feature_scale``; train and test samples
come from the cube's own (stratified, seeded) patch split, so a pixel's dates all fall
on one side. Nothing of it leaves the node: it is written next to the node's data for
the Flower client.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gravitas.agents.datacube.assemble import Assembled, assemble
from gravitas.agents.datacube.match import match_request
from gravitas.agents.datacube.retrieve import retrieve
from gravitas.agents.services import NodeServices
from gravitas.agents.training.time_labels import is_static, label_series
from gravitas.kernels.datacube import cut_patches
from gravitas.schemas.errors import RequestError
from gravitas.schemas.training import TrainingSpec
from gravitas.storage.catalog.base import SearchParams


class NoLocalDataError(RequestError):
    """This node holds no scene of the training's collections in its area."""


@dataclass(frozen=True)
class LocalData:
    """Pixel features and labels of one node's cube, split for training and testing."""

    x_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.float64]
    y_test: NDArray[np.int64]
    items: list[str]
    """The STAC item ids (``collection/id``) the cube was built from."""
    cube_bytes: int
    """Size of the cube (patches and labels): what a central training would move."""
    where_train: NDArray[np.float64]
    """(n, 3) of each training sample: time step centre (epoch s; NaN for a time
    mean), pixel-centre longitude and latitude."""
    where_test: NDArray[np.float64]

    def save(self, path: Path) -> Path:
        """Write the arrays for the Flower client (``.npz``, no pickled objects)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            x_train=self.x_train,
            y_train=self.y_train,
            x_test=self.x_test,
            y_test=self.y_test,
            where_train=self.where_train,
            where_test=self.where_test,
            items=np.array(self.items, dtype=np.str_),
        )
        return path


def own_area(
    services: NodeServices, spec: TrainingSpec
) -> tuple[tuple[float, float, float, float], list[str]]:
    """The request's bbox cut to the scenes this node owns, and those scenes' ids."""
    req = spec.datacube
    collections = tuple(sorted({m.collection for m in req.modalities if m.collection}))
    params = SearchParams(bbox=tuple(req.bbox), collections=collections or None, limit=500)
    items = services.catalog.search(params).items
    if not items:
        raise NoLocalDataError(
            f"node {services.settings.node_id!r} holds no item of {list(collections)} in "
            f"bbox {list(req.bbox)}"
        )
    boxes = np.array([i["bbox"][:2] + i["bbox"][-2:] for i in items], np.float64)
    w, s, e, n = req.bbox
    area = (
        max(w, float(boxes[:, 0].min())),
        max(s, float(boxes[:, 1].min())),
        min(e, float(boxes[:, 2].max())),
        min(n, float(boxes[:, 3].max())),
    )
    return area, sorted(f"{i['collection']}/{i['id']}" for i in items)


Samples = tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]
"""Features ``(n, band)``, labels ``(n,)``, where ``(n, 3)`` (time, lon, lat)."""


def _time_mean(cube: Assembled, idx: NDArray[np.intp], scale: float) -> Samples:
    """One sample per pixel of patches ``idx``: bands averaged over the time steps."""
    assert cube.label_tiles is not None
    data = cube.data[idx]  # (k, t, band, p, p)
    k, _, nb, p, _ = data.shape
    x = np.moveaxis(np.nanmean(data, axis=1), 1, -1).reshape(-1, nb) * scale
    y = cube.label_tiles[idx].reshape(-1)
    where = np.stack(
        [
            np.full((k, p, p), np.nan),
            np.broadcast_to(cube.lon[idx][:, None, :], (k, p, p)),
            np.broadcast_to(cube.lat[idx][:, :, None], (k, p, p)),
        ],
        axis=-1,
    ).reshape(-1, 3)
    return x, y, where


def _per_time(
    cube: Assembled, labels: NDArray[np.int64], idx: NDArray[np.intp], scale: float
) -> Samples:
    """One sample per (pixel, time step) of patches ``idx`` where no band was gap-filled;
    ``labels`` is ``(n, t, p, p)``. Filled pixels come back with NaN features."""
    data = cube.data[idx]  # (k, t, band, p, p)
    k, t, nb, p, _ = data.shape
    x = np.moveaxis(data, 2, -1).reshape(-1, nb).astype(np.float64) * scale
    x[cube.filled[idx].any(axis=2).reshape(-1)] = np.nan
    y = labels[idx].reshape(-1)
    shape = (k, t, p, p)
    where = np.stack(
        [
            np.broadcast_to(cube.times[None, :, None, None], shape),
            np.broadcast_to(cube.lon[idx][:, None, None, :], shape),
            np.broadcast_to(cube.lat[idx][:, None, :, None], shape),
        ],
        axis=-1,
    ).reshape(-1, 3)
    return x, y, where


def build_local_data(services: NodeServices, spec: TrainingSpec, request_id: str) -> LocalData:
    """Match, retrieve and assemble the node's own cube, then cut it into samples."""
    area, items = own_area(services, spec)
    node = services.settings.node_id
    req = spec.datacube.model_copy(
        update={"request_id": f"{request_id}.{node}"[:200], "bbox": area}
    )
    matched = match_request(services, req)
    got = retrieve(services, req, matched.pairs)
    cube = assemble(services, req, got)
    if cube.label_tiles is None or req.label is None:  # the spec requires a label
        raise NoLocalDataError(f"node {node!r}: the cube has no label tiles")
    nodata = req.label.nodata
    size = int(cube.data.nbytes + cube.label_tiles.nbytes)
    per_time: NDArray[np.int64] | None = None
    if spec.samples == "per_time":
        if is_static(services, req.label):
            per_time = np.repeat(cube.label_tiles[:, None], cube.times.size, axis=1)
        else:
            series = label_series(services, req.label, got, cube.times, req.time_step_s)
            per_time = cut_patches(series, cube.origins, req.patch_size)
            size += int(per_time.nbytes)
    rng = np.random.default_rng(spec.seed)

    def samples(split: str, limit: int) -> Samples:
        idx = cube.split.indices(split)
        if per_time is None:
            x, y, where = _time_mean(cube, idx, spec.feature_scale)
        else:
            x, y, where = _per_time(cube, per_time, idx, spec.feature_scale)
        keep = (y != nodata) & np.all(np.isfinite(x), axis=1) & np.isin(y, spec.classes)
        x, y, where = x[keep], y[keep], where[keep]
        if len(y) > limit:
            sel = np.sort(rng.choice(len(y), size=limit, replace=False))
            x, y, where = x[sel], y[sel], where[sel]
        return x.astype(np.float64), y.astype(np.int64), where.astype(np.float64)

    x_train, y_train, w_train = samples("train", spec.max_pixels)
    x_test, y_test, w_test = samples("test", max(100, spec.max_pixels // 4))
    if not len(y_train):
        raise NoLocalDataError(f"node {node!r}: no labelled training sample in its cube")
    return LocalData(x_train, y_train, x_test, y_test, items, size, w_train, w_test)

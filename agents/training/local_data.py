"""A participant's training data: its own datacube, built through the harmonize path.

The cube covers the part of the request's area that this node's own scenes cover (its
local catalog, not the federation's); pixel features are the bands averaged over the
cube's time steps, scaled by ``feature_scale``; labels are the per-pixel label codes;
train and test pixels come from the cube's own (stratified, seeded) patch split. Nothing
of it leaves the node: it is written next to the node's data for the Flower client.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gravitas.agents.datacube.assemble import assemble
from gravitas.agents.datacube.match import match_request
from gravitas.agents.datacube.retrieve import retrieve
from gravitas.agents.services import NodeServices
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

    def save(self, path: Path) -> Path:
        """Write the arrays for the Flower client (``.npz``, no pickled objects)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            x_train=self.x_train,
            y_train=self.y_train,
            x_test=self.x_test,
            y_test=self.y_test,
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


def build_local_data(services: NodeServices, spec: TrainingSpec, request_id: str) -> LocalData:
    """Match, retrieve and assemble the node's own cube, then cut it into pixel samples."""
    area, items = own_area(services, spec)
    node = services.settings.node_id
    req = spec.datacube.model_copy(
        update={"request_id": f"{request_id}.{node}"[:200], "bbox": area}
    )
    matched = match_request(services, req)
    got = retrieve(services, req, matched.pairs)
    cube = assemble(services, req, got)
    if cube.label_tiles is None:  # the spec requires a label; assemble honours it
        raise NoLocalDataError(f"node {node!r}: the cube has no label tiles")
    nodata = req.label.nodata if req.label else 0
    features = np.nanmean(cube.data, axis=1) * spec.feature_scale  # (n, band, y, x)
    rng = np.random.default_rng(spec.seed)

    def pixels(split: str, limit: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        idx = cube.split.indices(split)
        x = np.moveaxis(features[idx], 1, -1).reshape(-1, features.shape[1])
        y = cube.label_tiles[idx].reshape(-1)  # type: ignore[index]
        keep = (y != nodata) & np.all(np.isfinite(x), axis=1) & np.isin(y, spec.classes)
        x, y = x[keep], y[keep]
        if len(y) > limit:
            sel = np.sort(rng.choice(len(y), size=limit, replace=False))
            x, y = x[sel], y[sel]
        return x.astype(np.float64), y.astype(np.int64)

    x_train, y_train = pixels("train", spec.max_pixels)
    x_test, y_test = pixels("test", max(100, spec.max_pixels // 4))
    if not len(y_train):
        raise NoLocalDataError(f"node {node!r}: no labelled training pixel in its cube")
    size = int(cube.data.nbytes + cube.label_tiles.nbytes)
    return LocalData(x_train, y_train, x_test, y_test, items, size)

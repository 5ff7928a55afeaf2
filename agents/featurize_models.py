"""Decision trees and random forests trained next to the data.

The request's variables (every layer at every time step of the window, plus the
expression when it is more than one variable) are the features; the labels are a stored
vector layer with a class field (burnt onto the same grid window) or a categorical
raster layer. A seeded, stratified split holds out ``test_fraction`` of the labelled
pixels for the metrics. The fitted model travels as a skops file (never pickle) and
:func:`load_model` only opens files whose types pass skops' trusted-types check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import skops.io as sio
import xarray as xr
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from gravitas.agents.featurize import (
    Computed,
    FeaturizeError,
    build_field,
)
from gravitas.agents.featurize_reduce import check_raster
from gravitas.schemas.errors import InputError
from gravitas.schemas.events import FeatureResult, Featurize, ModelSpec
from gravitas.storage.blocks import BlockStore
from gravitas.storage.pixels.errors import LayerNotFoundError
from gravitas.storage.pixels.layers import LayerRegistry
from gravitas.storage.pixels.lazy import open_layer

TRUSTED_EXTRA: tuple[str, ...] = ("sklearn.tree._tree.Tree",)
"""Types beyond skops' defaults a stored tree / forest contains (the tree structure)."""
Model: TypeAlias = DecisionTreeClassifier | RandomForestClassifier


class UntrustedModelError(InputError):
    """A model file that holds types outside the trusted set; it is not loaded."""


def load_model(data: bytes) -> Model:
    """A tree / forest from skops bytes, refusing any type skops does not trust."""
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise UntrustedModelError(f"not a skops model file: {exc}") from None
    refused = sorted(set(untrusted) - set(TRUSTED_EXTRA))
    if refused:
        raise UntrustedModelError(
            f"model file holds untrusted types {refused}; refusing to load it "
            "(only scikit-learn trees and forests are accepted)"
        )
    model = sio.loads(data, trusted=list(TRUSTED_EXTRA))
    if not isinstance(model, DecisionTreeClassifier | RandomForestClassifier):
        raise UntrustedModelError(f"model file holds a {type(model).__name__}, not a tree/forest")
    return model


def _features(
    event: Featurize, store: BlockStore, registry: LayerRegistry
) -> tuple[np.ndarray, list[str], xr.DataArray]:
    """``(n_features, lat, lon)`` feature stack, names and a template grid."""
    fld, arrays = build_field(event, store, registry)
    planes: list[np.ndarray] = []
    names: list[str] = []
    template = next(iter(arrays.values()))
    check_raster(template)
    for var, arr in sorted(arrays.items()):
        vals = arr.values.astype(np.float64)
        for i, t in enumerate(arr["time"].values):
            planes.append(vals[i])
            names.append(var if arr.sizes["time"] == 1 else f"{var}@{str(t)[:19]}")
    if event.expression.strip() not in arrays:
        vals = fld.values
        for i in range(vals.shape[0]):
            planes.append(vals[i])
            names.append("expr" if vals.shape[0] == 1 else f"expr@{i}")
    return np.stack(planes), names, template


def _labels(
    spec: ModelSpec,
    event: Featurize,
    store: BlockStore,
    registry: LayerRegistry,
    template: xr.DataArray,
    vectors_dir: Path | None,
) -> tuple[np.ndarray, dict[int, str]]:
    """Class code per pixel of the template grid (0 = unlabelled) and the class names."""
    level = int(template.attrs["level"])
    shape = (template.sizes["lat"], template.sizes["lon"])
    try:
        info = registry.get(spec.labels)
    except LayerNotFoundError:
        info = None
    if info is not None:
        lab = open_layer(store, registry, spec.labels, event.bbox, event.time.start,
                         event.time.end, level)  # fmt: skip
        if lab.sizes["time"] == 0:
            raise FeaturizeError(f"label layer {spec.labels!r} has no data in the window")
        codes = np.asarray(lab.isel(time=-1).values)
        nodata = lab.attrs.get("nodata")
        valid = np.isfinite(codes) if codes.dtype.kind == "f" else np.ones(codes.shape, bool)
        if nodata is not None:
            valid &= codes != nodata
        out = np.where(valid, codes, 0).astype(np.int64)
        names = {int(c): str(int(c)) for c in np.unique(out[out != 0])}
    else:
        from gravitas.storage.vector.store import VectorStore

        if vectors_dir is None:
            raise FeaturizeError(f"labels {spec.labels!r}: no raster layer of that name")
        with VectorStore.for_data_dir(vectors_dir) as vs:
            try:
                vinfo = vs.layer(spec.labels)
            except Exception:
                raise FeaturizeError(
                    f"labels {spec.labels!r} is neither a raster layer nor a vector layer "
                    "of this node; add it with `gravitas vector add`"
                ) from None
            out, _ = vs.label_pixels(spec.labels, level, event.bbox)
            names = {int(k): str(v) for k, v in vinfo.class_names().items()}
        out = out.astype(np.int64)
    if out.shape != shape:
        raise FeaturizeError(f"labels grid {out.shape} differs from the feature grid {shape}")
    return out, names


def _estimator(spec: ModelSpec) -> Model:
    if spec.kind == "tree":
        return DecisionTreeClassifier(max_depth=spec.max_depth, random_state=spec.seed)
    return RandomForestClassifier(
        n_estimators=spec.n_estimators, max_depth=spec.max_depth,
        random_state=spec.seed, n_jobs=1,
    )  # fmt: skip


def training_data(
    feats: np.ndarray, codes: np.ndarray, spec: ModelSpec
) -> tuple[np.ndarray, np.ndarray]:
    """``X, y`` of the labelled pixels with every feature finite (seeded subsample)."""
    X = feats.reshape(feats.shape[0], -1).T
    y = codes.ravel()
    keep = (y != 0) & np.isfinite(X).all(axis=1)
    X, y = X[keep], y[keep]
    if len(y) > spec.max_samples:
        idx = np.sort(np.random.default_rng(spec.seed).choice(len(y), spec.max_samples, False))
        X, y = X[idx], y[idx]
    return X, y


def split(
    X: np.ndarray, y: np.ndarray, spec: ModelSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The seeded held-out split (stratified when every class has two pixels)."""
    _, counts = np.unique(y, return_counts=True)
    strat = y if counts.min() >= 2 else None
    parts = train_test_split(X, y, test_size=spec.test_fraction, random_state=spec.seed,
                             stratify=strat)  # fmt: skip
    return parts[0], parts[1], parts[2], parts[3]


def train_model(
    event: Featurize,
    store: BlockStore,
    registry: LayerRegistry,
    node_id: str,
    vectors_dir: Path | None,
) -> Computed:
    """Fit, evaluate, serialise (and optionally predict) the request's model."""
    spec = event.model
    assert spec is not None
    feats, names, template = _features(event, store, registry)
    codes, classes = _labels(spec, event, store, registry, template, vectors_dir)
    X, y = training_data(feats, codes, spec)
    found = np.unique(y)
    if len(y) < 10 or len(found) < 2:
        raise FeaturizeError(
            f"labels {spec.labels!r} give {len(y)} labelled pixels in {len(found)} classes "
            "inside the bbox; a model needs at least 10 pixels and 2 classes"
        )
    X_tr, X_te, y_tr, y_te = split(X, y, spec)
    model = _estimator(spec).fit(X_tr, y_tr)
    pred = model.predict(X_te)
    labels = [int(c) for c in model.classes_]
    info: dict[str, Any] = {
        "kind": spec.kind,
        "accuracy": float(accuracy_score(y_te, pred)),
        "confusion_matrix": confusion_matrix(y_te, pred, labels=labels).tolist(),
        "classes": {str(c): classes.get(c, str(c)) for c in labels},
        "feature_importances": dict(
            zip(names, (float(v) for v in model.feature_importances_), strict=True)
        ),
        "n_train": len(y_tr),
        "n_test": len(y_te),
        "seed": spec.seed,
    }
    result = FeatureResult(request_id=event.request_id, served_by=node_id, model=info)
    out = Computed(result, files={"model.skops": sio.dumps(model)})
    if spec.predict:
        flat = feats.reshape(feats.shape[0], -1).T
        ok = np.isfinite(flat).all(axis=1)
        classes_px = np.full(flat.shape[0], np.nan)
        if ok.any():
            classes_px[ok] = model.predict(flat[ok])
        grid = classes_px.reshape(template.shape[-2:])
        out.rasters["prediction"] = xr.DataArray(
            grid[None], dims=("band", "lat", "lon"),
            coords={"band": ["class"], "lat": template["lat"], "lon": template["lon"]},
        )  # fmt: skip
    return out

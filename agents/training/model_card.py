"""The trained model: rebuilt from Flower's final parameters, saved with skops (never
pickle), and registered in STAC with the Machine Learning Model (``mlm``) extension."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops.io as sio

from gravitas.agents.registration import register_item
from gravitas.agents.services import NodeServices
from gravitas.agents.training.flower_models import initialise, make_model, set_params
from gravitas.schemas.errors import InputError
from gravitas.schemas.events import ItemRegistered
from gravitas.schemas.training import ModelTrained, TrainingSpec


class UntrustedModelError(InputError):
    """A model file names types that are not on the trusted list."""


COLLECTION = "models"
MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"


def load_final(path: Path, spec: TrainingSpec, n_features: int) -> Any:
    """The estimator with the aggregated parameters of ``final.npz``."""
    with np.load(path) as data:
        params = [data[f"arr_{i}"] for i in range(len(data.files))]
    classes = np.array(spec.classes, np.int64)
    model = initialise(make_model(spec.model, spec.hyperparameters, spec.seed), n_features, classes)
    return set_params(model, params)


def _collection() -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": COLLECTION,
        "description": "Models trained by federated learning across the federation's nodes",
        "license": "other",
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [[None, None]]},
        },
        "links": [],
    }


def register_model(
    services: NodeServices, spec: TrainingSpec, result: ModelTrained, model: Any, bands: list[str]
) -> tuple[str, str, ItemRegistered]:
    """Save ``model`` with skops and register its item; (href, item id, registration)."""
    key = f"models/{result.request_id}.skops"
    with tempfile.TemporaryDirectory(prefix="gravitas-model-") as tmp:
        path = Path(tmp) / "model.skops"
        sio.dump(model, path)
        services.object_store.put_file(key, path)
    href = services.object_store.href(key)
    last = result.rounds[-1] if result.rounds else None
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [MLM_SCHEMA],
        "id": result.request_id,
        "collection": COLLECTION,
        "bbox": list(spec.datacube.bbox),
        "geometry": _box(spec.datacube.bbox),
        "properties": {
            "datetime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "mlm:name": f"{spec.model}-{result.request_id}",
            "mlm:architecture": "SGDClassifier" if spec.model == "linear" else "MLPClassifier",
            "mlm:tasks": ["classification", "segmentation"],
            "mlm:framework": "scikit-learn",
            "mlm:framework_version": sklearn.__version__,
            "mlm:hyperparameters": dict(spec.hyperparameters),
            "mlm:input": [
                {
                    "name": "pixel features"
                    if spec.samples == "time_mean"
                    else "pixel features per time step",
                    "bands": bands,
                    "input": {
                        "shape": [-1, len(bands)],
                        "dim_order": ["batch", "bands"],
                        "data_type": "float64",
                    },
                    "pre_processing_function": None,
                    "norm_type": None,
                    "value_scaling": [{"type": "scale", "scale": spec.feature_scale}],
                }
            ],
            "mlm:output": [
                {
                    "name": "class",
                    "tasks": ["classification"],
                    "result": {"shape": [-1], "dim_order": ["batch"], "data_type": "int64"},
                    "classification:classes": [
                        {"value": int(c), "name": str(c)} for c in spec.classes
                    ],
                }
            ],
            "gravitas:federated": {
                "strategy": spec.strategy,
                "samples": spec.samples,
                "rounds": len(result.rounds),
                "participants": result.participants,
                "coordinator": result.coordinator,
                "data_items": result.data_items,
                "bytes_moved": result.bytes_moved,
                "excluded": result.excluded,
            },
            "gravitas:accuracy": last.accuracy if last else None,
            "gravitas:accuracy_per_node": last.per_node if last else {},
        },
        "assets": {
            "model": {
                "href": href,
                "type": "application/octet-stream; application=skops",
                "title": "fitted model (skops; load with skops.io.load and trusted types)",
                "roles": ["mlm:model"],
                "mlm:artifact_type": "skops.io.dump",
            }
        },
        "links": [],
    }
    services.catalog.upsert_collection(_collection())
    registration = register_item(services, item)
    return href, result.request_id, registration


def _box(b: Any) -> dict[str, Any]:
    w, s, e, n = (float(v) for v in b)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


TRUSTED_TYPES = ["sklearn.neural_network._stochastic_optimizers.SGDOptimizer"]
"""Types beyond skops' defaults that the two model families are made of."""


def load_model(data: bytes) -> Any:
    """Load a model file, trusting only the types the two model families are made of.

    ``skops.io.loads`` refuses any other type (a crafted file cannot run code on load):
    :class:`UntrustedModelError` names them."""
    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    if untrusted:
        raise UntrustedModelError(
            f"model file holds types outside the trusted list: {untrusted}; only "
            "scikit-learn SGDClassifier/MLPClassifier models are loaded"
        )
    return sio.loads(data, trusted=TRUSTED_TYPES)

"""The built-in modules: the node's agents as modules, and the pre-built models."""

from __future__ import annotations

from gravitas.agents.modules import downscale, flood, plume_patches, predict, stats, survey
from gravitas.agents.modules.declare import BBOX, BUILTIN, DATETIME, builtin
from gravitas.agents.modules.model import Module

__all__ = ["BUILTIN", "RUNNABLE_AGENT_MODULES", "builtin_modules"]

PIXEL_SEARCH = builtin(
    "pixel-search",
    "Every pixel and time where a layer satisfies a predicate (discovery agent).",
    kind="agent",
    target="requests.discovery",
    inputs={
        "layer": {"type": "string"},
        "op": {"type": "string", "enum": [">", ">=", "<", "<="]},
        "value": {"type": "number"},
        "bbox": BBOX,
        "start": DATETIME,
        "end": DATETIME,
        "level": {"type": "integer", "minimum": 1, "maximum": 29},
        "limit": {"type": "integer", "minimum": 1, "default": 1000},
    },
    required=["layer", "op", "value", "bbox", "start", "end"],
    outputs={
        "total_matches": {"type": "integer"},
        "counts_per_time": {"type": "object"},
        "served_by": {"type": "string"},
    },
)

FEATURIZE = builtin(
    "featurize",
    "User math over layers reduced per time step next to the data (discovery agent, Featurize).",
    kind="agent",
    target="requests.discovery",
    inputs={
        "layers": {"type": "object"},
        "expression": {"type": "string"},
        "reducers": {"type": "array", "items": {"type": "string"}, "default": ["mean"]},
        "bbox": BBOX,
        "start": DATETIME,
        "end": DATETIME,
        "level": {"type": "integer", "minimum": 1, "maximum": 29},
    },
    required=["layers", "expression", "bbox", "start", "end"],
    outputs={
        "values": {"type": "object"},
        "mean_over_time": {"type": "object"},
        "served_by": {"type": "string"},
    },
)

_UNWIRED = "listed as a module; not yet runnable as a workflow step (no step adapter)"

REGISTER = builtin(
    "register",
    f"Ingest or register a scene (ingest agent, SceneAnnounced); {_UNWIRED}.",
    kind="agent",
    target="scenes.new",
    inputs={
        "scene_id": {"type": "string"},
        "collection": {"type": "string"},
        "hrefs": {"type": "array"},
    },
    required=["scene_id", "collection", "hrefs"],
    outputs={"layers": {"type": "array"}},
)

DATACUBE = builtin(
    "datacube",
    f"An analysis-ready datacube (Zarr) over layers (datacube agent); {_UNWIRED}.",
    kind="agent",
    target="requests.datacube",
    inputs={"modalities": {"type": "array"}, "bbox": BBOX},
    required=["modalities", "bbox"],
    outputs={"zarr_href": {"type": "string"}, "item_id": {"type": "string"}},
)

METHANE = builtin(
    "methane",
    f"Methane matched filter on a radiance scene, then plumes (methane agent); {_UNWIRED}.",
    kind="agent",
    target="methane.requests",
    inputs={"scene_id": {"type": "string"}, "href": {"type": "string"}},
    required=["scene_id", "href"],
    outputs={"plumes": {"type": "array"}, "layer": {"type": "string"}},
)

TRAIN = builtin(
    "train",
    "Federated training with Flower on the nodes that hold the data; the model is "
    "registered in STAC (collection 'models', mlm) by this node (training agent).",
    kind="agent",
    target="requests.training",
    inputs={"spec": {"type": "object"}},
    required=["spec"],
    outputs={
        "model": {"type": "string"},
        "model_href": {"type": "string"},
        "accuracy": {"type": "number"},
        "rounds": {"type": "integer"},
        "participants": {"type": "array"},
        "data_items": {"type": "array"},
        "bytes_moved": {"type": "integer"},
        "excluded": {"type": "array"},
    },
)

RUNNABLE_AGENT_MODULES = {"pixel-search", "featurize", "train"}
"""Agent modules the workflow agent has a step adapter for."""


def builtin_modules() -> list[Module]:
    """Every built-in module."""
    return [
        REGISTER,
        PIXEL_SEARCH,
        FEATURIZE,
        DATACUBE,
        METHANE,
        TRAIN,
        downscale.MODULE,
        flood.MODULE,
        stats.QUANTILES,
        predict.MODULE,
        *survey.MODULES,
        plume_patches.MODULE,
        plume_patches.CUBE,
    ]

"""The built-in modules: the node's agents as modules, and the pre-built models."""

from __future__ import annotations

from gravitas.agents.modules import downscale, flood, predict, stats, survey
from gravitas.agents.modules.model import Module, schema

BUILTIN = {"source": "built-in", "package": "gravitas"}
_BBOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
_TIME = {"type": "string", "format": "date-time"}

PIXEL_SEARCH = Module(
    name="pixel-search",
    version="1.0.0",
    description="Every pixel and time where a layer satisfies a predicate (discovery agent).",
    author="gravitas",
    lifecycle="published",
    kind="agent",
    target="requests.discovery",
    inputs=schema(
        {
            "layer": {"type": "string"},
            "op": {"type": "string", "enum": [">", ">=", "<", "<="]},
            "value": {"type": "number"},
            "bbox": _BBOX,
            "start": _TIME,
            "end": _TIME,
            "level": {"type": "integer", "minimum": 1, "maximum": 29},
            "limit": {"type": "integer", "minimum": 1, "default": 1000},
        },
        ["layer", "op", "value", "bbox", "start", "end"],
    ),
    outputs=schema(
        {
            "total_matches": {"type": "integer"},
            "counts_per_time": {"type": "object"},
            "served_by": {"type": "string"},
        }
    ),
    provenance=BUILTIN,
)

FEATURIZE = Module(
    name="featurize",
    version="1.0.0",
    description="User math over layers reduced per time step next to the data (discovery "
    "agent, Featurize).",
    author="gravitas",
    lifecycle="published",
    kind="agent",
    target="requests.discovery",
    inputs=schema(
        {
            "layers": {"type": "object"},
            "expression": {"type": "string"},
            "reducers": {"type": "array", "items": {"type": "string"}, "default": ["mean"]},
            "bbox": _BBOX,
            "start": _TIME,
            "end": _TIME,
            "level": {"type": "integer", "minimum": 1, "maximum": 29},
        },
        ["layers", "expression", "bbox", "start", "end"],
    ),
    outputs=schema(
        {
            "values": {"type": "object"},
            "mean_over_time": {"type": "object"},
            "served_by": {"type": "string"},
        }
    ),
    provenance=BUILTIN,
)

_UNWIRED = "listed as a module; not yet runnable as a workflow step (no step adapter)"

REGISTER = Module(
    name="register",
    version="1.0.0",
    description=f"Ingest or register a scene (ingest agent, SceneAnnounced); {_UNWIRED}.",
    author="gravitas",
    lifecycle="published",
    kind="agent",
    target="scenes.new",
    inputs=schema(
        {
            "scene_id": {"type": "string"},
            "collection": {"type": "string"},
            "hrefs": {"type": "array"},
        },
        ["scene_id", "collection", "hrefs"],
    ),
    outputs=schema({"layers": {"type": "array"}}),
    provenance=BUILTIN,
)

DATACUBE = Module(
    name="datacube",
    version="1.0.0",
    description=f"An analysis-ready datacube (Zarr) over layers (datacube agent); {_UNWIRED}.",
    author="gravitas",
    lifecycle="published",
    kind="agent",
    target="requests.datacube",
    inputs=schema({"modalities": {"type": "array"}, "bbox": _BBOX}, ["modalities", "bbox"]),
    outputs=schema({"zarr_href": {"type": "string"}, "item_id": {"type": "string"}}),
    provenance=BUILTIN,
)

METHANE = Module(
    name="methane",
    version="1.0.0",
    description=f"Methane matched filter on a radiance scene, then plumes (methane agent); "
    f"{_UNWIRED}.",
    author="gravitas",
    lifecycle="published",
    kind="agent",
    target="methane.requests",
    inputs=schema(
        {"scene_id": {"type": "string"}, "href": {"type": "string"}}, ["scene_id", "href"]
    ),
    outputs=schema({"plumes": {"type": "array"}, "layer": {"type": "string"}}),
    provenance=BUILTIN,
)

TRAIN = Module(
    name="train",
    version="1.0.0",
    description="Federated training with Flower on the nodes that hold the data; the model "
    "is registered in STAC (collection 'models', mlm) by this node (training agent).",
    author="gravitas",
    lifecycle="published",
    kind="agent",
    target="requests.training",
    inputs=schema({"spec": {"type": "object"}}, ["spec"]),
    outputs=schema(
        {
            "model": {"type": "string"},
            "model_href": {"type": "string"},
            "accuracy": {"type": "number"},
            "rounds": {"type": "integer"},
            "participants": {"type": "array"},
            "data_items": {"type": "array"},
            "bytes_moved": {"type": "integer"},
            "excluded": {"type": "array"},
        }
    ),
    provenance=BUILTIN,
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
    ]

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

_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"}
_HREFS = {"type": "array", "items": {"type": "string"}, "minItems": 1}

REGISTER = builtin(
    "register",
    "Index (direct), reference (external) or register for lazy onboarding a scene's files "
    "(ingest agent, SceneAnnounced on scenes.new); outputs its STAC item and the layers "
    "it indexed. Every href passes the node's href allow-list.",
    kind="agent",
    target="scenes.new",
    inputs={
        "scene_id": _ID,
        "collection": _ID,
        "hrefs": _HREFS,
        "mode": {"type": "string", "enum": ["direct", "external", "lazy"], "default": "direct"},
        "datetime": DATETIME,
        "bbox": BBOX,
        "layer": {"type": "string"},
        "categorical": {"type": "boolean"},
        "band_names": {"type": "array", "items": {"type": "string"}},
        "nodata": {"type": "number"},
        "level": {"type": "integer", "minimum": 1, "maximum": 29},
    },
    required=["scene_id", "collection", "hrefs"],
    outputs={
        "item_id": {"type": "string"},
        "collection": {"type": "string"},
        "version": {"type": "integer"},
        "mode": {"type": "string"},
        "layers": {"type": "array"},
    },
)

DATACUBE = builtin(
    "datacube",
    "An AI-ready datacube (Zarr or NetCDF) of patches over harmonized modalities with "
    "labels and a train/val/test split, registered as a STAC collection (datacube agent, "
    "DatacubeRequested).",
    kind="agent",
    target="requests.datacube",
    inputs={
        "modalities": {"type": "array", "items": {"type": "object"}, "minItems": 1},
        "bbox": BBOX,
        "start": DATETIME,
        "end": DATETIME,
        "level": {"type": "integer", "minimum": 1, "maximum": 29},
        "resolution_deg": {"type": "number", "exclusiveMinimum": 0},
        "time_step_s": {"type": "number", "exclusiveMinimum": 0},
        "patch_size": {"type": "integer", "minimum": 8, "maximum": 4096},
        "stride": {"type": "integer", "minimum": 1},
        "min_valid_fraction": {"type": "number", "minimum": 0, "maximum": 1},
        "label": {"type": "object"},
        "sampling": {"type": "string", "enum": ["none", "balanced"]},
        "split": {"type": "object"},
        "spatial_split": {"type": "boolean"},
        "seed": {"type": "integer"},
        "output_format": {"type": "string", "enum": ["zarr", "netcdf"]},
        "gap_fill": {"type": "string", "enum": ["interpolate", "forest", "boosting"]},
    },
    required=["modalities", "bbox", "start", "end"],
    outputs={
        "collection_id": {"type": "string"},
        "zarr_href": {"type": "string"},
        "hrefs": {"type": "object"},
        "counts": {"type": "object"},
        "class_counts": {"type": "object"},
        "gap_filled_fraction": {"type": "number"},
    },
)

METHANE = builtin(
    "methane",
    "Methane matched filter on a radiance scene (EMIT NetCDF or ENVI with a GLT), then "
    "plumes; the enhancement is a COG, a STAC item and the pixel layer ch4_enhancement "
    "(methane agent, MethaneRequested). The href passes the node's href allow-list.",
    kind="agent",
    target="methane.requests",
    inputs={
        "scene_id": _ID,
        "href": {"type": "string"},
        "iterations": {"type": "integer", "minimum": 1, "maximum": 500},
        "window_nm": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                      "maxItems": 2},
        "sparse": {"type": "boolean"},
        "albedo_correction": {"type": "boolean"},
        "plume_threshold_ppm_m": {"type": "number", "exclusiveMinimum": 0},
        "plume_min_pixels": {"type": "integer", "minimum": 1},
    },
    required=["scene_id", "href"],
    outputs={
        "item_id": {"type": "string"},
        "collection": {"type": "string"},
        "scene_id": {"type": "string"},
        "cog_href": {"type": "string"},
        "layer": {"type": "string"},
        "plume_count": {"type": "integer"},
        "plumes": {"type": "array"},
        "max_ppm_m": {"type": "number"},
        "background_mean_ppm_m": {"type": "number"},
    },
)  # fmt: skip

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

RUNNABLE_AGENT_MODULES = {"pixel-search", "featurize", "train", "datacube", "methane", "register"}
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

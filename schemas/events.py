"""Every event that travels on a gravitas topic (ARCHITECTURE.md section 2).

Each class carries a ``type`` literal so a topic that carries several kinds of event
(``requests.discovery``, ``stac.registrations``, ``methane.enhanced``) decodes into the
right class, and ``KEY_FIELD`` names the field that keys it on its topic.
"""

from __future__ import annotations

import base64
import math
import re
import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gravitas.schemas.base import Event
from gravitas.schemas.common import BBox, CrsString, Href, SearchBBox, TimeRange, UtcDatetime

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
LAYER_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
DEADLETTER_PAYLOAD_BYTES = 64 * 1024
"""A dead-letter record keeps at most this many bytes of the rejected record."""
REASON_MAX = 4000
"""Longer reasons are cut (a reason may quote a whole bad input)."""

SceneFormat = Literal[
    "auto", "geotiff", "jp2", "netcdf", "grib", "emit-l1b", "envi", "gpkg", "geojson", "shapefile"
]
DataMode = Literal["direct", "external", "lazy"]
MaskConvention = Literal["fmask", "qa_pixel", "hls_fmask", "scl", "valid_nonzero", "valid_zero"]
"""Which values of a quality mask hide pixels (see ``gravitas.storage.readers.masks``)."""
Reducer = Literal[
    "min",
    "max",
    "mean",
    "std",
    "count",
    "sum",
    "q05",
    "q25",
    "q50",
    "q75",
    "q95",
    "trend",
    "extremes",
]
ReduceOver = Literal["space", "time", "space-time"]
"""``space``: one value per time step; ``time``: one raster per reducer (per pixel);
``space-time``: one value over the whole window."""


# --------------------------------------------------------------------------- scenes


class SceneAnnounced(Event):
    """A scene (one or more files) is available: index it (direct), reference it, or
    register it for lazy onboarding."""

    TYPE: ClassVar[str] = "scene.announced"
    KEY_FIELD: ClassVar[str] = "scene_id"
    type: Literal["scene.announced"] = "scene.announced"

    scene_id: str = Field(pattern=ID_PATTERN)
    collection: str = Field(pattern=ID_PATTERN)
    hrefs: list[Href] = Field(min_length=1)
    bbox: BBox | None = None
    datetime: UtcDatetime | None = None
    format: SceneFormat = "auto"
    mode: DataMode = "direct"
    layer: str | None = Field(default=None, pattern=LAYER_PATTERN)
    """Layer name prefix; multi-band scenes become ``<layer>_<band>``."""
    bands: list[str] | None = None
    categorical: bool = False
    """Categorical layers (labels, masks) are warped with nearest resampling."""
    mask_href: Href | None = None
    """Optional quality mask (e.g. Landsat Fmask) applied before indexing."""
    mask_convention: MaskConvention = "fmask"
    """How ``mask_href``'s values are read (Fmask classes, QA_PIXEL bits, SCL, ...)."""
    band_names: list[str] | None = None
    """The band of each href (same order), e.g. from a STAC item's asset keys; default:
    from each file's product name (``..._B04.jp2`` -> ``b04``)."""
    nodata: float | None = None
    """Fill value of data files that carry no nodata tag (default: their product's
    convention, e.g. 0 for Landsat Level-1 and Sentinel-2 bands)."""
    band_nodata: list[float | None] | None = None
    """Per href (same order), overriding ``nodata``: e.g. a STAC item's ``raster:bands``."""
    crs: CrsString | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    level: int | None = Field(default=None, ge=1, le=29)
    """Grid level to index at; default: each band's native level."""
    request_id: str | None = Field(default=None, pattern=ID_PATTERN)
    reply_topic: Literal["workflows.runs"] | None = None
    """Set by a workflow step: the ingest agent also answers there (``SceneAccepted``)."""

    @model_validator(mode="after")
    def _bands_match_hrefs(self) -> SceneAnnounced:
        if self.band_names is not None:
            if len(self.band_names) != len(self.hrefs):
                raise ValueError(
                    f"band_names has {len(self.band_names)} names for {len(self.hrefs)} hrefs; "
                    "give one band name per href"
                )
            bad = [b for b in self.band_names if not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,49}", b)]
            if bad:
                raise ValueError(f"band names must be short words, got {bad[:3]}")
            if len({b.lower() for b in self.band_names}) != len(self.band_names):
                raise ValueError(f"band_names repeat a band: {self.band_names}")
        if self.band_nodata is not None and len(self.band_nodata) != len(self.hrefs):
            raise ValueError(
                f"band_nodata has {len(self.band_nodata)} values for {len(self.hrefs)} hrefs"
            )
        for value in [self.nodata, *(self.band_nodata or [])]:
            if value is not None and math.isinf(value):
                raise ValueError(f"nodata must be a finite number or NaN, got {value}")
        return self


class OnboardRequested(Event):
    """A request needs a lazily registered scene: import and index it now."""

    TYPE: ClassVar[str] = "onboard.requested"
    KEY_FIELD: ClassVar[str] = "scene_id"
    type: Literal["onboard.requested"] = "onboard.requested"

    scene_id: str = Field(pattern=ID_PATTERN)
    collection: str = Field(pattern=ID_PATTERN)
    item_id: str = Field(pattern=ID_PATTERN)
    requested_by: str = Field(pattern=ID_PATTERN)
    """The id of the request that is waiting for the scene."""


class OnboardingDone(Event):
    """An item asked for by ``requested_by`` is onboarded (or already was)."""

    TYPE: ClassVar[str] = "onboard.done"
    KEY_FIELD: ClassVar[str] = "scene_id"
    type: Literal["onboard.done"] = "onboard.done"

    scene_id: str = Field(pattern=ID_PATTERN)
    collection: str = Field(pattern=ID_PATTERN)
    item_id: str = Field(pattern=ID_PATTERN)
    requested_by: str = Field(pattern=ID_PATTERN)


class OnboardingFailed(Event):
    """Onboarding an item for ``requested_by`` failed; ``cause`` says why."""

    TYPE: ClassVar[str] = "onboard.failed"
    KEY_FIELD: ClassVar[str] = "scene_id"
    type: Literal["onboard.failed"] = "onboard.failed"

    scene_id: str = Field(pattern=ID_PATTERN)
    collection: str = Field(pattern=ID_PATTERN)
    item_id: str = Field(pattern=ID_PATTERN)
    requested_by: str = Field(pattern=ID_PATTERN)
    error_class: str
    cause: str


class ParkedItem(BaseModel):
    """One item a parked request waits for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collection: str = Field(pattern=ID_PATTERN)
    item_id: str = Field(pattern=ID_PATTERN)


class RequestParked(Event):
    """A request waits for onboarding: resume it (re-publish ``request`` on ``topic``)
    once every item in ``waiting`` is onboarded for it, or answer it as failed."""

    TYPE: ClassVar[str] = "request.parked"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["request.parked"] = "request.parked"

    request_id: str = Field(pattern=ID_PATTERN)
    topic: str = Field(pattern=r"^[a-z][a-z0-9_.]{0,99}$")
    """The logical topic the request is re-published on."""
    request: dict[str, Any]
    """The request event as JSON."""
    waiting: list[ParkedItem] = Field(min_length=1)


class BlocksIndexed(Event):
    """Blocks of one layer, level and timestamp were written to the pixel store."""

    TYPE: ClassVar[str] = "blocks.indexed"
    KEY_FIELD: ClassVar[str] = "partition_key"
    type: Literal["blocks.indexed"] = "blocks.indexed"

    partition_key: str
    """``layer/time/top-level/ancestor``: one writer per overview pyramid."""
    scene_id: str = Field(pattern=ID_PATTERN)
    layer: str = Field(pattern=LAYER_PATTERN)
    level: int = Field(ge=1, le=29)
    timestamp: UtcDatetime
    mortons: list[int] = Field(min_length=1)
    valid_pixels: int = Field(ge=0)
    pyramids: int = Field(default=1, ge=1)
    """How many ``BlocksIndexed`` this indexing of the scene emitted (one per pyramid)."""
    onboards: tuple[str, str] | None = None
    """``(collection, item id)`` to finish (flag onboarded, or note an external read)
    once all ``pyramids`` are built."""
    round_id: str | None = Field(default=None, pattern=ID_PATTERN)
    """The id of the event that staged these blocks (a scene, an onboarding request):
    the item is finished once per round."""
    requested_by: str | None = Field(default=None, pattern=ID_PATTERN)
    """The request waiting for the item: answered ``OnboardingDone`` when it is finished."""

    @field_validator("onboards")
    @classmethod
    def _ids(cls, v: tuple[str, str] | None) -> tuple[str, str] | None:
        if v is not None and not all(re.match(ID_PATTERN, part) for part in v):
            raise ValueError(f"onboards {v!r} is not a (collection, item id) pair of ids")
        return v


class OverviewsUpdated(Event):
    """Overview statistics of a layer were recomputed up to ``top_level``."""

    TYPE: ClassVar[str] = "overviews.updated"
    KEY_FIELD: ClassVar[str] = "layer"
    type: Literal["overviews.updated"] = "overviews.updated"

    layer: str = Field(pattern=LAYER_PATTERN)
    timestamp: UtcDatetime
    base_level: int = Field(ge=1, le=29)
    top_level: int = Field(ge=1, le=29)
    blocks_updated: int = Field(ge=0)
    scene_id: str | None = Field(default=None, pattern=ID_PATTERN)
    """The scene whose blocks were merged (None for older events)."""


class Progress(Event):
    """Progress of a long request (onboarding, datacube, methane)."""

    TYPE: ClassVar[str] = "progress"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["progress"] = "progress"

    request_id: str = Field(pattern=ID_PATTERN)
    stage: str
    fraction: float = Field(ge=0.0, le=1.0)
    message: str = ""


# --------------------------------------------------------------------------- methane


class MethaneRequested(Event):
    """Run the methane matched filter on a hyperspectral radiance scene."""

    TYPE: ClassVar[str] = "methane.requested"
    KEY_FIELD: ClassVar[str] = "scene_id"
    type: Literal["methane.requested"] = "methane.requested"

    request_id: str = Field(pattern=ID_PATTERN)
    scene_id: str = Field(pattern=ID_PATTERN)
    href: Href
    iterations: int = Field(default=30, ge=1, le=500)
    window_nm: tuple[float, float] = (2122.0, 2488.0)
    sparse: bool = True
    albedo_correction: bool = True
    plume_threshold_ppm_m: float | None = Field(default=None, gt=0)
    """None: the detection levels come from the scene's own noise (kernels/plumes.py)."""
    plume_min_pixels: int = Field(default=5, ge=1)
    reply_topic: Literal["workflows.runs"] | None = None
    """Set by a workflow step: the methane agent also answers there (``MethaneResult``)."""

    @model_validator(mode="after")
    def _window(self) -> MethaneRequested:
        lo, hi = self.window_nm
        if not 300.0 <= lo < hi <= 2600.0:
            raise ValueError(f"window_nm must satisfy 300 <= lo < hi <= 2600, got {self.window_nm}")
        return self


class MethaneEnhanced(Event):
    """The enhancement layer of one scene is ready (COG, STAC item, pixel layer)."""

    TYPE: ClassVar[str] = "methane.enhanced"
    KEY_FIELD: ClassVar[str] = "scene_id"
    type: Literal["methane.enhanced"] = "methane.enhanced"

    request_id: str = Field(pattern=ID_PATTERN)
    scene_id: str = Field(pattern=ID_PATTERN)
    cog_href: Href
    item_id: str
    layer: str = "ch4_enhancement"
    background_mean_ppm_m: float
    max_ppm_m: float
    plume_count: int = Field(ge=0)


class PlumeDetected(Event):
    """One connected methane plume of a retrieval."""

    TYPE: ClassVar[str] = "methane.plume"
    KEY_FIELD: ClassVar[str] = "scene_id"
    type: Literal["methane.plume"] = "methane.plume"

    request_id: str = Field(pattern=ID_PATTERN)
    scene_id: str = Field(pattern=ID_PATTERN)
    plume_id: str
    geometry: dict[str, Any]
    """GeoJSON polygon in EPSG:4326."""
    max_ppm_m: float
    mean_ppm_m: float
    area_m2: float = Field(ge=0)
    ime_kg: float


# --------------------------------------------------------------------------- datacubes


WHERE_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
"""Comparisons a :attr:`Modality.where` property filter may use."""


class Modality(BaseModel):
    """One input of a datacube: a collection or layer, its bands and how to resample."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=LAYER_PATTERN)
    collection: str | None = Field(default=None, pattern=ID_PATTERN)
    layers: list[str] = Field(min_length=1)
    resampling: Literal["nearest", "average", "bilinear"] = "average"
    aggregation: Literal["mean", "max", "min", "sum", "nearest"] = "mean"
    time_tolerance_s: float = Field(default=86400.0, ge=0)
    max_cloud_cover: float | None = Field(default=None, ge=0, le=100)
    quality_layer: str | None = None
    max_nodata_fraction: float = Field(default=0.5, ge=0, le=1)
    where: dict[str, Any] = Field(default_factory=dict)
    """Property filters on this modality's STAC items: a property name maps to a value
    (equality) or to ``{op: value}`` with op in ``== != < <= > >= in, not in``, e.g.
    ``{"platform": "landsat-7", "view:off_nadir": {"<": 10}}``. A pair whose scene fails
    one (or lacks the property) is dropped, and the drop report names the test."""

    @field_validator("where")
    @classmethod
    def _known_comparisons(cls, where: dict[str, Any]) -> dict[str, Any]:
        for key, cond in where.items():
            if isinstance(cond, dict):
                bad = sorted(set(cond) - set(WHERE_OPS))
                if bad or not cond:
                    raise ValueError(
                        f"where[{key!r}]: unknown comparison(s) {bad or '(none given)'}; use "
                        f"one or more of {list(WHERE_OPS)}"
                    )
        return where


class LabelSpec(BaseModel):
    """A categorical label layer joined to every patch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layer: str = Field(pattern=LAYER_PATTERN)
    property: str | None = None
    nodata: int = 0


class SplitRatios(BaseModel):
    """Train / validation / test fractions; they must add up to 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train: float = Field(default=0.7, ge=0, le=1)
    val: float = Field(default=0.15, ge=0, le=1)
    test: float = Field(default=0.15, ge=0, le=1)

    @model_validator(mode="after")
    def _sum(self) -> SplitRatios:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"split ratios must sum to 1, got train={self.train} + val={self.val} + "
                f"test={self.test} = {total:g}"
            )
        return self


class DatacubeRequested(Event):
    """Harmonize several modalities into an AI-ready datacube."""

    TYPE: ClassVar[str] = "datacube.requested"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["datacube.requested"] = "datacube.requested"

    request_id: str = Field(pattern=ID_PATTERN)
    modalities: list[Modality] = Field(min_length=1)
    bbox: BBox
    time: TimeRange
    level: int | None = Field(default=None, ge=1, le=29)
    resolution_deg: float | None = Field(default=None, gt=0)
    time_step_s: float = Field(default=86400.0, gt=0)
    patch_size: int = Field(default=224, ge=8, le=4096)
    stride: int | None = Field(default=None, ge=1)
    min_valid_fraction: float = Field(default=0.5, ge=0, le=1)
    label: LabelSpec | None = None
    sampling: Literal["none", "balanced"] = "none"
    split: SplitRatios = Field(default_factory=SplitRatios)
    spatial_split: bool = False
    seed: int = 0
    output_format: Literal["zarr", "netcdf"] = "zarr"
    gap_fill: Literal["interpolate", "forest", "boosting"] = "interpolate"
    """How gaps are filled: linear in time then nearest in space, or a model per band
    (random forest / gradient boosting) on auxiliary features (other dates and bands)."""
    reply_topic: str = "datacubes.ready"
    routed_from: str | None = None
    """Set when another node forwarded this request here (it is never forwarded again)."""

    @model_validator(mode="after")
    def _grid(self) -> DatacubeRequested:
        if self.level is None and self.resolution_deg is None:
            raise ValueError("give either level (1..29) or resolution_deg for the common grid")
        return self


class DatacubeReady(Event):
    """A datacube was written and registered, or the request failed (``status``)."""

    TYPE: ClassVar[str] = "datacube.ready"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["datacube.ready"] = "datacube.ready"

    request_id: str = Field(pattern=ID_PATTERN)
    status: Literal["ok", "failed"] = "ok"
    collection_id: str | None = None
    hrefs: dict[str, str] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    class_counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    gap_filled_fraction: float = Field(default=0.0, ge=0, le=1)
    failed_step: str | None = None
    error: str | None = None


# --------------------------------------------------------------------------- discovery


class Predicate(BaseModel):
    """A pixel predicate: ``value OP threshold`` or ``low <= value <= high``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal[">", ">=", "<", "<=", "between"]
    value: float
    high: float | None = None

    @model_validator(mode="after")
    def _between(self) -> Predicate:
        if self.op == "between":
            if self.high is None:
                raise ValueError("predicate 'between' needs high (value <= x <= high)")
            if self.high < self.value:
                raise ValueError(
                    f"predicate 'between' needs value <= high, got {self.value} > {self.high}"
                )
        return self


class PixelSearch(Event):
    """Find every pixel and time where a layer satisfies a predicate."""

    TYPE: ClassVar[str] = "discovery.pixel_search"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["discovery.pixel_search"] = "discovery.pixel_search"

    request_id: str = Field(pattern=ID_PATTERN)
    layer: str = Field(pattern=LAYER_PATTERN)
    predicate: Predicate
    bbox: SearchBBox
    """West > east crosses the antimeridian (both sides are searched)."""
    time: TimeRange
    level: int | None = Field(default=None, ge=1, le=29)
    limit: int = Field(default=10_000, ge=1, le=10_000_000)
    reply_topic: str = "discovery.results"
    routed_from: str | None = None
    """Set when another node forwarded this request here (it is never forwarded again)."""


class ModelSpec(BaseModel):
    """A tree model trained next to the data on band features (the request's layers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["tree", "forest"] = "tree"
    labels: str = Field(min_length=1, max_length=2000)
    """A label layer name, or a vector file href (GeoPackage/GeoJSON) the href policy admits."""
    label_field: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    """The vector attribute holding the class (vector labels only)."""
    max_depth: int | None = Field(default=None, ge=1, le=64)
    n_estimators: int = Field(default=100, ge=1, le=500)
    test_fraction: float = Field(default=0.3, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0)
    max_samples: int = Field(default=200_000, ge=10, le=2_000_000)
    predict: bool = False
    """Also write the predicted class raster and register it in STAC."""


class Featurize(Event):
    """Evaluate user math and reducers next to the data; only results travel."""

    TYPE: ClassVar[str] = "discovery.featurize"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["discovery.featurize"] = "discovery.featurize"

    request_id: str = Field(pattern=ID_PATTERN)
    layers: dict[str, str] = Field(default_factory=dict)
    """Variable name in ``expression`` -> layer name."""
    expression: str = Field(default="", max_length=2000)
    """User math over ``layers`` (or empty when ``process_graph`` is given)."""
    process_graph: dict[str, Any] | None = None
    """An openEO process graph instead of ``expression`` (run by gravitas.agents.graphs;
    its load_collection nodes name the data, ``bbox``/``time`` are not applied)."""
    reducers: list[Reducer] = Field(default_factory=lambda: list[Reducer](["mean"]))
    bbox: BBox
    time: TimeRange
    level: int | None = Field(default=None, ge=1, le=29)
    reply_topic: str = "discovery.results"
    over: ReduceOver = "space"
    quantiles: list[float] = Field(default_factory=list, max_length=50)
    """Extra quantiles, each in (0, 1) (reported as ``q<value>``, e.g. ``q0.9``)."""
    top_k: int = Field(default=10, ge=1, le=10_000)
    """How many pixels the ``extremes`` reducer reports (largest values, with where/when)."""
    model: ModelSpec | None = None
    """Train a decision tree / random forest instead of reducing (see ModelSpec)."""
    routed_from: str | None = None
    """Set when another node forwarded this request here (it is never forwarded again)."""

    @field_validator("quantiles")
    @classmethod
    def _open_unit(cls, qs: list[float]) -> list[float]:
        bad = [q for q in qs if not 0.0 < q < 1.0]
        if bad:
            raise ValueError(f"quantiles must lie in (0, 1), got {bad}")
        return qs

    @model_validator(mode="after")
    def _expression_or_graph(self) -> Featurize:
        if bool(self.expression.strip()) == (self.process_graph is not None):
            raise ValueError("give either expression (with layers) or process_graph")
        if self.expression and not self.layers:
            raise ValueError("an expression needs layers: {variable: layer}")
        if self.process_graph is not None and len(orjson.dumps(self.process_graph)) > 256_000:
            raise ValueError("process_graph is larger than 256 kB")
        return self


class PixelMatch(BaseModel):
    """One matching pixel of a search."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lon: float
    lat: float
    time: datetime
    value: float


class SearchResult(Event):
    """The answer to a :class:`PixelSearch` (or its failure)."""

    TYPE: ClassVar[str] = "discovery.search_result"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["discovery.search_result"] = "discovery.search_result"

    request_id: str = Field(pattern=ID_PATTERN)
    status: Literal["ok", "failed"] = "ok"
    matches: list[PixelMatch] = Field(default_factory=list)
    total_matches: int = 0
    counts_per_time: dict[str, int] = Field(default_factory=dict)
    blocks_read: int = 0
    blocks_total: int = 0
    truncated: bool = False
    served_by: str = ""
    error: str | None = None
    result_ref: str | None = None
    """Object-store key of the whole result (JSON) when it was too large to travel
    inline (``GRAVITAS_INLINE_RESULT_BYTES``); ``matches`` is then empty."""
    result_sha256: str | None = None
    result_bytes: int = 0


class FeatureResult(Event):
    """The answer to a :class:`Featurize` request."""

    TYPE: ClassVar[str] = "discovery.feature_result"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["discovery.feature_result"] = "discovery.feature_result"

    request_id: str = Field(pattern=ID_PATTERN)
    status: Literal["ok", "failed"] = "ok"
    values: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per time step (ISO string) the reducer values."""
    served_by: str = ""
    error: str | None = None
    result_ref: str | None = None
    """A process graph's raster result in the object store (``results/<id>.<ext>``)."""
    result_format: str | None = None
    result_sha256: str | None = None
    result_bytes: int | None = None
    extremes: list[PixelMatch] = Field(default_factory=list)
    """The top-k pixels (largest values) with where and when."""
    outputs: dict[str, str] = Field(default_factory=dict)
    """Large results by reference: output name -> object-store href (rasters, models)."""
    item_id: str | None = None
    """The STAC item (collection ``features``) that registers ``outputs``."""
    model: dict[str, Any] | None = None
    """A trained model's metrics, confusion matrix, classes and feature importances."""


# --------------------------------------------------------------------------- catalog


class ItemRegistered(Event):
    """A STAC item was registered (or updated) on its owning node."""

    TYPE: ClassVar[str] = "stac.item_registered"
    KEY_FIELD: ClassVar[str] = "item_id"
    type: Literal["stac.item_registered"] = "stac.item_registered"

    item_id: str = Field(pattern=ID_PATTERN)
    collection: str = Field(pattern=ID_PATTERN)
    item: dict[str, Any]
    """The full STAC item as JSON."""
    owning_node: str
    api_url: str
    asset_base_url: str = ""
    version: int = Field(default=1, ge=1)
    signature: str = Field(default="", max_length=200)
    """Base64 Ed25519 signature by the owning node (see :mod:`gravitas.agents.signing`)."""

    @model_validator(mode="after")
    def _item(self) -> ItemRegistered:
        if self.item.get("type") != "Feature":
            raise ValueError(f"item must be a STAC Feature, got type={self.item.get('type')!r}")
        if self.item.get("id") != self.item_id:
            raise ValueError(
                f"item id {self.item.get('id')!r} differs from item_id {self.item_id!r}"
            )
        return self


class ItemRetracted(Event):
    """A STAC item was withdrawn by its owning node."""

    TYPE: ClassVar[str] = "stac.item_retracted"
    KEY_FIELD: ClassVar[str] = "item_id"
    type: Literal["stac.item_retracted"] = "stac.item_retracted"

    item_id: str = Field(pattern=ID_PATTERN)
    collection: str = Field(pattern=ID_PATTERN)
    owning_node: str
    version: int = Field(default=1, ge=1)
    signature: str = Field(default="", max_length=200)
    """Base64 Ed25519 signature by the owning node (see :mod:`gravitas.agents.signing`)."""


# --------------------------------------------------------------------------- openEO jobs

JobStatus = Literal["queued", "running", "finished", "error", "canceled"]


class OpenEOJobRequested(Event):
    """Run an openEO batch job (its graph with user-defined processes inlined)."""

    TYPE: ClassVar[str] = "openeo.job_requested"
    KEY_FIELD: ClassVar[str] = "job_id"
    type: Literal["openeo.job_requested"] = "openeo.job_requested"

    job_id: str = Field(pattern=ID_PATTERN)
    run_id: str = Field(pattern=ID_PATTERN)
    """One start of the job (a restarted job gets a new run; replays keep theirs)."""
    user: str = Field(pattern=r"^[A-Za-z0-9_.~-]{1,80}$")
    process_graph: dict[str, Any]


class OpenEOJobUpdate(Event):
    """Progress, success or failure of one run of an openEO batch job."""

    TYPE: ClassVar[str] = "openeo.job_update"
    KEY_FIELD: ClassVar[str] = "job_id"
    type: Literal["openeo.job_update"] = "openeo.job_update"

    job_id: str = Field(pattern=ID_PATTERN)
    run_id: str = Field(pattern=ID_PATTERN)
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    message: str = Field(default="", max_length=REASON_MAX)
    result_key: str | None = None
    """Object-store key of the result file (finished runs)."""
    error_code: str | None = None


# --------------------------------------------------------------------------- operations


class Ping(Event):
    """A liveness probe that travels through a node's whole event path."""

    TYPE: ClassVar[str] = "ops.ping"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["ops.ping"] = "ops.ping"

    request_id: str = Field(pattern=ID_PATTERN)
    payload: str = Field(default="", max_length=65536)
    sent_at_ns: int = 0
    fail: str | None = None
    """If set, the ping agent raises this error class name on purpose (fault drills)."""
    effect: bool = True
    """Record the ping in the effect ledger (off for pure pass-through benchmarks)."""


class Pong(Event):
    """The ping agent's answer."""

    TYPE: ClassVar[str] = "ops.pong"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["ops.pong"] = "ops.pong"

    request_id: str = Field(pattern=ID_PATTERN)
    ping_id: uuid.UUID
    payload: str = ""
    sent_at_ns: int = 0
    served_by: str = ""


def _event_id_of(payload: bytes) -> str:
    """The ``event_id`` of JSON event bytes, or "" when they have none."""
    try:
        data = orjson.loads(payload)
        return str(uuid.UUID(str(data["event_id"]))) if isinstance(data, dict) else ""
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
        return ""


class Rejected(Event):
    """An input that could not be processed, with the reason (the dead-letter record)."""

    TYPE: ClassVar[str] = "deadletter.rejected"
    KEY_FIELD: ClassVar[str] = "source_key"
    type: Literal["deadletter.rejected"] = "deadletter.rejected"

    source_topic: str
    source_partition: int = -1
    source_offset: int = -1
    source_key: str = ""
    payload_b64: str
    """The original bytes, base64 encoded (they may not be valid UTF-8); only the first
    ``max_payload`` bytes of a large record (``payload_truncated``)."""
    payload_size: int = Field(default=0, ge=0)
    """Size of the original record in bytes."""
    payload_truncated: bool = False
    error_class: str
    reason: str = Field(max_length=REASON_MAX)
    agent: str = ""
    attempts: int = Field(default=1, ge=1)
    source_event_id: str = ""
    """``event_id`` of the rejected event when it had one: a client that published it
    learns of the rejection at once (:meth:`gravitas.streams.client.Client.request`)."""

    @field_validator("reason", mode="before")
    @classmethod
    def _short_reason(cls, value: object) -> object:
        if isinstance(value, str) and len(value) > REASON_MAX:
            return value[: REASON_MAX - 20] + " ... (truncated)"
        return value

    @classmethod
    def for_payload(
        cls, payload: bytes, max_payload: int = DEADLETTER_PAYLOAD_BYTES, **fields: Any
    ) -> Rejected:
        """Build a record around the original bytes, keeping at most ``max_payload`` of
        them so the record itself always fits on the broker (``source_event_id`` is read
        from them when they are an event with an id)."""
        fields.setdefault("source_event_id", _event_id_of(payload))
        kept = payload[:max_payload]
        return cls(
            payload_b64=base64.b64encode(kept).decode("ascii"),
            payload_size=len(payload),
            payload_truncated=len(kept) < len(payload),
            **fields,
        )

    def payload(self) -> bytes:
        """The original bytes."""
        return base64.b64decode(self.payload_b64)


ALL_EVENTS: tuple[type[Event], ...] = (
    SceneAnnounced,
    OnboardRequested,
    OnboardingDone,
    OnboardingFailed,
    RequestParked,
    BlocksIndexed,
    OverviewsUpdated,
    Progress,
    MethaneRequested,
    MethaneEnhanced,
    PlumeDetected,
    DatacubeRequested,
    DatacubeReady,
    PixelSearch,
    Featurize,
    SearchResult,
    FeatureResult,
    ItemRegistered,
    ItemRetracted,
    OpenEOJobRequested,
    OpenEOJobUpdate,
    Ping,
    Pong,
    Rejected,
)

"""Events of federated training (``requests.training``, ``training.invitations``,
``models.trained``).

A user sends :class:`TrainingRequested` to a node, which becomes the coordinator: it
runs the Flower server and publishes a signed :class:`TrainingInvitation` on the
federation topic; every invited node builds its datacube locally and joins as a Flower
client. The coordinator announces :class:`ModelTrained` when the rounds are done.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gravitas.schemas.base import Event
from gravitas.schemas.events import ID_PATTERN, DatacubeRequested

HYPERPARAMETERS = {
    "linear": {"alpha", "learning_rate", "decay"},
    "mlp": {"alpha", "learning_rate", "decay", "hidden", "layers"},
}
"""The hyperparameters each model family accepts."""

SAMPLES = ("time_mean", "per_time")
"""How a participant turns its cube into samples (see :attr:`TrainingSpec.samples`)."""


class TrainingSpec(BaseModel):
    """What to train, on which local datacubes, with which federated strategy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: Literal["linear", "mlp"] = "linear"
    """``linear``: scikit-learn SGDClassifier (log loss); ``mlp``: MLPClassifier."""
    hyperparameters: dict[str, float] = Field(default_factory=dict)
    datacube: DatacubeRequested
    """The cube every participant builds from its own data (its bbox is the area of
    interest; each participant keeps to the part its own scenes cover). Needs a label."""
    classes: list[int] = Field(min_length=2, max_length=256)
    """Every class code of the label layer: participants may hold only some of them."""
    samples: Literal["time_mean", "per_time"] = "time_mean"
    """``time_mean``: one sample per pixel, the bands averaged over the time steps, the
    label read once (static labels, e.g. land-cover polygons). ``per_time``: one sample
    per (pixel, time step) where the pixel was observed, the label read at that time
    step from a label layer with time (e.g. Landsat Fmask classes); a static (vector)
    label holds at every step. Pixels whose label is the label's ``nodata`` are left out."""
    feature_scale: float = Field(default=1e-4, gt=0)
    """Pixel values are multiplied by this (1e-4: Sentinel-2/Landsat DN to reflectance)."""
    participants: list[str] | None = Field(default=None, max_length=64)
    """Node ids; default every node whose catalog holds the cube's collections."""
    rounds: int = Field(default=5, ge=1, le=200)
    strategy: Literal["fedavg", "fedprox"] = "fedavg"
    proximal_mu: float = Field(default=0.0, ge=0, le=100)
    local_epochs: int = Field(default=1, ge=1, le=100)
    min_participants: int = Field(default=1, ge=1, le=64)
    max_pixels: int = Field(default=200_000, ge=100, le=10_000_000)
    """Training pixels a participant samples from its cube at most."""
    seed: int = 0
    round_timeout_s: float = Field(default=600.0, gt=0, le=86400)

    @field_validator("hyperparameters")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        for k, v in value.items():
            if not (-1e9 < float(v) < 1e9):
                raise ValueError(f"hyperparameter {k!r} = {v!r} is not a finite number")
        return value

    @field_validator("samples", mode="before")
    @classmethod
    def _known_samples(cls, value: object) -> object:
        if value not in SAMPLES:
            raise ValueError(f"samples {value!r} is not one of {list(SAMPLES)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainingSpec:
        unknown = set(self.hyperparameters) - HYPERPARAMETERS[self.model]
        if unknown:
            raise ValueError(
                f"hyperparameters {sorted(unknown)} do not apply to model {self.model!r}; "
                f"it takes {sorted(HYPERPARAMETERS[self.model])}"
            )
        if self.datacube.label is None:
            raise ValueError("datacube.label is required: training needs labelled pixels")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes {self.classes} repeat a code")
        if self.datacube.label.nodata in self.classes:
            raise ValueError(
                f"classes {self.classes} include the label's nodata "
                f"{self.datacube.label.nodata}, whose pixels are left out; set "
                "datacube.label.nodata to a code outside the classes (255 for Fmask)"
            )
        if self.strategy == "fedprox" and self.proximal_mu <= 0:
            raise ValueError("strategy fedprox needs proximal_mu > 0 (e.g. 0.1)")
        if self.participants is not None and self.min_participants > len(self.participants):
            raise ValueError(
                f"min_participants {self.min_participants} exceeds the "
                f"{len(self.participants)} participants named"
            )
        return self


class TrainingRequested(Event):
    """Train a model across the federation; the node that receives it coordinates."""

    TYPE: ClassVar[str] = "training.requested"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["training.requested"] = "training.requested"

    request_id: str = Field(pattern=ID_PATTERN)
    spec: TrainingSpec
    reply_topic: str = "models.trained"


class TrainingInvitation(Event):
    """Signed by the coordinator: join training ``request_id`` at its Flower server."""

    TYPE: ClassVar[str] = "training.invitation"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["training.invitation"] = "training.invitation"

    request_id: str = Field(pattern=ID_PATTERN)
    coordinator: str = Field(pattern=ID_PATTERN)
    participants: list[str] = Field(min_length=1, max_length=64)
    server_port: int = Field(ge=1, le=65535)
    """The host is the coordinator's configured peer address, never taken from here."""
    spec: TrainingSpec
    signature: str = Field(default="", max_length=200)


class RoundMetrics(BaseModel):
    """The evaluation of one round (weighted over the participants' test splits)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    round: int
    accuracy: float
    loss: float
    per_node: dict[str, float] = Field(default_factory=dict)
    fit_nodes: list[str] = Field(default_factory=list)


class ModelTrained(Event):
    """The outcome of a training request: the model, its metrics and provenance."""

    TYPE: ClassVar[str] = "training.model_trained"
    KEY_FIELD: ClassVar[str] = "request_id"
    type: Literal["training.model_trained"] = "training.model_trained"

    request_id: str = Field(pattern=ID_PATTERN)
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    coordinator: str = ""
    participants: list[str] = Field(default_factory=list)
    rounds: list[RoundMetrics] = Field(default_factory=list)
    excluded: list[str] = Field(default_factory=list)
    """Updates left out, each ``round N node X: reason``."""
    model_href: str | None = None
    """The fitted model in skops format (never pickle)."""
    item_id: str | None = None
    """The model's STAC item (``mlm`` extension) in collection ``models``."""
    data_items: list[str] = Field(default_factory=list)
    """STAC item ids the participants trained on."""
    bytes_moved: int = 0
    """Parameter bytes that crossed between coordinator and participants."""

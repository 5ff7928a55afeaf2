"""Step adapters for agent modules: a step's inputs -> the agent's request on its topic,
and the agent's answer -> the step's outputs.

Every request carries the step instance id as its ``request_id`` and ``workflows.runs``
as its reply topic, so the workflow agent advances on the answer (a failing request is
answered ``failed`` by the agent or, when the agent gives up, by the runner's
:func:`gravitas.agents.answers.failure_answers`). Inputs the request model refuses raise
:class:`StepInputsRefused` naming the input's path; nothing is requested then.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gravitas.schemas.agent_answers import MethaneResult, SceneAccepted
from gravitas.schemas.base import Event
from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import (
    DatacubeReady,
    DatacubeRequested,
    FeatureResult,
    Featurize,
    MethaneRequested,
    PixelSearch,
    Predicate,
    SceneAnnounced,
    SearchResult,
)
from gravitas.schemas.training import ModelTrained, TrainingRequested, TrainingSpec

REPLY_TOPIC = "workflows.runs"
RUNNABLE = frozenset({"pixel-search", "featurize", "train", "datacube", "methane", "register"})
"""Agent modules with a step adapter."""


class StepInputsRefused(ValueError):
    """A step's inputs that the agent's request model refuses (``path``: the input)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"inputs{'.' if path else ''}{path}: {message}")
        self.path = path


def _validated(cls: type[Event], data: dict[str, Any], names: dict[str, str]) -> Event:
    """``cls`` from ``data``; a refusal names the step input it came from."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        if not loc:  # a check across fields: name the first input its message names
            loc = [next((k for k in sorted(data, key=len, reverse=True) if k in first["msg"]), "")]
        path = ".".join([names.get(loc[0], loc[0]), *loc[1:]]).strip(".")
        got = first.get("input")
        shown = f" (got {got!r})"[:300] if not isinstance(got, dict) else ""
        raise StepInputsRefused(path, f"{first['msg']}{shown}") from None


def _time(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"start": inputs.get("start"), "end": inputs.get("end")}


def agent_request(module: str, instance_id: str, inputs: dict[str, Any]) -> tuple[str, Event]:
    """The topic and request event of an agent-module step (pydantic validates inputs)."""
    name = module.partition("@")[0]
    if name == "train":
        return "requests.training", TrainingRequested(
            request_id=instance_id,
            spec=TrainingSpec.model_validate(inputs["spec"]),
            reply_topic=REPLY_TOPIC,
        )
    if name == "datacube":
        rest = {k: v for k, v in inputs.items() if k not in ("start", "end")}
        data = {**rest, "time": _time(inputs), "request_id": instance_id,
                "reply_topic": REPLY_TOPIC}  # fmt: skip
        return "requests.datacube", _validated(DatacubeRequested, data, {"time": "start"})
    if name == "methane":
        data = {**inputs, "request_id": instance_id, "reply_topic": REPLY_TOPIC}
        return "methane.requests", _validated(MethaneRequested, data, {})
    if name == "register":
        data = {**inputs, "request_id": instance_id, "reply_topic": REPLY_TOPIC}
        return "scenes.new", _validated(SceneAnnounced, data, {})
    time = TimeRange(start=inputs["start"], end=inputs["end"])
    if name == "pixel-search":
        return "requests.discovery", PixelSearch(
            request_id=instance_id,
            layer=inputs["layer"],
            predicate=Predicate(op=inputs["op"], value=inputs["value"]),
            bbox=tuple(inputs["bbox"]),
            time=time,
            level=inputs.get("level"),
            limit=inputs.get("limit", 1000),
            reply_topic=REPLY_TOPIC,
        )
    if name == "featurize":
        return "requests.discovery", Featurize(
            request_id=instance_id,
            layers=inputs["layers"],
            expression=inputs["expression"],
            reducers=inputs.get("reducers", ["mean"]),
            bbox=tuple(inputs["bbox"]),
            time=time,
            level=inputs.get("level"),
            reply_topic=REPLY_TOPIC,
        )
    raise ValueError(f"module {module} has no step adapter")


ANSWERED_BY: dict[type[Event], str] = {
    SearchResult: "pixel-search",
    FeatureResult: "featurize",
    ModelTrained: "train",
    DatacubeReady: "datacube",
    MethaneResult: "methane",
    SceneAccepted: "register",
}
"""The agent module each answer class answers (``StepFinished``: python modules)."""


def answers_module(answer: Event, module: str) -> bool:
    """Whether ``answer`` can be the answer of a step of ``module`` (``name@version``):
    an answer of another agent under a step's id is not that step's outcome."""
    name = module.partition("@")[0]
    expected = ANSWERED_BY.get(type(answer))
    return name not in RUNNABLE if expected is None else expected == name


def answer_outputs(answer: Event) -> tuple[str, dict[str, Any], str | None, str, int]:
    """(status, outputs, error, served_by, bytes the agent moved between nodes itself)
    of an agent's answer."""
    if isinstance(answer, SearchResult):
        outs = {
            "total_matches": answer.total_matches,
            "counts_per_time": answer.counts_per_time,
            "served_by": answer.served_by,
        }
        return answer.status, outs, answer.error, answer.served_by, 0
    if isinstance(answer, FeatureResult):
        means = {t: v["mean"] for t, v in sorted(answer.values.items()) if "mean" in v}
        outs = {"values": answer.values, "mean_over_time": means, "served_by": answer.served_by}
        return answer.status, outs, answer.error, answer.served_by, 0
    if isinstance(answer, ModelTrained):
        last = answer.rounds[-1] if answer.rounds else None
        outs = {
            "model": answer.item_id,
            "model_href": answer.model_href,
            "accuracy": last.accuracy if last else None,
            "rounds": len(answer.rounds),
            "participants": answer.participants,
            "data_items": answer.data_items,
            "bytes_moved": answer.bytes_moved,
            "excluded": answer.excluded,
        }
        return answer.status, outs, answer.error, answer.coordinator, answer.bytes_moved
    if isinstance(answer, DatacubeReady):
        error = answer.error
        if answer.status != "ok" and answer.failed_step:
            error = f"datacube step {answer.failed_step}: {answer.error}"
        outs = {
            "collection_id": answer.collection_id,
            "zarr_href": answer.hrefs.get("data"),
            "hrefs": answer.hrefs,
            "counts": answer.counts,
            "class_counts": answer.class_counts,
            "gap_filled_fraction": answer.gap_filled_fraction,
        }
        return answer.status, outs, error, answer.node_id, 0
    if isinstance(answer, MethaneResult):
        outs = {
            "item_id": answer.item_id,
            "collection": answer.collection,
            "scene_id": answer.scene_id,
            "cog_href": answer.cog_href,
            "layer": answer.layer,
            "plume_count": len(answer.plumes),
            "plumes": answer.plumes,
            "max_ppm_m": answer.max_ppm_m,
            "background_mean_ppm_m": answer.background_mean_ppm_m,
        }
        return answer.status, outs, answer.error, answer.node_id, 0
    if isinstance(answer, SceneAccepted):
        outs = {
            "item_id": answer.item_id,
            "collection": answer.collection,
            "version": answer.version,
            "mode": answer.mode,
            "layers": answer.layers,
        }
        return answer.status, outs, answer.error, answer.node_id, 0
    raise ValueError(f"{type(answer).__name__} is not a step answer")

"""Step adapters for agent modules: a step's inputs -> the agent's request, and the
agent's answer -> the step's outputs."""

from __future__ import annotations

from typing import Any

from gravitas.schemas.base import Event
from gravitas.schemas.common import TimeRange
from gravitas.schemas.events import FeatureResult, Featurize, PixelSearch, Predicate, SearchResult
from gravitas.schemas.training import ModelTrained, TrainingRequested, TrainingSpec

REPLY_TOPIC = "workflows.runs"


def agent_request(module: str, instance_id: str, inputs: dict[str, Any]) -> tuple[str, Event]:
    """The topic and request event of an agent-module step (pydantic validates inputs)."""
    name = module.partition("@")[0]
    if name == "train":
        return "requests.training", TrainingRequested(
            request_id=instance_id,
            spec=TrainingSpec.model_validate(inputs["spec"]),
            reply_topic=REPLY_TOPIC,
        )
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


def answer_outputs(answer: Event) -> tuple[str, dict[str, Any], str | None, str]:
    """(status, outputs, error, served_by) of an agent's answer."""
    if isinstance(answer, SearchResult):
        outs = {
            "total_matches": answer.total_matches,
            "counts_per_time": answer.counts_per_time,
            "served_by": answer.served_by,
        }
        return answer.status, outs, answer.error, answer.served_by
    if isinstance(answer, FeatureResult):
        means = {t: v["mean"] for t, v in sorted(answer.values.items()) if "mean" in v}
        outs = {"values": answer.values, "mean_over_time": means, "served_by": answer.served_by}
        return answer.status, outs, answer.error, answer.served_by
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
        return answer.status, outs, answer.error, answer.coordinator
    raise ValueError(f"{type(answer).__name__} is not a step answer")

"""The coordinator: ``requests.training`` -> a Flower server, a signed invitation, and at
the end the model (skops, STAC ``mlm`` item) announced as :class:`ModelTrained`.

The handler never waits for the training: it starts the Flower server process, returns
the invitation, and a supervising task follows the server's reports (progress events per
round) and publishes the outcome when the server exits. A request id is trained once:
a redelivered request is answered from the stored outcome, or ignored while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.services import NodeServices
from gravitas.agents.training import flower_runtime as rt
from gravitas.agents.training.model_card import load_final, register_model
from gravitas.agents.training.recovery import RESTARTED, claim, owned_elsewhere, settle_orphans
from gravitas.schemas.base import Event
from gravitas.schemas.errors import GravitasError
from gravitas.schemas.events import Progress
from gravitas.schemas.training import (
    ModelTrained,
    RoundMetrics,
    TrainingInvitation,
    TrainingRequested,
    TrainingSpec,
)
from gravitas.storage.catalog.base import NODE_PROPERTY, SearchParams

log = logging.getLogger(__name__)


class NoParticipantsError(GravitasError):
    """No configured node holds data for the training."""


def training_dir(services: NodeServices, request_id: str) -> Path:
    return Path(services.data_dir) / "training" / request_id


def participants(services: NodeServices, spec: TrainingSpec) -> list[str]:
    """The named participants, or every trusted node whose catalog entries match the cube.

    Only this node and its configured peers can take part: a node the federation's catalog
    names but this node has no key and address for is left out."""
    me = services.settings.node_id
    trusted = {me, *services.settings.peers}
    if spec.participants is not None:
        unknown = [p for p in spec.participants if p not in trusted]
        if unknown:
            raise NoParticipantsError(
                f"participants {unknown} are not configured peers of node {me!r} "
                f"(known: {sorted(trusted)}); add them to GRAVITAS_PEERS"
            )
        return sorted(set(spec.participants))
    req = spec.datacube
    collections = tuple(sorted({m.collection for m in req.modalities if m.collection}))
    params = SearchParams(
        bbox=tuple(req.bbox), collections=collections or None, limit=500, federated=True
    )
    owners = {
        str(i["properties"].get(NODE_PROPERTY, "")) for i in services.catalog.search(params).items
    }
    found = sorted(owners & trusted)
    if not found:
        raise NoParticipantsError(
            f"no trusted node holds {list(collections)} in bbox {list(req.bbox)} "
            f"(catalog owners: {sorted(o for o in owners if o)})"
        )
    return found


def n_features(spec: TrainingSpec) -> int:
    return sum(len(m.layers) for m in spec.datacube.modalities)


def band_names(spec: TrainingSpec) -> list[str]:
    return [f"{m.name}:{layer}" for m in spec.datacube.modalities for layer in m.layers]


class TrainingAgent(Agent):
    """Coordinates federated trainings requested of this node."""

    name = "training"
    topic = "requests.training"

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[None]] = {}

    async def stop(self) -> None:
        for task in self._running.values():
            task.cancel()
        for task in list(self._running.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def recover(self, services: NodeServices) -> Sequence[Emit]:
        """Trainings whose coordinator process died: answered as failed."""
        root = Path(services.data_dir) / "training"
        settled = await asyncio.to_thread(
            settle_orphans, root, services.settings.node_id, set(self._running)
        )
        for _, answer in settled:
            log.warning("training %s: %s", answer.request_id, answer.error)
        return [Emit(topic, answer) for topic, answer in settled]

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, TrainingRequested)
        services = ctx.services
        folder = training_dir(services, event.request_id)
        outcome = folder / "outcome.json"
        if outcome.exists():  # trained before: the same answer again
            return [Emit(event.reply_topic, ModelTrained.model_validate_json(outcome.read_bytes()))]
        if event.request_id in self._running:
            return []
        if (folder / "server.log").exists():
            if owned_elsewhere(folder):
                return []  # another live worker of this node runs it and will answer
            return [Emit(event.reply_topic, self._failed(event, ctx, RESTARTED))]
        try:
            nodes = participants(services, event.spec)
            host = services.settings.http_host
            port = rt.free_port(host)
            server = await rt.start(
                services.settings,
                rt.SERVER_SCRIPT,
                self._server_args(event, host, port, folder),
                folder / "server.log",
            )
        except GravitasError as exc:
            return [Emit(event.reply_topic, self._failed(event, ctx, str(exc)))]
        await asyncio.to_thread(claim, folder, event, server.proc.pid)
        invitation = services.identity.sign(
            TrainingInvitation(
                request_id=event.request_id,
                coordinator=services.settings.node_id,
                participants=nodes,
                server_port=port,
                spec=event.spec,
            )
        )
        ctx.log.info(
            "training %s: Flower server on %s:%d, inviting %s", event.request_id, host, port, nodes
        )
        self._running[event.request_id] = asyncio.create_task(
            self._supervise(event, ctx, server, nodes, folder)
        )
        return [Emit("training.invitations", invitation)]

    def _server_args(
        self, event: TrainingRequested, host: str, port: int, folder: Path
    ) -> list[str]:
        spec = event.spec
        return [
            "--address",
            f"{host}:{port}",
            "--rounds",
            str(spec.rounds),
            "--strategy",
            spec.strategy,
            "--mu",
            str(spec.proximal_mu),
            "--min-participants",
            str(spec.min_participants),
            "--family",
            spec.model,
            "--hyper",
            json.dumps(spec.hyperparameters),
            "--classes",
            ",".join(str(c) for c in spec.classes),
            "--n-features",
            str(n_features(spec)),
            "--local-epochs",
            str(spec.local_epochs),
            "--seed",
            str(spec.seed),
            "--round-timeout",
            str(spec.round_timeout_s),
            "--out",
            str(folder),
        ]

    def _failed(self, event: TrainingRequested, ctx: AgentContext, reason: str) -> ModelTrained:
        return ModelTrained(
            request_id=event.request_id, status="failed", error=reason, coordinator=ctx.node_id
        )

    async def _supervise(
        self,
        event: TrainingRequested,
        ctx: AgentContext,
        server: rt.FlowerProcess,
        nodes: list[str],
        folder: Path,
    ) -> None:
        rounds: list[RoundMetrics] = []
        excluded: list[str] = []
        items: set[str] = set()
        done: dict[str, Any] = {}
        try:
            async for report in server.lines():
                kind = report.get("kind")
                if kind == "round":
                    rounds.append(
                        RoundMetrics(
                            round=int(report["round"]),
                            accuracy=float(report["accuracy"]),
                            loss=float(report["loss"]),
                            per_node=report.get("per_node", {}),
                            fit_nodes=[n for n in report.get("fit_nodes", []) if n],
                        )
                    )
                    items.update(report.get("items", []))
                    await ctx.emit(
                        "progress",
                        Progress(
                            request_id=event.request_id,
                            stage="round",
                            fraction=min(1.0, len(rounds) / event.spec.rounds),
                            message=f"round {report['round']}/{event.spec.rounds}: accuracy "
                            f"{float(report['accuracy']):.3f} on {report.get('fit_nodes')}",
                        ),
                    )
                elif kind == "excluded":
                    excluded.append(
                        f"round {report['round']} node {report['node']}: {report['reason']}"
                    )
                    ctx.log.warning("training %s: excluded %s", event.request_id, excluded[-1])
                elif kind == "done":
                    done = report
            code = await server.wait()
            result = ModelTrained(
                request_id=event.request_id,
                coordinator=ctx.node_id,
                participants=nodes,
                rounds=rounds,
                excluded=excluded,
                data_items=sorted(items),
                bytes_moved=int(done.get("bytes_moved", 0)),
            )
            if code != 0 or not done or not rounds:
                result = result.model_copy(
                    update={
                        "status": "failed",
                        "error": (
                            f"the Flower server ended (exit {code}) after {len(rounds)} round(s): "
                            f"{server.tail()}"
                        ),
                    }
                )
            else:
                model = await asyncio.to_thread(
                    load_final, Path(done["params"]), event.spec, n_features(event.spec)
                )
                href, item_id, reg = await asyncio.to_thread(
                    register_model, ctx.services, event.spec, result, model, band_names(event.spec)
                )
                result = result.model_copy(update={"model_href": href, "item_id": item_id})
                await ctx.emit("stac.registrations", reg)
        except Exception as exc:  # the request is answered whatever happens
            log.exception("training %s failed", event.request_id)
            server.kill()
            result = self._failed(event, ctx, f"{type(exc).__name__}: {exc}")
        finally:
            self._running.pop(event.request_id, None)
        (folder / "outcome.json").write_bytes(orjson.dumps(result.model_dump(mode="json")))
        await ctx.emit(event.reply_topic, result)

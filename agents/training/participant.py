"""A participant: ``training.invitations`` -> its own datacube -> a Flower client.

An invitation is acted on only when it names this node, is signed by the coordinator's
configured key (or this node's own), and the server is reached at the coordinator's
configured address: the invitation carries only a port. The client runs in Flower's
interpreter on the node's local pixel features; if it dies while the round is open it is
started again (it rejoins), at most ``RESTARTS`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.signing import trusted_keys, verify_event
from gravitas.agents.training import flower_runtime as rt
from gravitas.agents.training.coordinator import training_dir
from gravitas.agents.training.local_data import build_local_data
from gravitas.schemas.base import Event
from gravitas.schemas.errors import GravitasError, InputError
from gravitas.schemas.events import Progress
from gravitas.schemas.training import TrainingInvitation

log = logging.getLogger(__name__)
RESTARTS = 3


class ParticipantAgent(Agent):
    """Joins the trainings this node is invited to."""

    name = "training-participant"
    topic = "training.invitations"

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[None]] = {}

    async def stop(self) -> None:
        for task in self._running.values():
            task.cancel()
        for task in list(self._running.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def server_host(self, ctx: AgentContext, invitation: TrainingInvitation) -> str:
        settings = ctx.services.settings
        if invitation.coordinator == settings.node_id:
            return settings.http_host
        peer = settings.peers.get(invitation.coordinator)
        if peer is None:  # verify_event refuses it first; kept for clarity
            raise InputError(f"coordinator {invitation.coordinator!r} is not a configured peer")
        return str(urlparse(peer.api_url).hostname)

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        assert isinstance(event, TrainingInvitation)
        services = ctx.services
        me = services.settings.node_id
        if me not in event.participants:
            return []
        verify_event(event, event.coordinator, trusted_keys(services.settings, services.identity))
        host = self.server_host(ctx, event)
        folder = training_dir(services, event.request_id) / f"participant-{me}"
        if event.request_id in self._running or (folder / "left.json").exists():
            return []  # a redelivered invitation: joined already
        self._running[event.request_id] = asyncio.create_task(
            self._take_part(event, ctx, f"{host}:{event.server_port}", folder)
        )
        return []

    async def _take_part(
        self, event: TrainingInvitation, ctx: AgentContext, server: str, folder: Path
    ) -> None:
        services = ctx.services
        me = services.settings.node_id
        spec = event.spec
        try:
            data = await services.run_compute(build_local_data, services, spec, event.request_id)
            path = data.save(folder / "local.npz")
            await ctx.emit(
                "progress",
                Progress(
                    request_id=event.request_id,
                    stage=f"participant {me}",
                    fraction=0.0,
                    message=f"{len(data.y_train)} training pixels from {len(data.items)} item(s), "
                    f"cube {data.cube_bytes} bytes stays here",
                ),
            )
            (folder / "local.json").write_text(
                json.dumps(
                    {
                        "cube_bytes": data.cube_bytes,
                        "items": data.items,
                        "train": len(data.y_train),
                        "test": len(data.y_test),
                    }
                )
            )
            args = [
                "--server",
                server,
                "--data",
                str(path),
                "--node",
                me,
                "--family",
                spec.model,
                "--hyper",
                json.dumps(spec.hyperparameters),
                "--classes",
                ",".join(str(c) for c in spec.classes),
                "--seed",
                str(spec.seed),
            ]
            code = -1
            for attempt in range(RESTARTS + 1):
                client = await rt.start(
                    services.settings, rt.CLIENT_SCRIPT, args, folder / "client.log"
                )
                (folder / "client.pid").write_text(str(client.proc.pid))
                async for _ in client.lines():
                    pass
                code = await client.wait()
                if code == 0:
                    break
                ctx.log.warning(
                    "training %s: Flower client exited %d (attempt %d): %s",
                    event.request_id,
                    code,
                    attempt + 1,
                    client.tail(2),
                )
                await asyncio.sleep(1.0)
            (folder / "left.json").write_text(json.dumps({"exit": code}))
        except GravitasError as exc:
            ctx.log.warning(
                "training %s: node %s does not take part: %s", event.request_id, me, exc
            )
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "left.json").write_text(json.dumps({"error": str(exc)}))
        except Exception:
            log.exception("training %s: participant %s failed", event.request_id, me)
        finally:
            self._running.pop(event.request_id, None)

"""The module agents: run Python module steps (``modules.requests``) and keep the
node's module registry (``modules.registry``, one partition: one writer)."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from gravitas.agents.base import Agent, AgentContext, Emit
from gravitas.agents.modules.catalog import REGISTRY_FILE, local_modules, node_catalog
from gravitas.agents.modules.context import ModuleContext
from gravitas.agents.modules.entrypoints import load_function
from gravitas.agents.modules.errors import ModuleError
from gravitas.agents.modules.placement import misplaced, run_on_peer
from gravitas.agents.modules.registry import ModuleRegistry
from gravitas.agents.services import NodeServices
from gravitas.agents.signing import trusted_keys
from gravitas.agents.workflows.agent_forward import run_agent_on_peer
from gravitas.agents.workflows.agent_placement import PLACED_AGENTS
from gravitas.schemas.base import Event
from gravitas.schemas.errors import StorageError, TransportError
from gravitas.schemas.events import ItemRegistered, SceneAnnounced
from gravitas.schemas.workflows import ModuleRecord, StepFinished, StepRequested


class StepResults:
    """Finished step instances (their answers), so a step's effect happens once."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS steps (step_id TEXT PRIMARY KEY, answer BLOB NOT NULL)"
        )

    def get(self, step_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT answer FROM steps WHERE step_id=?", (step_id,)
            ).fetchone()
        return None if row is None else orjson.loads(row[0])  # type: ignore[no-any-return]

    def put(self, step_id: str, answer: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO steps VALUES (?, ?)", (step_id, orjson.dumps(answer))
            )

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM steps").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def run_python_step(
    event: StepRequested, services: NodeServices
) -> tuple[StepFinished, list[ItemRegistered]]:
    """Run a python module step here; errors become a failed answer naming them. Returns
    the answer and the STAC registrations the step made (the agent publishes them)."""
    catalog = node_catalog(services.data_dir)
    warnings: list[str] = []
    node_id = services.settings.node_id
    ctx = ModuleContext(
        event.step_id,
        node_id,
        services,
        run_id=event.run_id,
        workflow=event.workflow,
        module=event.module,
        requested_at=event.occurred_at,
    )
    try:
        module = catalog.get(event.module)
        if module.kind != "python":
            raise ModuleError(f"{module.ref} is an agent module; it runs on {module.target}")
        installed = {m.target for m in local_modules()}
        if module.target not in installed:
            raise ModuleError(
                f"{module.ref} runs {module.target!r}, which is not installed on node "
                f"{node_id}; install its package here"
            )
        if module.lifecycle == "deprecated":
            warnings.append(f"module {module.ref} is deprecated")
        module.check_inputs(event.inputs)
        fn = load_function(module.target)
        outputs = fn(dict(event.inputs), ctx)
        return StepFinished(
            run_id=event.run_id,
            step_id=event.step_id,
            module=event.module,
            outputs=outputs,
            served_by=node_id,
            warnings=warnings,
            bytes_in=sum(ctx.read_bytes),
        ), list(ctx.registrations)
    except (StorageError, TransportError):
        raise  # transient: retried by the runner's policy
    except Exception as exc:  # a module's own failure fails its step, naming it
        cause = f"{type(exc).__name__}: {exc}"
        return StepFinished(
            run_id=event.run_id,
            step_id=event.step_id,
            module=event.module,
            status="failed",
            error=cause[:2000],
            served_by=node_id,
            warnings=warnings,
        ), []


class ModuleAgent(Agent):
    """``modules.requests`` -> ``StepFinished`` (on the request's reply topic)."""

    name = "modules"
    topic = "modules.requests"

    def __init__(self) -> None:
        self.results: StepResults | None = None

    async def start(self, services: NodeServices) -> None:
        self.results = StepResults(services.data_dir / "module_steps.sqlite")

    async def stop(self) -> None:
        if self.results is not None:
            self.results.close()
            self.results = None

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        if not isinstance(event, StepRequested):
            return []
        if self.results is None:
            await self.start(ctx.services)
        assert self.results is not None
        key = result_key(event)
        done = await asyncio.to_thread(self.results.get, key)
        if done is not None:  # already run: answer again, run nothing
            ctx.log.info("step %s already ran; answering again", event.step_id)
            return _emits(event, done, ctx.services.settings.node_id)
        me = ctx.services.settings.node_id
        registered: list[ItemRegistered] = []
        if event.node and event.node != me and event.node_id != me:
            # a peer's step placed on a third node: refused, and not recorded (the step
            # id stays free for its real request)
            return [Emit(event.reply_topic, misplaced(event, me))]
        if event.node and event.node != me and event.module.partition("@")[0] in PLACED_AGENTS:
            ctx.log.info("agent step %s runs on node %s (its data)", event.step_id, event.node)
            answer = await asyncio.to_thread(run_agent_on_peer, ctx.services, event)
        elif event.node and event.node != me:  # placed where its input data is
            ctx.log.info("step %s runs on node %s (its data)", event.step_id, event.node)
            answer = await asyncio.to_thread(run_on_peer, ctx.services, event)
        else:
            answer, registered = await ctx.services.run_compute(
                run_python_step, event, ctx.services
            )
            answer = _checked_announcement(answer)
        record = {
            "answer": answer.model_dump(mode="json"),
            "registrations": [r.model_dump(mode="json") for r in registered],
        }
        await asyncio.to_thread(self.results.put, key, record)
        return _emits(event, record, me)


def result_key(event: StepRequested) -> str:
    """The record key of a step: its id and a digest of what it runs, so a request under
    a known step id with other inputs (the edge admits peers' steps) is not answered
    with another step's record."""
    what = orjson.dumps([event.module, event.inputs, event.workflow], option=orjson.OPT_SORT_KEYS)
    return f"{event.step_id}#{hashlib.sha256(what).hexdigest()[:16]}"


ANNOUNCE = "announce_scene"
"""A module output naming a file the step wrote that the ingest agent should index as a
layer (a :class:`SceneAnnounced`; its hrefs pass the node's href policy at ingest)."""


def _checked_announcement(answer: StepFinished) -> StepFinished:
    """A step whose ``announce_scene`` output is no valid scene announcement fails,
    naming why (before anything is announced)."""
    if answer.status != "ok" or ANNOUNCE not in answer.outputs:
        return answer
    try:
        SceneAnnounced.model_validate(answer.outputs[ANNOUNCE])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return answer.model_copy(
            update={
                "status": "failed",
                "error": f"output {ANNOUNCE}.{where} is invalid: {first['msg']}",
            }
        )
    return answer


def _emits(event: StepRequested, record: dict[str, Any], me: str) -> list[Emit]:
    """The step's STAC registrations, the scene it announces (when it ran here; again on
    a replay: indexing the same scene twice leaves the same layer), then its answer on
    the reply topic."""
    answer = StepFinished.model_validate(record.get("answer", record))  # older: the answer
    regs = [ItemRegistered.model_validate(r) for r in record.get("registrations", [])]
    emits = [Emit("stac.registrations", r) for r in regs]
    ran_here = answer.served_by in ("", me)
    if answer.status == "ok" and ANNOUNCE in answer.outputs and ran_here:
        emits.append(Emit("scenes.new", SceneAnnounced.model_validate(answer.outputs[ANNOUNCE])))
    emits.append(Emit(event.reply_topic, answer))
    return emits


class ModuleRegistryAgent(Agent):
    """``modules.registry`` -> the node's module registry (signed, owner-only records)."""

    name = "module-registry"
    topic = "modules.registry"

    async def handle(self, event: Event, ctx: AgentContext) -> Sequence[Emit]:
        if not isinstance(event, ModuleRecord):
            return []
        s = ctx.services
        keys = trusted_keys(s.settings, s.identity)

        def apply() -> bool:
            reg = ModuleRegistry(s.data_dir / REGISTRY_FILE)
            try:
                return reg.apply(event, keys)
            finally:
                reg.close()

        stored = await asyncio.to_thread(apply)  # SignatureError etc.: dead-lettered
        ctx.log.info(
            "module %s rev %d from %s %s",
            event.ref,
            event.revision,
            event.owner,
            "stored" if stored else "already known",
        )
        return []

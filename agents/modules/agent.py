"""The module agents: run Python module steps (``modules.requests``) and keep the
node's module registry (``modules.registry``, one partition: one writer)."""

from __future__ import annotations

import asyncio
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
from gravitas.agents.modules.registry import ModuleRegistry
from gravitas.agents.services import NodeServices
from gravitas.agents.signing import trusted_keys
from gravitas.schemas.base import Event
from gravitas.schemas.errors import StorageError, TransportError
from gravitas.schemas.events import SceneAnnounced
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


def run_python_step(event: StepRequested, services: NodeServices) -> StepFinished:
    """Run a python module step here; errors become a failed answer naming them."""
    catalog = node_catalog(services.data_dir)
    warnings: list[str] = []
    try:
        module = catalog.get(event.module)
        if module.kind != "python":
            raise ModuleError(f"{module.ref} is an agent module; it runs on {module.target}")
        installed = {m.target for m in local_modules()}
        if module.target not in installed:
            raise ModuleError(
                f"{module.ref} runs {module.target!r}, which is not installed on node "
                f"{services.settings.node_id}; install its package here"
            )
        if module.lifecycle == "deprecated":
            warnings.append(f"module {module.ref} is deprecated")
        module.check_inputs(event.inputs)
        fn = load_function(module.target)
        ctx = ModuleContext(event.step_id, services.settings.node_id, services)
        outputs = fn(dict(event.inputs), ctx)
        return StepFinished(
            run_id=event.run_id,
            step_id=event.step_id,
            module=event.module,
            outputs=outputs,
            served_by=services.settings.node_id,
            warnings=warnings,
        )
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
            served_by=services.settings.node_id,
            warnings=warnings,
        )


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
        done = await asyncio.to_thread(self.results.get, event.step_id)
        if done is not None:  # already run: answer again, run nothing
            ctx.log.info("step %s already ran; answering again", event.step_id)
            return _answer(event, StepFinished.model_validate(done))
        answer = await ctx.services.run_compute(run_python_step, event, ctx.services)
        answer = _checked_announcement(answer)
        await asyncio.to_thread(self.results.put, event.step_id, answer.model_dump(mode="json"))
        return _answer(event, answer)


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


def _answer(event: StepRequested, answer: StepFinished) -> list[Emit]:
    """The step's answer, and the scene it announces (again on a replay: indexing the
    same scene twice leaves the same layer)."""
    emits = [Emit(event.reply_topic, answer)]
    if answer.status == "ok" and ANNOUNCE in answer.outputs:
        scene = SceneAnnounced.model_validate(answer.outputs[ANNOUNCE])
        emits.insert(0, Emit("scenes.new", scene))
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

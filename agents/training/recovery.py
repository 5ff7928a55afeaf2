"""Trainings a coordinator was running when its process died: answered as failed.

The request's offset is committed once the Flower server has started (the handler never
waits for the training), so a coordinator killed mid-training would leave its requester
waiting for ever. Each training folder therefore holds the request and its owner (the
coordinator's pid and the Flower server's pid). When the training agent starts, every
folder without an outcome whose owner is no longer alive is settled: a leftover Flower
server is stopped, the failed outcome is written (a redelivered request is answered from
it) and returned for the runner to publish. Another live worker of the same node keeps
its own trainings: a folder whose owner process is alive is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import orjson

from gravitas.schemas.training import ModelTrained, TrainingRequested

REQUEST = "request.json"
OWNER = "owner.json"
OUTCOME = "outcome.json"
RESTARTED = "the coordinator restarted while it trained; send it again with a new request_id"


def claim(folder: Path, request: TrainingRequested, server_pid: int) -> None:
    """Record the request and who runs it (before the invitation is published)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REQUEST).write_bytes(orjson.dumps(request.model_dump(mode="json")))
    owner = {"pid": os.getpid(), "server_pid": server_pid}
    (folder / OWNER).write_bytes(orjson.dumps(owner))


def running(pid: int, needle: str) -> bool:
    """Whether process ``pid`` is alive and its command line contains ``needle`` (a pid
    reused by an unrelated process does not count)."""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return needle.encode() in cmdline


def owned_elsewhere(folder: Path) -> bool:
    """Whether another live process of this node runs the training in ``folder``."""
    try:
        pid = int(orjson.loads((folder / OWNER).read_bytes()).get("pid", 0))
    except (OSError, ValueError):
        return False
    return pid != os.getpid() and running(pid, "python")


def settle_orphans(
    root: Path, node_id: str, mine: set[str] | frozenset[str] = frozenset()
) -> list[tuple[str, ModelTrained]]:
    """``(reply topic, failed answer)`` of every orphaned training under ``root``
    (``mine``: the trainings this process runs now)."""
    settled: list[tuple[str, ModelTrained]] = []
    if not root.is_dir():
        return settled
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if (folder / OUTCOME).exists() or not (folder / REQUEST).exists():
            continue
        try:
            request = TrainingRequested.model_validate_json((folder / REQUEST).read_bytes())
            owner = orjson.loads((folder / OWNER).read_bytes())
        except (OSError, ValueError):
            continue  # a half-written claim: its handler never published an invitation
        if request.request_id in mine or owned_elsewhere(folder):
            continue  # this process or another live worker of this node runs it
        server = int(owner.get("server_pid", 0))
        if running(server, "flower_server"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(server, signal.SIGKILL)
        answer = ModelTrained(
            request_id=request.request_id, status="failed", error=RESTARTED, coordinator=node_id
        )
        (folder / OUTCOME).write_bytes(orjson.dumps(answer.model_dump(mode="json")))
        settled.append((request.reply_topic, answer))
    return settled

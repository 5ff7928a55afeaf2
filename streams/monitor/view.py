"""The terminal view of a :class:`~gravitas.streams.monitor.snapshot.PipelineSnapshot`
(rich renderables: topics, running requests, dead letters, recent events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import ConsoleRenderable, Group
from rich.panel import Panel
from rich.table import Table

from gravitas.streams.monitor.snapshot import PipelineSnapshot

__all__ = ["render"]


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S")


def render(snap: PipelineSnapshot, rows: int = 10) -> Group:
    """Four tables of one snapshot."""
    topics = Table(title="topics", expand=True)
    for col in ("topic", "events/s", "lag", "seen"):
        topics.add_column(col, justify="left" if col == "topic" else "right")
    for t in snap.topics:
        topics.add_row(t.name, f"{t.rate:.2f}", "-" if t.lag is None else str(t.lag), str(t.seen))
    requests = Table(title="running requests", expand=True)
    for col in ("request", "stage", "progress", "message"):
        requests.add_column(col)
    for r in snap.requests[:rows]:
        requests.add_row(r["request_id"], r["stage"], f"{r['fraction']:.0%}", r["message"])
    dead = Table(title="dead letters", expand=True)
    for col in ("time", "topic", "error", "reason"):
        dead.add_column(col)
    for d in snap.deadletters[:rows]:
        dead.add_row(_when(d["timestamp_ms"]), d["source_topic"], d["error_class"], d["reason"])
    recent = Table(title="recent events", expand=True)
    for col in ("time", "topic", "type", "key"):
        recent.add_column(col)
    for e in snap.recent[:rows]:
        recent.add_row(_when(e["timestamp_ms"]), e["topic"], e["type"], e["key"])
    parts: list[ConsoleRenderable] = [Panel(""), topics]
    if snap.federation:
        parts.append(_federation(snap.federation))
    lag = ", ".join(f"{g}: {n}" for g, n in sorted(snap.lag_by_group.items())) or "-"
    head = f"node {snap.node_id} on {snap.broker}   consumer-group lag: {lag}"
    parts[0] = Panel(head)
    return Group(*parts, requests, dead, recent)


def _num(value: Any, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def _federation(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="federation", expand=True)
    for col in ("node", "status", "events/s", "events", "lag", "dead letters", "requests"):
        table.add_column(col, justify="left" if col in ("node", "status") else "right")
    for r in rows:
        table.add_row(
            r["node_id"] + (" (this node)" if r["self"] else ""),
            r["status"],
            _num(r["event_rate"], "{:.2f}"),
            _num(r["events"]),
            _num(r["lag"]),
            _num(r["deadletters"]),
            _num(r["requests"]),
        )
    return table

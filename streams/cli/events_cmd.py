"""``gravitas publish``, ``gravitas tail`` and ``gravitas ping``: events from the shell."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from gravitas.schemas.base import Event
from gravitas.schemas.codec import decode, encode, from_dict, parse_json
from gravitas.schemas.errors import GravitasError, RequestError
from gravitas.schemas.events import Ping, Pong, Rejected
from gravitas.streams.cli.common import (
    BrokerOpt,
    DataOpt,
    EdgeOpt,
    console,
    out,
    settings_from,
    topology_for,
)
from gravitas.streams.client import Client, open_transport
from gravitas.streams.transports.edge import EdgeTransport
from gravitas.streams.transports.kafka import KafkaTransport


def validate_lines(
    lines: list[bytes], types: list[type[Event]], node_id: str
) -> tuple[list[Event], list[tuple[int, str]]]:
    """Validate JSON lines; returns the events and (line number, reason) for bad lines."""
    events: list[Event] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = parse_json(line)
            data.setdefault("node_id", node_id)
            events.append(from_dict(data, types))
        except GravitasError as exc:
            problems.append((number, str(exc)))
    return events, problems


def outgoing_lines(
    lines: list[bytes], types: list[type[Event]], node_id: str
) -> list[tuple[bytes | None, bytes]]:
    """(key, bytes) of each line as it is sent: a valid event encoded (ids filled in), a
    bad one as is (the node dead-letters it), a blank one empty (line numbers stay)."""
    sent: list[tuple[bytes | None, bytes]] = []
    for line in lines:
        events, problems = validate_lines([line], types, node_id)
        if events:
            sent.append((events[0].key().encode(), encode(events[0])))
        else:
            sent.append((None, line if problems else b""))
    return sent


def publish(
    topic: Annotated[str, typer.Argument(help="Logical topic, e.g. scenes.new")],
    file: Annotated[
        str, typer.Argument(help="File of JSON events, one per line, or - for stdin.")
    ] = "-",
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Publish JSON events (one per line) to a topic.

    Valid lines are published; each invalid line is reported with its line number and
    reason and dead-lettered by the node (a ``Rejected`` record on ``deadletter``, see
    ``gravitas tail deadletter``). Exits 1 when a line was invalid.

    Example: echo '{"request_id": "r1"}' | gravitas publish ops.ping -
    """
    settings = settings_from(broker, data)
    topology = topology_for(settings)
    types = list(topology.events(topic))
    raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    lines = raw.splitlines()
    events, problems = validate_lines(lines, types, settings.node_id)
    sent = outgoing_lines(lines, types, settings.node_id)

    async def send() -> list[dict[str, object]]:
        transport = open_transport(
            settings.broker, topology, edge_url=edge, data_dir=settings.data_dir
        )
        try:
            if isinstance(transport, EdgeTransport):
                answer = await transport.publish_records(topic, [line for _, line in sent])
                rejected = answer.get("rejected") or []
                assert isinstance(rejected, list)
                return rejected
            if isinstance(transport, KafkaTransport):
                await transport.publish_many([(topic, k, line) for k, line in sent if line])
            return [{"line": n, "reason": r, "rejected_id": ""} for n, r in problems]
        finally:
            await transport.close()

    rejected = asyncio.run(send()) if any(line for _, line in sent) else []
    for row in rejected:
        where = f" (dead-lettered as {row['rejected_id']})" if row.get("rejected_id") else ""
        console.print(f"[red]line {row['line']}[/]: {row['reason']}{where}", highlight=False)
    console.print(
        f"published {len(events)} event(s) to {topic}; {len(problems)} invalid line(s) "
        "sent to the dead-letter topic (gravitas tail deadletter --from-beginning)"
        if problems
        else f"published {len(events)} event(s) to {topic}"
    )
    if problems:
        raise typer.Exit(1)


def _summary(event: Event) -> str:
    if isinstance(event, Rejected):
        payload = event.payload().decode("utf-8", errors="replace")
        payload = payload if len(payload) <= 80 else payload[:77] + "..."
        return (
            f"{event.source_topic} by {event.agent or '?'}: {event.error_class}: "
            f"{event.reason}  payload={payload!r}"
        )
    data = event.model_dump(
        mode="json", exclude={"event_id", "occurred_at", "node_id", "schema_version", "type"}
    )
    text = orjson.dumps(data).decode()
    return text if len(text) <= 160 else text[:157] + "..."


def tail(
    topic: Annotated[str, typer.Argument(help="Logical topic, e.g. deadletter")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record.")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Stop after N events.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each event as one JSON line.")
    ] = False,
    idle_timeout: Annotated[
        float | None, typer.Option("--idle-timeout", help="Stop after S seconds without events.")
    ] = None,
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Print a topic's events as they arrive.

    Example: gravitas tail deadletter --from-beginning --limit 10 --json
    """
    settings = settings_from(broker, data)
    topology = topology_for(settings)
    types = list(topology.events(topic))

    async def follow() -> int:
        transport = open_transport(
            settings.broker, topology, edge_url=edge, data_dir=settings.data_dir
        )
        seen = 0
        try:
            async with transport.subscription(topic, from_beginning) as sub:
                iterator = sub.__aiter__()
                while limit is None or seen < limit:
                    try:
                        rec = await asyncio.wait_for(iterator.__anext__(), idle_timeout)
                    except TimeoutError:
                        break
                    seen += 1
                    try:
                        event = decode(rec.value, types)
                    except GravitasError as exc:
                        console.print(f"[red]{rec.partition}:{rec.offset} undecodable[/]: {exc}")
                        continue
                    if as_json:
                        out.print(encode(event).decode(), highlight=False, soft_wrap=True)
                    else:
                        where = f"{rec.partition}:{rec.offset}"
                        out.print(
                            f"[dim]{where}[/] [cyan]{event.TYPE}[/] {_summary(event)}",
                            highlight=False,
                            soft_wrap=True,
                        )
        finally:
            await transport.close()
        return seen

    asyncio.run(follow())


def ping(
    count: Annotated[int, typer.Option("--count", "-c", help="Number of pings.", min=1)] = 3,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each pong.")
    ] = 10.0,
    broker: BrokerOpt = None,
    data: DataOpt = None,
    edge: EdgeOpt = None,
) -> None:
    """Send pings through a node's event path and print the round-trip time.

    Example: gravitas ping --count 5
    """
    settings = settings_from(broker, data)

    async def go() -> None:
        async with Client(settings.broker, edge_url=edge, data_dir=settings.data_dir) as client:
            table = Table("request", "served by", "round trip (ms)")
            for _ in range(count):
                rid = f"ping-{uuid.uuid4().hex[:12]}"
                t0 = time.perf_counter()
                reply = await client.request(
                    Ping(request_id=rid, node_id=settings.node_id), "ops.pong", timeout
                )
                if not isinstance(reply, Pong):
                    raise RequestError(f"unexpected reply {reply!r}")
                table.add_row(rid, reply.served_by, f"{(time.perf_counter() - t0) * 1000:.1f}")
            out.print(table)

    asyncio.run(go())


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command()(publish)
    app.command()(tail)
    app.command()(ping)

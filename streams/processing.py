"""Transport-agnostic handling of one record: decode, run the agent, retry or reject.

Both runners call :meth:`Processor.process` and then publish what it returns and
commit the record's offset. Output ids are derived from the input id, so a replay
emits identical events that consumers can deduplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import orjson

from gravitas.agents.answers import cause_of, failure_answers
from gravitas.agents.base import Agent, AgentContext
from gravitas.agents.services import NodeServices
from gravitas.schemas.base import Event, derive_event_id
from gravitas.schemas.codec import decode, encode
from gravitas.schemas.errors import EventDecodeError, EventValidationError, UnknownTopicError
from gravitas.schemas.events import Rejected
from gravitas.streams.failpoints import Failpoint
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.policy import Action, action_for
from gravitas.streams.topology import Topology


class Record(NamedTuple):
    """One consumed message (logical topic name); a tuple, cheap to build per record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class Outbound(NamedTuple):
    """One message to publish (logical topic name)."""

    topic: str
    key: str
    value: bytes


PublishFn = Callable[[Outbound], Awaitable[None]]


def outbound(topology: Topology, topic: str, event: Event) -> Outbound:
    """Encode an event for a topic, checking that the topic carries its class."""
    if type(event) not in topology.events(topic):
        raise UnknownTopicError(f"topic {topic!r} does not carry {type(event).__name__}")
    return Outbound(topic, event.key(), encode(event))


def with_stable_id(event: Event, topic: str, value: bytes) -> Event:
    """``event`` with the id it arrived with, or (none on the wire) one derived from its
    topic and bytes, so every decode of the same record (a replay) gives the same id."""
    if "event_id" in event.model_fields_set:
        return event
    return event.model_copy(update={"event_id": content_event_id(topic, value)})


def derived_id_str(parent: uuid.UUID, salt: str) -> str:
    """``str(derive_event_id(parent, salt))`` (uuid5) without building ``UUID`` objects:
    the same SHA-1, version and variant bits, formatted directly (hot path)."""
    digest = bytearray(hashlib.sha1(parent.bytes + salt.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def content_event_id(topic: str, value: bytes) -> uuid.UUID:
    """The id of an event published without one: uuid5 of its topic and content hash."""
    digest = hashlib.sha256(value).hexdigest()
    return uuid.uuid5(uuid.NAMESPACE_URL, f"gravitas:{topic}:{digest}")


class Processor:
    """Runs one agent on records of its topic under the error policy."""

    def __init__(
        self,
        agent: Agent,
        topology: Topology,
        services: NodeServices,
        metrics: NodeMetrics,
        publish: PublishFn,
        *,
        node_id: str,
        retry_attempts: int = 3,
        retry_delay_s: float = 0.2,
        failpoint: Failpoint | None = None,
    ) -> None:
        self.agent = agent
        self.topology = topology
        self.services = services
        self.metrics = metrics
        self.publish = publish
        self.node_id = node_id
        self.retry_attempts = retry_attempts
        self.retry_delay_s = retry_delay_s
        self.failpoint = failpoint
        """Fault drills: hold the handler after this progress record (see failpoints)."""
        self._types = topology.events(agent.topic)
        self._processed = metrics.processed.labels(agent.name, agent.topic)
        self._latency = metrics.latency.labels(agent.name)
        self._carried_cache: dict[str, frozenset[type[Event]]] = {}
        self._logger = logging.getLogger(f"gravitas.agents.{agent.name}")

    async def recover(self) -> int:
        """Publish what the agent owes from before a restart; returns how many."""
        emits = await self.agent.recover(self.services)
        for e in emits:
            name = f"gravitas:recover:{self.agent.name}:{e.topic}:{e.event.key()}"
            parent = uuid.uuid5(uuid.NAMESPACE_URL, name)
            await self.publish(self._stamped_outbound(e.topic, e.event, parent, "recover"))
        return len(emits)

    def _stamp(self, event: Event, parent: uuid.UUID, salt: str) -> Event:
        return event.model_copy(
            update={"event_id": derive_event_id(parent, salt), "node_id": self.node_id}
        )

    def _stamped_outbound(self, topic: str, event: Event, parent: uuid.UUID, salt: str) -> Outbound:
        """``outbound(topic, _stamp(event))`` without building the stamped copy: the
        envelope fields are replaced in the dumped dict (same bytes, same key)."""
        if type(event) not in self._carried(topic):
            raise UnknownTopicError(f"topic {topic!r} does not carry {type(event).__name__}")
        event_id = derived_id_str(parent, salt)
        data = event.model_dump(mode="json")
        data["event_id"] = event_id
        data["node_id"] = self.node_id
        field = event.KEY_FIELD
        if field == "event_id":
            key = event_id
        elif field == "node_id":
            key = self.node_id
        else:
            key = event.key()
        return Outbound(topic, key, orjson.dumps(data))

    def _carried(self, topic: str) -> frozenset[type[Event]]:
        carried = self._carried_cache.get(topic)
        if carried is None:
            carried = self._carried_cache[topic] = frozenset(self.topology.events(topic))
        return carried

    async def process_many(self, records: Sequence[Record]) -> list[Outbound]:
        """Handle a batch of records in order; returns all their outputs (dead letters
        included), counting processed events once per batch."""
        outs: list[Outbound] = []
        ok = 0
        for record in records:
            got, handled = await self._process(record, count=False)
            outs.extend(got)
            ok += handled
        if ok:
            self._processed.inc(ok)
        return outs

    async def process(self, record: Record) -> list[Outbound]:
        """Handle one record; returns the outputs, or one dead-letter record."""
        return (await self._process(record, count=True))[0]

    async def _process(self, record: Record, *, count: bool) -> tuple[list[Outbound], bool]:
        name = self.agent.name
        try:
            event = with_stable_id(decode(record.value, self._types), record.topic, record.value)
        except (EventDecodeError, EventValidationError) as exc:
            return [self._reject(record, exc, attempts=1)], False
        log = logging.LoggerAdapter(self._logger, {"agent": name, "event_id": str(event.event_id)})
        progress = itertools.count()

        async def emit_now(topic: str, ev: Event) -> None:
            stamped = self._stamp(ev, event.event_id, f"{name}:progress:{next(progress)}")
            await self.publish(outbound(self.topology, topic, stamped))
            if self.failpoint is not None and self.failpoint.matches(ev):
                await self.failpoint.hold(log)

        ctx = AgentContext(node_id=self.node_id, services=self.services, emit=emit_now, log=log)
        for attempt in itertools.count(1):
            started = time.perf_counter()
            try:
                emits = await self.agent.handle(event, ctx)
                parent = event.event_id
                outs = [
                    self._stamped_outbound(e.topic, e.event, parent, f"{name}:{i}")
                    for i, e in enumerate(emits)
                ]
            except Exception as exc:
                action = action_for(exc)
                if action is Action.RETRY and attempt < self.retry_attempts:
                    self.metrics.retries.labels(name, type(exc).__name__).inc()
                    log.warning("retrying after %s: %s", type(exc).__name__, exc)
                    await asyncio.sleep(self.retry_delay_s * 2 ** (attempt - 1))
                    continue
                return self._give_up(record, event, exc, action, attempt, log), False
            self._latency.observe(time.perf_counter() - started)
            if count:
                self._processed.inc()
            return outs, True
        raise AssertionError("unreachable")

    def _give_up(
        self,
        record: Record,
        event: Event,
        exc: BaseException,
        action: Action,
        attempts: int,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> list[Outbound]:
        """The failed answer to the requester (if any) naming the cause, and a dead-letter
        record unless the policy says answering is enough."""
        answers = failure_answers(
            event,
            cause_of(exc),
            node_id=self.node_id,
            step=getattr(exc, "step", None),
            error_class=type(exc).__name__,
        )
        outs = [
            self._stamped_outbound(
                e.topic, e.event, event.event_id, f"{self.agent.name}:failed:{i}"
            )
            for i, e in enumerate(answers)
        ]
        if action is Action.ANSWER and outs:
            log.info("answered as failed: %s: %s", type(exc).__name__, exc)
            return outs
        log.warning("rejected: %s: %s", type(exc).__name__, exc)
        return [*outs, self._reject(record, exc, attempts=attempts)]

    def undeliverable(self, out: Outbound, exc: BaseException) -> list[Outbound]:
        """What replaces an output the transport refused (e.g. larger than the broker's
        message limit): a dead-letter record with its head, size and the reason, and,
        if the output was an answer, a failed answer naming the reason."""
        reason = f"output of {len(out.value)} bytes to {out.topic!r} was not sent: {exc}"
        return [*self._failed_answer(out, reason), self._undeliverable(out, exc, reason)]

    def _failed_answer(self, out: Outbound, reason: str) -> list[Outbound]:
        """A small failed answer of the same class as a refused answer, if it is one."""
        try:
            answer = decode(out.value, self.topology.events(out.topic))
        except (EventDecodeError, EventValidationError, UnknownTopicError):
            return []
        fields = type(answer).model_fields
        if not {"request_id", "status", "error"} <= set(fields):
            return []
        failed = type(answer).model_validate(
            {
                "event_id": derive_event_id(answer.event_id, "undeliverable"),
                "node_id": self.node_id,
                "request_id": getattr(answer, "request_id", ""),
                "status": "failed",
                "error": reason,
            }
        )
        return [outbound(self.topology, out.topic, failed)]

    def _undeliverable(self, out: Outbound, exc: BaseException, reason: str) -> Outbound:
        error_class = type(exc).__name__
        self.metrics.rejected.labels(self.agent.name, out.topic, error_class).inc()
        rejected = Rejected.for_payload(
            out.value,
            event_id=uuid.uuid5(
                uuid.NAMESPACE_URL,
                "gravitas:undeliverable:"
                + hashlib.sha256(out.topic.encode() + b"\0" + out.value).hexdigest(),
            ),
            node_id=self.node_id,
            source_topic=out.topic,
            source_key=out.key[:1000],
            error_class=error_class,
            reason=reason,
            agent=self.agent.name,
        )
        return outbound(self.topology, "deadletter", rejected)

    def _reject(self, record: Record, exc: BaseException, attempts: int) -> Outbound:
        reason = str(exc) or repr(exc)
        error_class = type(exc).__name__
        self.metrics.rejected.labels(self.agent.name, record.topic, error_class).inc()
        rejected = Rejected.for_payload(
            record.value,
            event_id=uuid.uuid5(
                uuid.NAMESPACE_URL,
                f"gravitas:{record.topic}/{record.partition}/{record.offset}/{self.agent.name}",
            ),
            node_id=self.node_id,
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            source_key=(record.key or b"")[:1000].decode("utf-8", errors="replace"),
            error_class=error_class,
            reason=reason,
            agent=self.agent.name,
            attempts=attempts,
        )
        return outbound(self.topology, "deadletter", rejected)

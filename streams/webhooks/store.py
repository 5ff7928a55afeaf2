"""Subscriptions on Kafka: one compacted topic ``<prefix>webhooks.subscriptions`` keyed by
subscription id (the latest record of an id is its state; deleted ones keep a
``deleted`` record), and ``<prefix>webhooks.deadletter`` for given-up deliveries.

The edge writes creations and deletions; the delivery workers write ``active=false``
after a 410. Every reader folds the whole topic, so all agree after a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from gravitas.streams.broker import create_topics
from gravitas.streams.webhooks.subscriptions import Subscription

SUBSCRIPTIONS = "webhooks.subscriptions"
DEADLETTER = "webhooks.deadletter"


class SubscriptionLog:
    """Reads and writes the subscriptions topic of one node (topic ``prefix``)."""

    def __init__(self, bootstrap: str, prefix: str = "") -> None:
        self.bootstrap = bootstrap
        self.topic = f"{prefix}{SUBSCRIPTIONS}"
        self.deadletter = f"{prefix}{DEADLETTER}"
        self._producer: AIOKafkaProducer | None = None

    async def ensure(self) -> None:
        """Create the compacted subscriptions topic and the dead-letter topic."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            with suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(self.topic, 1, 1, topic_configs={"cleanup.policy": "compact"})]
                )
        finally:
            await admin.close()
        await create_topics(self.bootstrap, {self.topic: 1, self.deadletter: 1})

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True
            )
            await producer.start()
            self._producer = producer
        await self._producer.send_and_wait(topic, value, key=key)

    async def put(self, sub: Subscription) -> None:
        await self._send(self.topic, sub.id.encode(), orjson.dumps(sub.model_dump(mode="json")))

    async def dead_letter(self, record: dict[str, object]) -> None:
        await self._send(self.deadletter, str(record["webhook_id"]).encode(), orjson.dumps(record))

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[AIOKafkaConsumer]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        tp = TopicPartition(self.topic, 0)
        consumer.assign([tp])
        await consumer.start()
        try:
            await consumer.seek_to_beginning(tp)
            yield consumer
        finally:
            await consumer.stop()

    async def load(self) -> dict[str, Subscription]:
        """Every subscription that is not deleted, as of now."""
        tp = TopicPartition(self.topic, 0)
        out: dict[str, Subscription] = {}
        async with self._reader() as consumer:
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for msg in batch.get(tp, []):
                    _fold(out, msg.value)
        return out

    async def follow(
        self, into: dict[str, Subscription], ready: asyncio.Event, synced: list[float]
    ) -> None:
        """Keep ``into`` equal to the topic's state (runs until cancelled). ``ready`` is
        set once everything written before the call has been read; ``synced[0]`` is the
        latest wall time (ms) at which ``into`` held every record written before it."""
        tp = TopicPartition(self.topic, 0)
        async with self._reader() as consumer:
            while True:
                asked = time.time() * 1000
                end = (await consumer.end_offsets([tp]))[tp]
                while await consumer.position(tp) < end:
                    batch = await consumer.getmany(tp, timeout_ms=500)
                    for msg in batch.get(tp, []):
                        _fold(into, msg.value)
                synced[0] = asked
                ready.set()
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def _fold(into: dict[str, Subscription], value: bytes | None) -> None:
    if not value:
        return
    sub = Subscription.model_validate(orjson.loads(value))
    if sub.deleted:
        into.pop(sub.id, None)
    else:
        into[sub.id] = sub

"""Transport over a real Kafka cluster with aiokafka (the SDK and CLI side)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from gravitas.schemas.errors import TransportError
from gravitas.streams.topology import Topology
from gravitas.streams.transports.base import RawRecord, Subscription


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://h1:p1,h2:p2`` -> ``h1:p1,h2:p2``."""
    parsed = urlparse(broker_url)
    if parsed.scheme != "kafka" or not parsed.netloc:
        raise TransportError(f"not a kafka:// broker URL: {broker_url!r}")
    return parsed.netloc


class _KafkaSubscription:
    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic

    async def __aiter__(self) -> AsyncIterator[RawRecord]:
        async for msg in self._consumer:
            yield RawRecord(
                self._topic, msg.partition, msg.offset, msg.key, msg.value or b"", msg.timestamp
            )


class KafkaTransport:
    """Publishes with one shared producer; each subscription is its own consumer."""

    def __init__(self, broker_url: str, topology: Topology) -> None:
        self.bootstrap = bootstrap_servers(broker_url)
        self.topology = topology
        self._producer: AIOKafkaProducer | None = None

    async def _get_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", linger_ms=2, enable_idempotence=True
            )
            try:
                await producer.start()
            except KafkaError as exc:
                await producer.stop()
                raise TransportError(
                    f"cannot reach Kafka at {self.bootstrap}: {exc} (is the broker running?)"
                ) from exc
            self._producer = producer
        return self._producer

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        producer = await self._get_producer()
        try:
            await producer.send_and_wait(self.topology.physical(topic), value=value, key=key)
        except KafkaError as exc:
            raise TransportError(f"publishing to {topic!r} failed: {exc}") from exc

    async def publish_many(self, records: list[tuple[str, bytes | None, bytes]]) -> None:
        """Send many records, waiting once for all of them."""
        producer = await self._get_producer()
        futures = [
            await producer.send(self.topology.physical(t), value=v, key=k) for t, k, v in records
        ]
        for fut in futures:
            await fut

    @asynccontextmanager
    async def subscription(
        self, topic: str, from_beginning: bool = False
    ) -> AsyncIterator[Subscription]:
        physical = self.topology.physical(topic)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            await consumer.start()
            partitions = consumer.partitions_for_topic(physical)
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(physical) or {0}
            tps = [TopicPartition(physical, p) for p in sorted(partitions)]
            consumer.assign(tps)
            if from_beginning:
                await consumer.seek_to_beginning(*tps)
            else:
                await consumer.seek_to_end(*tps)
                for tp in tps:  # resolve the end offsets now, before the caller publishes
                    await consumer.position(tp)
        except KafkaError as exc:
            await consumer.stop()
            raise TransportError(
                f"cannot subscribe to {topic!r} at {self.bootstrap}: {exc}"
            ) from exc
        try:
            yield _KafkaSubscription(consumer, topic)
        finally:
            await consumer.stop()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

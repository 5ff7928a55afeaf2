"""The outbound delivery worker: a Kafka consumer group over the node's topics.

Partition ownership makes each record one worker's: several workers never deliver the
same record (a rebalance or crash hands the uncommitted ones to another worker, which
delivers them again with the same ``webhook-id``). A record's offset is committed
after every matching subscription's delivery ended, so a worker SIGKILLed mid-delivery
delivers that record again after the restart: the receiver sees the same id and
dedupes. Records older than a subscription are not delivered to it.

Run it inside a Kafka node (``GRAVITAS_WEBHOOK_DELIVERY``, default on) or alone:
``python -m gravitas.streams.webhooks.worker`` (settings from the environment).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from gravitas.schemas.errors import InputError
from gravitas.schemas.settings import Settings, load_settings
from gravitas.streams.metrics import NodeMetrics
from gravitas.streams.topology import Topology
from gravitas.streams.transports.kafka import bootstrap_servers
from gravitas.streams.webhooks.cloudevent import outbound_message
from gravitas.streams.webhooks.deliver import (
    deliver,
    master_secret,
    subscription_secret,
    webhook_id,
)
from gravitas.streams.webhooks.store import SubscriptionLog
from gravitas.streams.webhooks.subscriptions import Subscription, check_target, matches

log = logging.getLogger("gravitas.webhooks")


def delivery_group(settings: Settings) -> str:
    return f"{settings.consumer_group}-webhooks"


class DeliveryWorker:
    """Delivers the events of subscribed topics to their subscribers."""

    def __init__(
        self, settings: Settings, topology: Topology, metrics: NodeMetrics | None = None
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.metrics = metrics or NodeMetrics()
        self.bootstrap = bootstrap_servers(settings.broker)
        self.log = SubscriptionLog(self.bootstrap, settings.topic_prefix)
        self.subs: dict[str, Subscription] = {}
        self.synced = [0.0]
        self._follower: asyncio.Task[None] | None = None
        """Wall time (ms) up to which ``subs`` holds every subscription written."""
        self.master = master_secret(settings)
        self.logical = {topology.physical(t): t for t in topology.names}

    async def run_forever(self, backoff_s: float = 5.0) -> None:
        """:meth:`run`, restarted after a failure (broker away, ...) so the node that
        hosts the worker keeps running."""
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook delivery worker stopped (%s); restarting", exc)
                await asyncio.sleep(backoff_s)

    async def run(self) -> None:
        """Deliver until cancelled."""
        await self.log.ensure()
        ready = asyncio.Event()
        follower = self._follower = asyncio.create_task(
            self.log.follow(self.subs, ready, self.synced)
        )
        consumer = AIOKafkaConsumer(
            *sorted(self.logical),
            bootstrap_servers=self.bootstrap,
            group_id=delivery_group(self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await ready.wait()
            await consumer.start()
            async with httpx.AsyncClient(follow_redirects=False) as http:
                pending: dict[TopicPartition, int] = {}
                last_commit = time.monotonic()
                async for record in consumer:
                    delivered = await self._handle(http, record)
                    pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
                    # after a delivery at once (a crash must not repeat it twice over);
                    # records nobody subscribed to are committed in batches
                    if delivered or len(pending) >= 100 or time.monotonic() - last_commit > 1:
                        await consumer.commit(pending)
                        pending = {}
                        last_commit = time.monotonic()
        finally:
            follower.cancel()
            await consumer.stop()
            await self.log.close()

    async def _handle(self, http: httpx.AsyncClient, record: ConsumerRecord[Any, Any]) -> bool:
        """Deliver one record to its subscribers; True if it had any."""
        topic = self.logical.get(record.topic)
        if topic is None or not record.value:
            return False
        while self.synced[0] < record.timestamp:  # a subscription made just before it
            if self._follower is not None and self._follower.done():
                self._follower.result()  # the follower failed: raise its error
                raise RuntimeError("the subscriptions reader stopped")
            await asyncio.sleep(0.05)
        if not any(s.topic == topic for s in list(self.subs.values())):
            return False
        try:
            event = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(event, dict):
            return False
        stamp = datetime.fromtimestamp(record.timestamp / 1000, tz=UTC)
        wanted = [
            s
            for s in list(self.subs.values())
            if s.topic == topic and s.active and stamp >= s.created_at and matches(s.filters, event)
        ]
        key = str(event.get("event_id") or f"{record.topic}:{record.partition}:{record.offset}")
        await asyncio.gather(*(self._deliver(http, s, key, record.value, event) for s in wanted))
        return bool(wanted)

    async def _deliver(
        self,
        http: httpx.AsyncClient,
        sub: Subscription,
        key: str,
        body: bytes,
        event: dict[str, Any],
    ) -> None:
        msg_id = webhook_id(sub.id, key)
        content: dict[str, str] = {}
        if sub.format == "cloudevents":
            content, body = outbound_message(
                event,
                msg_id=msg_id,
                node_id=self.settings.node_id,
                topic=sub.topic,
                mode=sub.content_mode,
            )
        try:
            check_target(self.settings, sub.url)  # again: DNS may have changed
        except InputError as exc:
            await self._dead(sub, msg_id, key, "refused", str(exc), 0)
            return

        def still_wanted() -> bool:
            current = self.subs.get(sub.id)
            return current is not None and current.active

        outcome = await deliver(
            http,
            sub.url,
            subscription_secret(self.master, sub.id),
            msg_id,
            body,
            self.settings.webhook_retry_schedule_s,
            self.settings.webhook_timeout_s,
            still_wanted,
            lambda status: self.metrics.webhook_deliveries.labels(status).inc(),
            content,
        )
        if outcome.result == "gone":
            disabled = sub.model_copy(
                update={"active": False, "disabled_reason": f"410 Gone for {msg_id}"}
            )
            self.subs[sub.id] = disabled
            await self.log.put(disabled)
        elif outcome.result == "exhausted":
            await self._dead(
                sub, msg_id, key, "exhausted", f"last status {outcome.last_status}",
                outcome.attempts, outcome.last_status,
            )  # fmt: skip

    async def _dead(
        self,
        sub: Subscription,
        msg_id: str,
        key: str,
        reason: str,
        detail: str,
        attempts: int,
        last_status: str = "none",
    ) -> None:
        self.metrics.webhook_deadletters.labels(reason).inc()
        await self.log.dead_letter(
            {
                "subscription_id": sub.id,
                "webhook_id": msg_id,
                "event_key": key,
                "topic": sub.topic,
                "url": sub.url,
                "reason": reason,
                "detail": detail,
                "attempts": attempts,
                "last_status": last_status,
                "at": time.time(),
            }
        )
        log.warning("webhook %s to %s dead-lettered: %s", msg_id, sub.url, detail)


def main() -> None:
    """Run one delivery worker with settings from the environment until SIGTERM."""
    settings = load_settings()
    worker = DeliveryWorker(settings, Topology.for_settings(settings))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(worker.run())


if __name__ == "__main__":
    main()

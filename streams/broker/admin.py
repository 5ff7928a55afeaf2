"""Create topics up front with aiokafka's admin client, idempotently.

faust does not create source topics and crashes on a partition-count mismatch, and an
auto-created topic takes the broker's default count; so the runner creates its topics
here first. An existing topic with the asked-for count is fine; any other count is a
:class:`TopicMismatchError` naming topic, expected and actual counts.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, for_code

from gravitas.schemas.errors import BrokerError, InputError
from gravitas.streams.broker._sync import run_sync
from gravitas.streams.broker.errors import TopicMismatchError

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_TOPIC_ALREADY_EXISTS = 36
log = logging.getLogger(__name__)


def _validate(topics: dict[str, int]) -> None:
    for name, count in topics.items():
        if not _TOPIC_RE.match(name) or name in {".", ".."}:
            raise InputError(
                f"invalid Kafka topic name {name!r}: use 1-249 characters of "
                f"[A-Za-z0-9._-], not '.' or '..'"
            )
        if not isinstance(count, int) or count < 1:
            raise InputError(f"topic {name!r}: partition count must be an int >= 1, got {count!r}")


async def partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Partition count of every topic whose partitions all have a leader.

    Asks for all topics (a null topic list), which never auto-creates one.
    """
    counts: dict[str, int] = {}
    described: list[dict[str, Any]] = await admin.describe_topics()
    for topic in described:
        if topic["error_code"] != 0:
            continue
        parts = topic["partitions"]
        if parts and all(p["error_code"] == 0 and p["leader"] >= 0 for p in parts):
            counts[topic["topic"]] = len(parts)
    return counts


def _check_counts(existing: dict[str, int], topics: dict[str, int]) -> None:
    for name, want in topics.items():
        have = existing.get(name)
        if have is not None and have != want:
            raise TopicMismatchError(
                f"topic {name!r} exists with {have} partition(s), expected {want}: delete it "
                f"(or use a new topic name) or configure {have} partition(s) for it"
            )


async def create_topics(
    bootstrap: str,
    topics: dict[str, int],
    timeout: float = 30,
    replication_factor: int = 1,
) -> None:
    """Ensure each topic in ``topics`` (name -> partition count) exists with that count.

    Waits (at most ``timeout`` seconds) until every partition has a leader, so producers
    and consumers can use the topics at once. Raises :class:`TopicMismatchError` for an
    existing topic with another count and :class:`BrokerError` when the broker fails.
    """
    _validate(topics)
    if not topics:
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout * 1000))
    )
    try:
        async with asyncio.timeout(timeout):
            await _start_when_up(admin, bootstrap)
            existing = await partition_counts(admin)
            _check_counts(existing, topics)
            missing = [name for name in topics if name not in existing]
            if missing:
                await _create(admin, {n: topics[n] for n in missing}, replication_factor)
            while True:
                existing = await partition_counts(admin)
                _check_counts(existing, topics)
                if all(name in existing for name in topics):
                    break
                await asyncio.sleep(0.1)
            if missing:
                await _await_leaders(bootstrap, {n: topics[n] for n in missing}, timeout)
    except (TimeoutError, KafkaError) as exc:
        raise BrokerError(
            f"topics {sorted(topics)} not ready on {bootstrap} within {timeout} s "
            f"({type(exc).__name__}{': ' if str(exc) else ''}{exc}): check that the broker "
            f"runs there, or raise "
            f"the timeout"
        ) from exc
    finally:
        await admin.close()


async def _start_when_up(admin: AIOKafkaAdminClient, bootstrap: str) -> None:
    """Start the admin client, retrying while the broker is still starting.

    A node and its broker are often started together (``gravitas broker &`` then
    ``gravitas node``, or a compose file); the caller's timeout bounds the wait.
    """
    delay = 0.2
    while True:
        try:
            await admin.start()
            return
        except KafkaConnectionError:
            log.info("waiting for Kafka at %s ...", bootstrap)
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)


async def _create(
    admin: AIOKafkaAdminClient, topics: dict[str, int], replication_factor: int
) -> None:
    new = [NewTopic(name, count, replication_factor) for name, count in topics.items()]
    response = await admin.create_topics(new)
    for item in response.to_object()["topic_errors"]:
        code = item["error_code"]
        if code in (0, _TOPIC_ALREADY_EXISTS):  # a concurrent creator: counts checked later
            continue
        err = for_code(code)
        raise BrokerError(
            f"creating topic {item['topic']!r} with {topics[item['topic']]} partition(s) "
            f"failed: {err.__name__}: {item.get('error_message') or err.description}"
        )


async def _await_leaders(bootstrap: str, topics: dict[str, int], timeout: float) -> None:
    """Wait until each partition's leader answers ListOffsets.

    The broker's metadata names a new leader a moment before that leader serves the
    partition; without this wait the first produce logs NotLeaderForPartition retries.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout * 1000))
    )
    await consumer.start()
    try:
        parts = [TopicPartition(n, p) for n, count in topics.items() for p in range(count)]
        await consumer.end_offsets(parts)
    finally:
        await consumer.stop()


def create_topics_sync(
    bootstrap: str,
    topics: dict[str, int],
    timeout: float = 30,
    replication_factor: int = 1,
) -> None:
    """Blocking :func:`create_topics` (works inside a running event loop too)."""
    run_sync(create_topics(bootstrap, topics, timeout, replication_factor))


async def broker_ready(bootstrap: str, timeout: float = 5) -> bool:
    """True when an aiokafka bootstrap to ``bootstrap`` sees at least one broker."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout * 1000))
    )
    try:
        async with asyncio.timeout(timeout):
            await _start_when_up(admin, bootstrap)
            cluster = await admin.describe_cluster()
            return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        await admin.close()

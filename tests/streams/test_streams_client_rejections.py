"""The SDK learns of a rejected request at once: ``Client.request`` watches
``deadletter`` for a ``Rejected`` record naming its event and raises
``RequestRejectedError`` with the node's reason instead of waiting for its timeout; on
the in-process bus, through a node's HTTP edge, and on Kafka."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gravitas.schemas.events import Ping, Pong
from gravitas.schemas.settings import load_settings
from gravitas.streams.broker import KafkaBroker
from gravitas.streams.client import Client, RequestRejectedError
from gravitas.streams.node import EmbeddedNode
from tests.fixtures.nodes import kafka_harness

TIMEOUT = 120.0  # a rejection must arrive long before this


async def _rejected_at_once(client: Client) -> RequestRejectedError:
    started = time.monotonic()
    ping = Ping(request_id="drill-1", fail="UnsupportedFormatError")
    with pytest.raises(RequestRejectedError) as info:
        await client.request(ping, "ops.pong", timeout=TIMEOUT)
    assert time.monotonic() - started < 30
    err = info.value
    assert err.rejected.source_event_id == str(ping.event_id)
    assert "UnsupportedFormatError" in str(err) and "fault drill" in str(err)
    assert "agent ping" in str(err)
    reply = await client.request(Ping(request_id="fine-1"), "ops.pong", timeout=TIMEOUT)
    assert isinstance(reply, Pong)  # the node still serves
    return err


async def test_in_process_and_through_the_edge(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "node", http_port=0, node_id="rej")
    async with EmbeddedNode(settings) as node:
        await _rejected_at_once(node.client())
        async with Client("memory://", data_dir=settings.data_dir) as client:  # token file
            await _rejected_at_once(client)


@pytest.mark.kafka
async def test_on_kafka(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    async with kafka_harness(tmp_path, kafka_broker.bootstrap, "rejections") as h:
        await _rejected_at_once(h.client)

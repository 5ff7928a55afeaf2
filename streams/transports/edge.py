"""Transport through a running node's HTTP edge (how the CLI reaches an embedded node)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson

from gravitas.schemas.errors import TransportError
from gravitas.schemas.settings import Settings
from gravitas.storage.secrets import read_secret
from gravitas.streams.transports.base import RawRecord, Subscription

NODE_FILE = "node.json"
TOKEN_FILE = "api_token"
"""The node's generated API token in its data dir (see :mod:`gravitas.streams.edge.auth`)."""


def local_token(settings: Settings, data_dir: Path | None = None) -> str | None:
    """The token a local client sends: ``GRAVITAS_API_TOKEN``, else the node's token file."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    raw = read_secret(Path(data_dir or settings.data_dir) / TOKEN_FILE)
    return raw.decode() if raw else None


def discover_edge(data_dir: Path) -> str:
    """The edge URL a running node wrote into its data directory."""
    path = data_dir / NODE_FILE
    try:
        return str(orjson.loads(path.read_bytes())["edge_url"])
    except (OSError, KeyError, orjson.JSONDecodeError):
        raise TransportError(
            f"no running gravitas node found ({path} is missing); start one with "
            f"`gravitas node --data {data_dir}` or pass --edge URL"
        ) from None


class _EdgeSubscription:
    def __init__(self, lines: AsyncIterator[str], topic: str) -> None:
        self._lines = lines
        self._topic = topic

    async def __aiter__(self) -> AsyncIterator[RawRecord]:
        async for line in self._lines:
            if not line.strip():
                continue
            data = orjson.loads(line)
            if "value" in data:
                value = orjson.dumps(data["value"])
            else:
                value = str(data.get("raw", "")).encode()
            yield RawRecord(
                self._topic,
                int(data["partition"]),
                int(data["offset"]),
                str(data.get("key", "")).encode(),
                value,
                int(data.get("timestamp_ms", 0)),
            )


class EdgeTransport:
    """Publish with POST /topics/T/events; read with the NDJSON stream of the same URL."""

    def __init__(self, edge_url: str, token: str | None = None) -> None:
        self.edge_url = edge_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.edge_url, headers=headers, timeout=30)

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        await self.publish_lines(topic, [value])

    async def publish_lines(self, topic: str, lines: list[bytes]) -> dict[str, object]:
        """Publish several encoded events in one request (all or none)."""
        return await self._post(f"/topics/{topic}/events", lines)

    async def publish_records(self, topic: str, lines: list[bytes]) -> dict[str, object]:
        """Send raw records: the edge publishes the valid ones and dead-letters each bad
        one; the answer lists them (``rejected``: line, reason, rejected_id)."""
        return await self._post(f"/topics/{topic}/records", lines)

    async def _post(self, path: str, lines: list[bytes]) -> dict[str, object]:
        try:
            resp = await self._http.post(
                path,
                content=b"\n".join(lines),
                headers={"Content-Type": "application/x-ndjson"},
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach the node's edge at {self.edge_url}: {exc}") from exc
        if resp.status_code != 200:
            raise TransportError(f"edge refused the events ({resp.status_code}): {resp.text}")
        result: dict[str, object] = resp.json()
        return result

    @asynccontextmanager
    async def subscription(
        self, topic: str, from_beginning: bool = False
    ) -> AsyncIterator[Subscription]:
        params = {"from_beginning": "true" if from_beginning else "false"}
        try:
            async with self._http.stream(
                "GET", f"/topics/{topic}/events", params=params, timeout=None
            ) as resp:
                if resp.status_code != 200:
                    body = (await resp.aread()).decode(errors="replace")
                    raise TransportError(f"edge refused to stream {topic!r}: {body}")
                lines = resp.aiter_lines()
                first = await lines.__anext__()  # {"ready": true}: positioned
                if "ready" not in first:
                    raise TransportError(f"unexpected first line from the edge: {first[:100]!r}")
                yield _EdgeSubscription(lines, topic)
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach the node's edge at {self.edge_url}: {exc}") from exc

    async def close(self) -> None:
        await self._http.aclose()

"""What the openEO routes share: the node's services, token, peers' keys, the store, and
how to publish events (batch jobs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property

from fastapi import Request

from gravitas.agents.services import NodeServices
from gravitas.agents.signing import SignatureError, UnknownPeerError, verify_request
from gravitas.schemas.base import Event
from gravitas.streams.openeo.auth import current_user
from gravitas.streams.openeo.errors import TokenInvalidError
from gravitas.streams.openeo.store import OpenEOStore

API_PREFIX = "/openeo/1.2"
Publish = Callable[[str, Event], Awaitable[None]]


@dataclass
class OpenEOContext:
    services: NodeServices
    token: str
    peer_keys: dict[str, str]
    publish: Publish | None = None

    @cached_property
    def store(self) -> OpenEOStore:
        return OpenEOStore.for_data_dir(self.services.data_dir)

    async def user(self, request: Request) -> str:
        """The request's user: a bearer token, or ``peer-<node>`` for a signed request
        forwarded by a configured peer."""
        if "x-gravitas-signature" in request.headers:
            body = await request.body()
            try:
                node = verify_request(request.headers, request.url.path, body, self.peer_keys)
            except (SignatureError, UnknownPeerError) as exc:
                raise TokenInvalidError(f"forwarded request refused: {exc}") from exc
            return f"peer-{node}"
        return current_user(self.token, request.headers.get("authorization"))


def base_url(request: Request) -> str:
    """The openEO API root of this request (``.../openeo/1.2``)."""
    return f"{request.url.scheme}://{request.url.netloc}{API_PREFIX}"

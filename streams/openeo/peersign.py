"""Signed answers to signed peer requests (federated batch jobs and forwarded ``/result``).

A node that proxies a batch job or a synchronous ``/result`` to its owner node signs the
request (:meth:`gravitas.agents.signing.NodeIdentity.sign_request`); the owner signs its
answer over a domain tag of its own (``gravitas-openeo-answer``, so an answer is never a valid
request nor a metrics read), its node id, the time, the request's signature (so an
answer cannot be replayed for another request), the HTTP status and the SHA-256 of the
body. The proxying node accepts an answer only when the configured key of the node it
asked signed it, at most ``RPC_MAX_SKEW_S`` ago: an unsigned, forged, replayed or stale
answer is refused (:func:`check_answer`) and none of it used.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

import httpx
import orjson
from fastapi.responses import Response

from gravitas.agents import answer_signing as signing
from gravitas.agents.signing import NodeIdentity, SignatureError
from gravitas.schemas.errors import GravitasError
from gravitas.schemas.peers import Peer
from gravitas.streams.openeo.errors import (
    BadRequestError,
    OpenEOError,
    PeerAnswerRefusedError,
    ServiceUnavailableError,
)

log = logging.getLogger("gravitas.openeo.federation")
DOMAIN = "gravitas-openeo-answer"


def answer_bytes(node_id: str, stamp: str, nonce: str, status: int, body: bytes) -> bytes:
    """What an openEO answer's signature covers (:func:`gravitas.agents.answer_signing`)."""
    return signing.answer_bytes(DOMAIN, node_id, stamp, nonce, status, body)


def sign_answer(
    identity: NodeIdentity, nonce: str, status: int, body: bytes, now: float | None = None
) -> dict[str, str]:
    """Headers that sign one answer to the request whose signature is ``nonce``."""
    return signing.sign_answer(identity, DOMAIN, nonce, status, body, now)


def verify_answer(
    headers: Mapping[str, str],
    nonce: str,
    status: int,
    body: bytes,
    node_id: str,
    public_key: str,
) -> None:
    """Check that ``node_id``'s key signed this answer to the request ``nonce``, or raise
    :class:`SignatureError` naming what is wrong (``headers`` as httpx gives them)."""
    signing.verify_answer(headers, DOMAIN, nonce, status, body, node_id, public_key)


def signed_response(
    identity: NodeIdentity,
    nonce: str,
    status: int,
    body: bytes,
    media_type: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An HTTP answer to the signed request ``nonce``, signed by this node."""
    signed = {**(headers or {}), **sign_answer(identity, nonce, status, body)}
    return Response(body, status_code=status, media_type=media_type, headers=signed)


def signed_error(identity: NodeIdentity, nonce: str, exc: Exception) -> Response:
    """An openEO error body for ``exc``, signed like any answer (a peer trusts only signed
    errors too): openEO errors keep their code, other gravitas errors are ``BadRequest``,
    anything else ``Internal``."""
    if not isinstance(exc, OpenEOError):
        exc = (
            BadRequestError(str(exc))
            if isinstance(exc, GravitasError)
            else OpenEOError(f"internal error ({type(exc).__name__})")
        )
    body = orjson.dumps(
        {"id": uuid.uuid4().hex, "code": exc.code, "message": exc.message, "links": []}
    )
    return signed_response(identity, nonce, exc.status, body, "application/json")


def check_answer(
    resp: httpx.Response, nonce: str, node_id: str, public_key: str, what: str
) -> None:
    """Refuse (:class:`PeerAnswerRefusedError`, 502, naming the node) a peer's answer that
    ``node_id``'s configured key did not sign for the request ``nonce``, its status and
    its body; the caller then uses none of it."""
    try:
        verify_answer(resp.headers, nonce, resp.status_code, resp.content, node_id, public_key)
    except SignatureError as exc:
        log.warning("answer of node %s to %s refused: %s", node_id, what, exc)
        raise PeerAnswerRefusedError(
            f"the answer of node {node_id!r} to {what} was refused: {exc}"
        ) from None


def post_signed(
    identity: NodeIdentity,
    node_id: str,
    peer: Peer,
    path: str,
    body: bytes,
    timeout_s: float,
    what: str,
) -> httpx.Response:
    """POST ``body`` to ``path`` on the configured peer ``node_id``, signed by this node;
    its answer once :func:`check_answer` accepted it (``ServiceUnavailableError`` when the
    peer cannot be reached)."""
    url = f"{peer.api_url}{path}"
    headers = identity.sign_request(path, body)
    try:
        resp = httpx.post(
            url,
            content=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"node {node_id} at {url} is unreachable: {exc}") from exc
    check_answer(resp, headers["X-Gravitas-Signature"], node_id, peer.public_key, what)
    return resp


def answer_error(resp: httpx.Response) -> tuple[str, str]:
    """``(message, code)`` of a verified peer's error answer (its openEO error body, else
    the start of its text and ``Internal``)."""
    message, code = resp.text[:500], "Internal"
    try:
        err = resp.json()
        message, code = str(err.get("message", message)), str(err.get("code", code))
    except (ValueError, AttributeError):
        pass
    return message, code

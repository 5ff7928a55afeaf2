"""Signed answers to a peer's request: one scheme for every answer a node signs.

A node that asks a peer something (a forwarded openEO call, a federation metrics read)
sends a nonce (a forwarded request's own signature, or a random token); the peer signs
its answer over a domain tag naming the kind of answer (so an answer of one kind is
never valid as another, nor as a request), its node id, the time, the nonce (so an
answer cannot be replayed for another request), the HTTP status and the SHA-256 of the
body. The asker accepts it only when the configured key of the node it asked verifies
it, at most ``RPC_MAX_SKEW_S`` from its own clock; anything else is a
:class:`~gravitas.agents.signing.SignatureError` naming what is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gravitas.agents.signing import RPC_MAX_SKEW_S, NodeIdentity, SignatureError
from gravitas.schemas.peers import decode_public_key

__all__ = ["answer_bytes", "sign_answer", "verify_answer"]


def answer_bytes(
    domain: str, node_id: str, stamp: str, nonce: str, status: int, body: bytes
) -> bytes:
    """What is signed: the domain tag, signer, time, nonce, status and body digest."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{domain}\n{node_id}\n{stamp}\n{nonce}\n{status}\n{digest}".encode()


def sign_answer(
    identity: NodeIdentity,
    domain: str,
    nonce: str,
    status: int,
    body: bytes,
    now: float | None = None,
) -> dict[str, str]:
    """The headers that sign one answer (``X-Gravitas-Node/-Time/-Signature``)."""
    stamp = f"{time.time() if now is None else now:.3f}"
    data = answer_bytes(domain, identity.node_id, stamp, nonce, status, body)
    return {
        "X-Gravitas-Node": identity.node_id,
        "X-Gravitas-Time": stamp,
        "X-Gravitas-Signature": base64.b64encode(identity.key.sign(data)).decode("ascii"),
    }


def verify_answer(
    headers: Mapping[str, str],
    domain: str,
    nonce: str,
    status: int,
    body: bytes,
    node_id: str,
    public_key: str,
) -> None:
    """Check that ``node_id``'s key signed this answer for ``nonce`` (lower-case header
    names, as httpx gives them), or raise :class:`SignatureError` naming what is wrong."""
    signer = headers.get("x-gravitas-node", "")
    stamp = headers.get("x-gravitas-time", "")
    signature = headers.get("x-gravitas-signature", "")
    if not (signer and stamp and signature):
        raise SignatureError(
            f"the answer of node {node_id!r} is unsigned: it carries no signature "
            "(X-Gravitas-* headers)"
        )
    if signer != node_id:
        raise SignatureError(f"the answer is signed as {signer[:64]!r}, not by {node_id!r}")
    try:
        skew = abs(time.time() - float(stamp))
    except ValueError:
        raise SignatureError(f"X-Gravitas-Time {stamp[:40]!r} is not a number") from None
    if skew > RPC_MAX_SKEW_S:
        raise SignatureError(f"the answer of node {node_id!r} is {skew:.0f} s off this clock")
    try:
        raw = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(decode_public_key(public_key)).verify(
            raw, answer_bytes(domain, node_id, stamp, nonce, status, body)
        )
    except (InvalidSignature, ValueError):
        raise SignatureError(
            f"the signature of node {node_id!r} does not verify for this answer "
            "(forged, altered or replayed)"
        ) from None

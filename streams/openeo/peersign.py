"""Signed answers to signed peer requests (federated batch jobs).

A node that proxies a batch job to its owner node signs the request
(:meth:`gravitas.agents.signing.NodeIdentity.sign_request`); the owner signs its answer
over a domain tag of its own (``gravitas-openeo-answer``, so an answer is never a valid
request nor a metrics read), its node id, the time, the request's signature (so an
answer cannot be replayed for another request), the HTTP status and the SHA-256 of the
body. The proxying node accepts an answer only when the configured key of the node it
asked signed it: an unsigned, forged or replayed answer is refused and none of it used.
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

DOMAIN = "gravitas-openeo-answer"


def answer_bytes(node_id: str, stamp: str, nonce: str, status: int, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{DOMAIN}\n{node_id}\n{stamp}\n{nonce}\n{status}\n{digest}".encode()


def sign_answer(
    identity: NodeIdentity, nonce: str, status: int, body: bytes, now: float | None = None
) -> dict[str, str]:
    """Headers that sign one answer to the request whose signature is ``nonce``."""
    stamp = f"{time.time() if now is None else now:.3f}"
    signature = identity.key.sign(answer_bytes(identity.node_id, stamp, nonce, status, body))
    return {
        "X-Gravitas-Node": identity.node_id,
        "X-Gravitas-Time": stamp,
        "X-Gravitas-Signature": base64.b64encode(signature).decode("ascii"),
    }


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
    signer = headers.get("x-gravitas-node", "")
    stamp = headers.get("x-gravitas-time", "")
    signature = headers.get("x-gravitas-signature", "")
    if not (signer and stamp and signature):
        raise SignatureError(
            f"the answer of node {node_id!r} is unsigned (no X-Gravitas-* headers)"
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
            raw, answer_bytes(node_id, stamp, nonce, status, body)
        )
    except (InvalidSignature, ValueError):
        raise SignatureError(
            f"the signature of node {node_id!r} does not verify for this answer "
            "(forged, altered or replayed)"
        ) from None

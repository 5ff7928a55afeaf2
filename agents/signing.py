"""This node's Ed25519 identity: it signs the registrations it publishes and the
requests it forwards; peers verify both against the public keys they were configured
with (``Settings.peers``).

What is signed is a canonical encoding (orjson, sorted keys) of the event without its
``signature`` and without the envelope fields a runner re-stamps on emit (``event_id``,
``node_id``): the owner, item, collection and version are all covered, so a forged or
altered registration fails verification, and a replayed old one carries its old version.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gravitas.schemas.base import Event
from gravitas.schemas.errors import ConfigError, InputError
from gravitas.schemas.peers import decode_public_key
from gravitas.schemas.settings import Settings
from gravitas.storage.secrets import secret_file

KEY_FILE = "node_key"
UNSIGNED_FIELDS = frozenset({"signature", "event_id", "node_id"})
RPC_MAX_SKEW_S = 300.0
"""How far a forwarded request's timestamp may be from this node's clock."""

E = TypeVar("E", bound=Event)


class SignatureError(InputError):
    """A federation message that is unsigned, signed by an unknown key, or altered."""


class OwnerMismatchError(InputError):
    """A registration that would change an item another node owns."""


class UnknownPeerError(InputError):
    """A node id that is not a configured peer of this federation."""


def canonical(event: Event) -> bytes:
    """The bytes a registration's signature covers."""
    data = event.model_dump(mode="json", exclude=set(UNSIGNED_FIELDS))
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _seed(value: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise ConfigError(f"{where} is not base64 (generate one with `gravitas keygen`)") from None
    if len(raw) != 32:
        raise ConfigError(f"{where} has {len(raw)} bytes; an Ed25519 private key has 32")
    return raw


def generate_seed() -> str:
    """A new base64 Ed25519 private key."""
    key = Ed25519PrivateKey.generate()
    return _b64(key.private_bytes_raw())


@dataclass(frozen=True)
class NodeIdentity:
    """A node id with its private key."""

    node_id: str
    key: Ed25519PrivateKey

    @classmethod
    def load(cls, settings: Settings) -> NodeIdentity:
        """The key from ``settings.signing_key``, else ``<data_dir>/node_key`` (created on
        first use, mode 0600)."""
        if settings.signing_key is not None:
            seed = _seed(settings.signing_key.get_secret_value(), "GRAVITAS_SIGNING_KEY")
        else:
            path = Path(settings.data_dir) / KEY_FILE
            text = secret_file(path, lambda: generate_seed().encode()).decode()
            seed = _seed(text, str(path))
        return cls(settings.node_id, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> str:
        """Base64 of the raw public key (what peers put in ``GRAVITAS_PEERS``)."""
        return _b64(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, event: E) -> E:
        """The event with its ``signature`` set."""
        signature = _b64(self.key.sign(canonical(event)))
        return event.model_copy(update={"signature": signature})

    def sign_request(self, path: str, body: bytes, now: float | None = None) -> dict[str, str]:
        """Headers that authenticate a forwarded request (``POST path`` with ``body``)."""
        stamp = f"{time.time() if now is None else now:.3f}"
        signature = self.key.sign(_request_bytes(self.node_id, stamp, path, body))
        return {
            "X-Gravitas-Node": self.node_id,
            "X-Gravitas-Time": stamp,
            "X-Gravitas-Signature": _b64(signature),
        }


def _request_bytes(node_id: str, stamp: str, path: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"gravitas-rpc\n{node_id}\n{stamp}\n{path}\n{digest}".encode()


def trusted_keys(settings: Settings, identity: NodeIdentity) -> dict[str, str]:
    """Node id -> base64 public key of every node whose messages this node accepts."""
    keys = {node_id: peer.public_key for node_id, peer in settings.peers.items()}
    keys[identity.node_id] = identity.public_key
    return keys


def _verify(public_key: str, signature: str, data: bytes, what: str) -> None:
    try:
        raw_sig = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(decode_public_key(public_key)).verify(raw_sig, data)
    except (InvalidSignature, ValueError):
        raise SignatureError(f"{what}: the signature does not verify") from None


def verify_event(event: Event, owner: str, keys: Mapping[str, str]) -> None:
    """Check that ``event`` is signed by ``owner``'s configured key."""
    what = f"{type(event).__name__} {getattr(event, 'item_id', event.event_id)} from {owner!r}"
    signature = str(getattr(event, "signature", "") or "")
    if not signature:
        raise SignatureError(f"{what} is unsigned; only signed registrations are accepted")
    public_key = keys.get(owner)
    if public_key is None:
        raise UnknownPeerError(
            f"{what}: node {owner!r} is not a configured peer (known: {sorted(keys)}); "
            "add it to GRAVITAS_PEERS with its public key"
        )
    _verify(public_key, signature, canonical(event), what)


def signed_by(event: Event, identity: NodeIdentity) -> bool:
    """True when ``event`` carries a valid signature by ``identity``'s key."""
    try:
        verify_event(event, identity.node_id, {identity.node_id: identity.public_key})
    except SignatureError:
        return False
    return True


def verify_request(
    headers: Mapping[str, str],
    path: str,
    body: bytes,
    keys: Mapping[str, str],
    now: float | None = None,
) -> str:
    """The peer that signed a forwarded request, or :class:`SignatureError`."""
    node_id = headers.get("x-gravitas-node", "")
    stamp = headers.get("x-gravitas-time", "")
    signature = headers.get("x-gravitas-signature", "")
    if not (node_id and stamp and signature):
        raise SignatureError("request carries no peer signature (X-Gravitas-* headers)")
    public_key = keys.get(node_id)
    if public_key is None:
        raise UnknownPeerError(f"request signed by {node_id!r}, which is not a configured peer")
    try:
        skew = abs((time.time() if now is None else now) - float(stamp))
    except ValueError:
        raise SignatureError(f"X-Gravitas-Time {stamp[:40]!r} is not a number") from None
    if skew > RPC_MAX_SKEW_S:
        raise SignatureError(
            f"request from {node_id!r} is {skew:.0f} s off this node's clock "
            f"(at most {RPC_MAX_SKEW_S:.0f} s); replayed or clocks unsynchronised"
        )
    _verify(
        public_key,
        signature,
        _request_bytes(node_id, stamp, path, body),
        f"request from {node_id!r}",
    )
    return node_id

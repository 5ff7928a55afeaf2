"""Results too large for a message travel by reference to the object store.

A pixel search may match millions of pixels, far over the broker's message limit. When
a result's encoding is larger than ``GRAVITAS_INLINE_RESULT_BYTES`` the whole result is
written to the object store under ``results/<request id>.json`` and the message carries
its key, size and SHA-256 with no matches; :func:`fetch_referenced` (used by the SDK and
so the CLI) reads it back and checks it.
"""

from __future__ import annotations

import hashlib

from gravitas.agents.services import NodeServices
from gravitas.schemas.codec import decode, encode
from gravitas.schemas.errors import NotFoundError, StorageError
from gravitas.schemas.events import SearchResult
from gravitas.storage.objects import ObjectStore

__all__ = ["RESULTS_PREFIX", "ResultReferenceError", "by_reference", "fetch_referenced"]

RESULTS_PREFIX = "results/"


class ResultReferenceError(StorageError):
    """A referenced result is missing, altered, or belongs to another request."""


def by_reference(services: NodeServices, result: SearchResult, limit: int) -> SearchResult:
    """``result`` itself if it encodes to at most ``limit`` bytes, else a copy without
    matches that references the whole result in the object store."""
    if not result.matches:
        return result
    body = encode(result)
    if len(body) <= limit:
        return result
    key = f"{RESULTS_PREFIX}{result.request_id}.json"
    stat = services.object_store.put_bytes(key, body)
    return result.model_copy(
        update={
            "matches": [],
            "result_ref": key,
            "result_sha256": stat.sha256,
            "result_bytes": stat.size,
        }
    )


def fetch_referenced(store: ObjectStore, result: SearchResult) -> SearchResult:
    """The whole result a reference points at (``result`` itself if it has none)."""
    key = result.result_ref
    if key is None:
        return result
    if not key.startswith(RESULTS_PREFIX):
        raise ResultReferenceError(
            f"result reference {key!r} is outside {RESULTS_PREFIX!r}; refusing to read it"
        )
    try:
        body = store.get_bytes(key)
    except NotFoundError:
        raise ResultReferenceError(
            f"the answer to {result.request_id!r} ({result.result_bytes} bytes) is stored by "
            f"node {result.served_by!r} under {key!r}, which is not in {store.url}; point "
            "GRAVITAS_OBJECT_STORE (or GRAVITAS_DATA_DIR) at that node's object store"
        ) from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != result.result_sha256:
        raise ResultReferenceError(
            f"result {key!r} has SHA-256 {digest}, the answer names {result.result_sha256}"
        )
    whole = decode(body, (SearchResult,))
    assert isinstance(whole, SearchResult)
    if whole.request_id != result.request_id:
        raise ResultReferenceError(
            f"result {key!r} answers {whole.request_id!r}, not {result.request_id!r}"
        )
    return whole

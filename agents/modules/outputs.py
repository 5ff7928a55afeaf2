"""Where a module step puts an array output: the node's object store, under a key
derived from the step id (a replay writes the same bytes under the same key)."""

from __future__ import annotations

import hashlib
import io

import numpy as np

from gravitas.agents.modules.context import ModuleContext


def array_bytes(array: np.ndarray) -> bytes:
    """The ``.npy`` bytes of an array (deterministic)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def save_array(ctx: ModuleContext, array: np.ndarray) -> tuple[str, str]:
    """Store ``array`` as ``.npy``; return its key and sha256."""
    data = array_bytes(array)
    digest = hashlib.sha256(data).hexdigest()
    key = f"workflows/{ctx.step_id}.npy"
    if ctx.services is not None:
        ctx.services.object_store.put_bytes(key, data)
    return key, digest


def load_array(data: bytes) -> np.ndarray:
    """An array back from its ``.npy`` bytes."""
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False))

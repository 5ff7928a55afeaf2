"""Signed answers of a node to its peers (batch-job calls, metrics reads): an answer
verifies only for the request, status and body it was signed for, by the configured key
of the node asked, and only as the kind of answer it was signed as."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from gravitas.agents.signing import NodeIdentity, SignatureError
from gravitas.schemas.errors import InputError
from gravitas.schemas.settings import load_settings
from gravitas.streams.openeo.errors import JobNotFoundError
from gravitas.streams.openeo.peersign import sign_answer, signed_error, verify_answer


def _identity(tmp_path: Path, node: str) -> NodeIdentity:
    return NodeIdentity.load(load_settings(data_dir=tmp_path / node, node_id=node))


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_answer_verifies_only_as_signed(tmp_path: Path) -> None:
    a, other = _identity(tmp_path, "a"), _identity(tmp_path, "x")
    body = b'{"status": "finished"}'
    headers = _lower(sign_answer(a, "nonce-1", 200, body))
    verify_answer(headers, "nonce-1", 200, body, "a", a.public_key)  # the genuine answer
    cases = [
        ({}, "nonce-1", 200, body, "a", a.public_key, "unsigned"),
        (headers, "nonce-2", 200, body, "a", a.public_key, "does not verify"),  # replayed
        (headers, "nonce-1", 404, body, "a", a.public_key, "does not verify"),  # status
        (headers, "nonce-1", 200, body + b" ", "a", a.public_key, "does not verify"),
        (headers, "nonce-1", 200, body, "a", other.public_key, "does not verify"),  # key
        (headers, "nonce-1", 200, body, "b", a.public_key, "not by 'b'"),
        ({**headers, "x-gravitas-time": "soon"}, "nonce-1", 200, body, "a", a.public_key,
         "'soon' is not a number"),
    ]  # fmt: skip
    for hdrs, nonce, status, data, node, key, why in cases:
        with pytest.raises(SignatureError, match=why):
            verify_answer(hdrs, nonce, status, data, node, key)
    old = _lower(sign_answer(a, "nonce-1", 200, body, now=time.time() - 3600))
    with pytest.raises(SignatureError, match="off this clock"):
        verify_answer(old, "nonce-1", 200, body, "a", a.public_key)


def test_error_answers_are_signed_too(tmp_path: Path) -> None:
    """An error answer to a peer is an openEO body signed like any answer: a refusal by
    the node asked cannot be forged either."""
    a = _identity(tmp_path, "a")
    for exc, status, code in (
        (JobNotFoundError("job 'j-1' does not exist"), 404, "JobNotFound"),
        (InputError("bad value 'x'"), 400, "BadRequest"),
        (RuntimeError("boom"), 500, "Internal"),
    ):
        resp = signed_error(a, "nonce-1", exc)
        body = bytes(resp.body)
        doc = orjson.loads(body)
        assert resp.status_code == status and doc["code"] == code, doc
        assert set(doc) == {"id", "code", "message", "links"}
        headers = _lower(dict(resp.headers))
        verify_answer(headers, "nonce-1", status, body, "a", a.public_key)
        with pytest.raises(SignatureError, match="does not verify"):
            verify_answer(headers, "nonce-2", status, body, "a", a.public_key)


def test_an_answer_of_one_kind_is_not_valid_as_another(tmp_path: Path) -> None:
    """The domain tag separates answer kinds: a signed metrics read is no openEO answer
    (and the reverse), though both come from the same key for the same nonce and body."""
    from gravitas.streams.monitor.federation import sign_metrics, verify_metrics

    a = _identity(tmp_path, "a")
    body = b"gravitas_events_processed_total 1\n"
    metrics = _lower(sign_metrics(a, "nonce-1", body))
    verify_metrics(metrics, "nonce-1", body, "a", a.public_key)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_answer(metrics, "nonce-1", 200, body, "a", a.public_key)
    openeo = _lower(sign_answer(a, "nonce-1", 200, body))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_metrics(openeo, "nonce-1", body, "a", a.public_key)

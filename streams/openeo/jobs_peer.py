"""Batch jobs of another node's data, openeo-aggregator style (docs/openeo.md).

A job whose ``load_collection`` data is on node A, created on node B, is created on A
(data gravity) as A's own Kafka batch job; B names it ``<A>-<A's job id>`` (the
aggregator's ``{backend_id}-{job_id}``) and proxies every job call to A: describe,
patch, delete, start, cancel, logs, results and the result file's bytes (B serves them
through its own signed download links, so only the result bytes cross).

The wire: ``POST {A's configured api_url}/openeo/1.2/federation/jobs`` with a JSON body
``{op, user, job, ...}`` signed with B's node key (the signature covers the body, so
the user and job travel authenticated); A acts for user ``<B>~<user>`` and signs its
answer (:mod:`gravitas.streams.openeo.peersign`); B refuses an answer that its
configured key of A did not sign. Only configured peers (``GRAVITAS_PEERS``) are asked
or answered, at their configured ``api_url``; a job id naming any other node is
``JobNotFound``.

A create carries an idempotency key (B's: the client's ``Idempotency-Key`` header, else
one B draws per client request and keeps across its own retries); A stores it with the
job, so a create whose answer was lost and is sent again returns the same job id, and
the same key with another body is refused naming the key.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gravitas.agents.signing import SignatureError, UnknownPeerError, verify_request
from gravitas.schemas.errors import GravitasError
from gravitas.streams.openeo.auth import USER_RE
from gravitas.streams.openeo.context import API_PREFIX, OpenEOContext
from gravitas.streams.openeo.errors import (
    BadRequestError,
    JobNotFoundError,
    OpenEOError,
    PeerAnswerRefusedError,
    TokenInvalidError,
)
from gravitas.streams.openeo.graphs import graph_of, parse_body
from gravitas.streams.openeo.jobs_local import JOB_ID_RE, LocalJobs, check_idempotency_key
from gravitas.streams.openeo.peersign import (
    answer_error,
    post_signed,
    signed_error,
    signed_response,
)

log = logging.getLogger("gravitas.openeo.jobs")
PEER_JOBS_PATH = "/federation/jobs"
FED_JOB_RE = re.compile(r"^(?P<node>[A-Za-z0-9][A-Za-z0-9_.-]{0,62})-(?P<job>j-[0-9a-f]{16})$")
OPS = ("create", "list", "describe", "patch", "delete", "start", "cancel", "results", "asset",
       "logs")  # fmt: skip
LIST_TIMEOUT_S = 5.0
CALL_TIMEOUT_S = 60.0
ASSET_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class FedJob:
    """A job of another node, as this node names it."""

    node: str
    job: str

    @property
    def id(self) -> str:
        return f"{self.node}-{self.job}"


def fed_job(ctx: OpenEOContext, job_id: str) -> FedJob | None:
    """The peer job a job id names (None for this node's own ids); ``JobNotFound``
    naming the id when it is neither this node's nor a configured peer's."""
    if JOB_ID_RE.match(job_id):
        return None
    m = FED_JOB_RE.match(job_id)
    if m is None:
        raise JobNotFoundError(f"job id {job_id[:100]!r} is not a job id of this federation")
    if m["node"] not in ctx.services.settings.peers:
        raise JobNotFoundError(
            f"job id {job_id!r} names node {m['node']!r}, which is not a configured peer of "
            f"this node (configured: {sorted(ctx.services.settings.peers)})"
        )
    return FedJob(m["node"], m["job"])


# ---------------------------------------------------------------------------- client (B)
@dataclass
class PeerJobs:
    """This node's calls to the owner nodes of its users' peer jobs."""

    ctx: OpenEOContext

    def call(
        self, node: str, op: str, user: str, timeout_s: float = CALL_TIMEOUT_S, **fields: Any
    ) -> tuple[bytes, str]:
        """Send one signed job call to ``node``; its verified answer ``(body, content type)``
        or the peer's openEO error re-raised (its job ids named as this node names them)."""
        services = self.ctx.services
        peer = services.settings.peers.get(node)
        if peer is None:  # fed_job checked it; a peer removed since is refused the same way
            raise JobNotFoundError(f"node {node!r} is not a configured peer of this node")
        path = f"{API_PREFIX}{PEER_JOBS_PATH}"
        body = orjson.dumps({"op": op, "user": user, **fields})
        job = fields.get("job")
        what = f"{node}-{job}" if job else f"jobs on node {node}"
        log.info("openEO job call %s for %s forwarded to node %s at %s%s",
                 op, what, node, peer.api_url, path)  # fmt: skip
        resp = post_signed(services.identity, node, peer, path, body, timeout_s, f"{op} {what}")
        if resp.status_code >= 400:
            message, code = answer_error(resp)
            if job:
                message = message.replace(repr(job), repr(f"{node}-{job}"))
            raise OpenEOError(
                f"node {node}: {message}",
                code=code,
                status=resp.status_code if resp.status_code < 600 else 502,
            )
        return resp.content, resp.headers.get("content-type", "application/octet-stream")

    def json(self, node: str, op: str, user: str, **fields: Any) -> Any:
        data, _ = self.call(node, op, user, **fields)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise PeerAnswerRefusedError(
                f"node {node!r} answered {op} with a body that is not JSON"
            ) from None


# ---------------------------------------------------------------------------- server (A)
def _answer(ctx: OpenEOContext, nonce: str, status: int, body: bytes, media: str) -> Response:
    return signed_response(ctx.services.identity, nonce, status, body, media)


def _error(ctx: OpenEOContext, nonce: str, exc: Exception) -> Response:
    return signed_error(ctx.services.identity, nonce, exc)


def _str(doc: dict[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not pattern.match(value):
        raise BadRequestError(f"{what} {str(value)[:100]!r} is invalid")
    return value


def peer_jobs_router(ctx: OpenEOContext) -> APIRouter:
    """``POST /federation/jobs``: the job calls of configured peers, for their users."""
    router = APIRouter()
    local = LocalJobs(ctx)

    async def dispatch(node: str, doc: dict[str, Any]) -> tuple[int, Any]:
        op = doc.get("op")
        if op not in OPS:
            raise BadRequestError(f"job operation {str(op)[:40]!r} is unknown (one of {OPS})")
        user = f"{node}~{_str(doc, 'user', USER_RE, 'user name')}"
        if op == "list":
            return 200, {"jobs": local.list_jobs(user)}
        if op == "create":
            body = doc.get("body")
            if not isinstance(body, dict):
                raise BadRequestError("a create call needs the job's body")
            key = check_idempotency_key(doc.get("idempotency_key"))
            job_id = local.create(user, body, graph_of(body), key)
            log.info("openEO job %s created for %s (peer %s, key %s)", job_id, user, node, key)
            return 201, {"job_id": job_id}
        job = _str(doc, "job", JOB_ID_RE, "job id")
        if op == "describe":
            return 200, local.describe(user, job)
        if op == "patch":
            body = doc.get("body")
            if not isinstance(body, dict):
                raise BadRequestError("a patch call needs the job's body")
            local.patch(user, job, body)
        elif op == "delete":
            local.delete(user, job)
        elif op == "start":
            await local.start(user, job)
            log.info("openEO job %s started for %s (peer %s)", job, user, node)
        elif op == "cancel":
            local.cancel(user, job)
        elif op == "results":
            return 200, local.results(user, job)
        elif op == "logs":
            after, limit = doc.get("after", -1), doc.get("limit", 1000)
            if not isinstance(after, int) or not isinstance(limit, int) or not 0 < limit <= 10000:
                raise BadRequestError(f"logs offset {after!r} / limit {limit!r} are invalid")
            return 200, {"logs": local.logs(user, job, after, limit)}
        return 200, {}

    @router.post(PEER_JOBS_PATH, include_in_schema=False)
    async def peer_jobs(request: Request) -> Response:
        raw = await request.body()
        nonce = request.headers.get("x-gravitas-signature", "")[:200]
        try:
            try:
                node = verify_request(request.headers, request.url.path, raw, ctx.peer_keys)
            except (SignatureError, UnknownPeerError) as exc:
                raise TokenInvalidError(f"peer job call refused: {exc}") from exc
            doc = parse_body(raw)
            if doc.get("op") == "asset":
                job = _str(doc, "job", JOB_ID_RE, "job id")
                user = f"{node}~{_str(doc, 'user', USER_RE, 'user name')}"
                filename = _str(doc, "filename", re.compile(r"^[\w.\-]{1,200}$"), "file name")
                if local.owner(job) != user:
                    raise JobNotFoundError(f"job {job!r} does not exist")
                data, media = await local.asset(job, filename)
                log.info("openEO job %s result sent to peer %s: %d bytes", job, node, len(data))
                return _answer(ctx, nonce, 200, data, media)
            status, out = await dispatch(node, doc)
        except (OpenEOError, GravitasError) as exc:
            return _error(ctx, nonce, exc)
        except Exception as exc:  # answered (signed) like the app's own handler does
            log.exception("peer job call failed")
            return _error(ctx, nonce, exc)
        return _answer(ctx, nonce, status, orjson.dumps(out), "application/json")

    return router

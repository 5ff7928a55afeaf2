"""openEO error bodies ``{id, code, message, links}`` with the spec's codes and statuses.

Every failure under ``/openeo`` is answered with one of these, including unknown paths
(404 ``NotFound``), wrong methods (405 ``MethodNotAllowed``) and bad bodies (400).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gravitas.schemas.errors import GravitasError


class OpenEOError(Exception):
    """An openEO API error: ``code`` from the spec's error list and its HTTP status."""

    code = "Internal"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadRequestError(OpenEOError):
    code, status = "BadRequest", 400


class JsonInvalidError(OpenEOError):
    code, status = "JSONInvalid", 400


class ProcessGraphMissingError(OpenEOError):
    code, status = "ProcessGraphMissing", 400


class ProcessGraphInvalidError(OpenEOError):
    code, status = "ProcessGraphInvalid", 400


class AuthenticationRequiredError(OpenEOError):
    code, status = "AuthenticationRequired", 401


class CredentialsInvalidError(OpenEOError):
    code, status = "CredentialsInvalid", 403


class TokenInvalidError(OpenEOError):
    code, status = "TokenInvalid", 403


class NotFoundError(OpenEOError):
    code, status = "NotFound", 404


class CollectionNotFoundError(OpenEOError):
    code, status = "CollectionNotFound", 404


class JobNotFoundError(OpenEOError):
    code, status = "JobNotFound", 404


class ProcessGraphNotFoundError(OpenEOError):
    code, status = "ProcessGraphNotFound", 404


class MethodNotAllowedError(OpenEOError):
    code, status = "MethodNotAllowed", 405


class JobNotFinishedError(OpenEOError):
    code, status = "JobNotFinished", 400


class JobLockedError(OpenEOError):
    code, status = "JobLocked", 400


class PayloadTooLargeError(OpenEOError):
    code, status = "PayloadTooLarge", 413


class NotSupportedError(OpenEOError):
    code, status = "FeatureUnsupported", 501


class ServiceUnavailableError(OpenEOError):
    code, status = "ServiceUnavailable", 503


class PeerAnswerRefusedError(OpenEOError):
    """A peer's answer that is unsigned, forged, replayed or stale: nothing of it is used."""

    code, status = "Internal", 502


class IdempotencyKeyReusedError(OpenEOError):
    """An idempotency key sent again with a different body (the IETF draft's 422)."""

    code, status = "IdempotencyKeyReused", 422


def error_body(code: str, message: str, status: int) -> Response:
    """The JSON response of one openEO error."""
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "code": code,
        "message": message,
        "links": [],
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


_STATUS_CODES = {
    400: "BadRequest",
    401: "AuthenticationRequired",
    403: "PermissionsInsufficient",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "ContentTypeInvalid",
    422: "BadRequest",
    501: "FeatureUnsupported",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def install_handlers(app: FastAPI) -> None:
    """Turn every failure of ``app`` into an openEO error body."""

    @app.exception_handler(OpenEOError)
    async def _openeo(_req: Request, exc: OpenEOError) -> Response:
        return error_body(exc.code, exc.message, exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        code = _STATUS_CODES.get(status, "Internal" if status >= 500 else "BadRequest")
        message = str(exc.detail)
        if status == 404 and message == "Not Found":
            message = f"no such openEO endpoint: {req.method} {req.url.path[:200]}"
        elif status == 405:
            message = f"method {req.method} is not allowed on {req.url.path[:200]}"
        return error_body(code, message, 400 if status == 422 else status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> Response:
        return error_body("BadRequest", _validation_message(exc), 400)

    @app.exception_handler(GravitasError)
    async def _gravitas(_req: Request, exc: GravitasError) -> Response:
        return error_body("BadRequest", str(exc), 400)

    @app.exception_handler(Exception)
    async def _internal(_req: Request, exc: Exception) -> Response:
        return error_body("Internal", f"internal error ({type(exc).__name__})", 500)

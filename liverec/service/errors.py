"""Where library errors become HTTP answers — the only place that does.

Every error answer has one shape, ``{"error": {"code", "message", "field"}}``:

=====================  ======  ===================
library error          status  code
=====================  ======  ===================
InvalidInputError      422     invalid_input
NotFoundError          404     not_found
NotTrainedError        409     not_trained
ConflictError          409     conflict
StorageError           503     storage_unavailable
=====================  ======  ===================

plus the service's own: 401 ``unauthorized``, 403 ``forbidden``, 413 ``too_large``,
503 ``overloaded`` (with ``Retry-After``), and 500 ``internal`` for a bug (logged, never detailed).

A storage error's message names files, so the answer says only that the store failed; the
message goes to the server log (any URL password redacted). A conflict names the field that
clashed (``event_id``) when there is one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from liverec.core.errors import (
    ConflictError,
    InvalidInputError,
    LiveRecError,
    NotFoundError,
    NotTrainedError,
    StorageError,
)
from liverec.core.redact import redact

log = logging.getLogger("liverec.service")

_LIBRARY: list[tuple[type[LiveRecError], int, str]] = [
    (InvalidInputError, 422, "invalid_input"),
    (NotFoundError, 404, "not_found"),
    (NotTrainedError, 409, "not_trained"),
    (ConflictError, 409, "conflict"),
    (StorageError, 503, "storage_unavailable"),
]
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    431: "too_large",
    429: "rate_limited",
    503: "overloaded",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorDetail


class ServiceError(Exception):
    """An HTTP-level refusal raised inside ``service/`` (auth, limits, overload)."""

    def __init__(
        self, status: int, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def status_code_name(status: int) -> str:
    """The ``code`` of an error answer with HTTP ``status``."""
    return _HTTP_CODES.get(status, "error")


def error_response(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None,
                   code: str | None = None) -> JSONResponse:
    body = {"error": {"code": code or status_code_name(status), "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


# A storage error names files and the action that failed: the operator's business, not a client's.
STORAGE_MESSAGE = "the store failed; retry later (the details are in the server log)"


def library_error_response(exc: LiveRecError) -> JSONResponse:
    status, code = next(((s, c) for kind, s, c in _LIBRARY if isinstance(exc, kind)), (500, "internal"))
    message = str(exc)
    if isinstance(exc, InvalidInputError | ConflictError):
        field = exc.field
    elif isinstance(exc, NotFoundError):
        field = f"{exc.kind}_id"
    else:
        field = None
    if isinstance(exc, StorageError):
        log.error("storage failure: %s", redact(message))
        message = STORAGE_MESSAGE
    return error_response(status, message, field, code=code)


def field_path(loc: Sequence[Any]) -> str | None:
    """``("body", "events", 3, "type")`` → ``events[3].type``; the location kind is dropped."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or (str(loc[0]) if loc else None)


def allowed_methods(request: Request) -> str:
    """Every method the request's path has; Starlette's 405 names only those of the first route
    matching the path (``Allow: POST`` on ``/admin/train``, which also has GET)."""
    routes = request.app.router.routes
    return ", ".join(method for method in _METHODS
                     if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LiveRecError)
    async def _library(request: Request, exc: LiveRecError) -> JSONResponse:
        return library_error_response(exc)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        # A body that is not JSON is located at a character offset (``("body", 1)``); name the body.
        field = "body" if first.get("type") == "json_invalid" else field_path(first.get("loc", ()))
        message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
        return error_response(422, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI turns any failure while reading a pydantic body into this 400: the body limit's
            # 413 is the real answer, and a body that is not even UTF-8 text is not JSON (422, as
            # on every other route).
            if isinstance(exc.__cause__, ServiceError):
                cause = exc.__cause__
                return error_response(cause.status, cause.message, cause.field, cause.headers)
            return error_response(422, f"the request body is not valid JSON: {exc.__cause__}", "body")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return error_response(exc.status_code, message, headers=headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; it has been logged", code="internal")


# Declared on routes so the OpenAPI schema (and clients generated from it) know the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": desc}
    for status, desc in [
        (401, "no or unknown API key"),
        (403, "the key lacks the scope"),
        (413, "request body too large"),
        (422, "invalid input; `field` names it"),
        (503, "overloaded or storage unavailable; retry after `Retry-After` seconds"),
    ]
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "unknown user, item or request"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "an event_id already stored (or sent twice) with other content"}}

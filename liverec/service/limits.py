"""The outermost layer: load shedding, body size limits, request ids and latency metrics.

A plain ASGI middleware (not ``BaseHTTPMiddleware``, which buffers and costs a task per request).
It runs on the event loop thread only, so its in-flight counter needs no lock.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from liverec.service.errors import ServiceError
from liverec.service.metrics import Metrics

# Health and metrics must still answer when the service sheds load: that is when they matter.
UNLIMITED = frozenset({"/healthz", "/metrics"})


class BodyTooLarge(ServiceError):
    """Raised while the body streams in, so a chunked body without Content-Length is bounded too."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes", field="body")


def _error(status: int, code: str, message: str, field: str | None = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "field": field}}).encode()


class Guard:
    def __init__(self, app: ASGIApp, *, max_inflight: int, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.max_body = max_body_bytes
        self.metrics = metrics
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path = scope["path"]
        if path not in UNLIMITED and self.inflight >= self.max_inflight:
            self.metrics.overloaded.labels("inflight").inc()
            await _send_error(send, 503, "overloaded",
                              f"{self.inflight} requests are in progress; retry shortly", {"retry-after": "1"})
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await _send_error(send, 413, "too_large",
                              f"request body is {declared} bytes; at most {self.max_body} are accepted", None,
                              field="body")
            return
        received = 0
        started = False
        status = 500

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        self.inflight += 1
        t0 = time.perf_counter()
        try:
            await self.app(scope, counted_receive, tagged_send)
        except BodyTooLarge:
            status = 413
            if not started:
                await _send_error(send, 413, "too_large", f"request body exceeds {self.max_body} bytes", None,
                                  field="body")
        finally:
            self.inflight -= 1
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(time.perf_counter() - t0)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None, field: str | None = None
) -> None:
    body = _error(status, code, message, field)
    raw: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})

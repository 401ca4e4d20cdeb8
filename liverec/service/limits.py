"""The outermost layer: who may be served, and when to refuse rather than queue.

In order, before any body is read: the ``Host`` header and a browser's ``Origin`` must name this
service (on loopback a web page could otherwise drive the keyless API: DNS rebinding, CSRF); a
body must be declared JSON (a cross-site form or ``text/plain`` POST cannot be); the caller's key
must be valid when keys are on (so an anonymous slow body never holds a slot); a request that
already waited longer than ``max_queue_ms`` for the event loop with others behind it (see
:class:`Shedder`), or finds ``max_inflight`` requests in progress, gets 503 with ``Retry-After``
at once. Then bodies are bounded in size and in time, request ids and latency metrics are added,
and every answer says ``nosniff`` and ``no-store`` (lists and interests are personal data).

A plain ASGI middleware (not ``BaseHTTPMiddleware``, which buffers and costs a task per request).
It runs on the event loop thread only, so its in-flight counter needs no lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from liverec.service.errors import ServiceError, status_code_name
from liverec.service.metrics import Metrics

log = logging.getLogger("liverec.service")
T = TypeVar("T")

# Health and metrics must still answer when the service sheds load: that is when they matter.
UNLIMITED = frozenset({"/healthz", "/metrics", "/stats"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"),
                     (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]


class BodyTooLarge(ServiceError):
    """Raised while the body streams in, so a chunked body without Content-Length is bounded too."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes", field="body")


class BodyTimeout(ServiceError):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body stalled for more than {seconds:g} s", field="body")


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    """The service's one error shape as JSON bytes, for answers sent below FastAPI."""
    return json.dumps({"error": {"code": code, "message": message, "field": field}}).encode()


def queue_deadline(scope: Scope, max_queue: float) -> float | None:
    """The monotonic time by which this request's work must start, if the server stamped its arrival."""
    arrived = scope.get("state", {}).get("arrived")
    return arrived + max_queue if arrived is not None else None


class Shedder:
    """Whether a request whose work starts after its queue deadline is refused.

    Shedding exists to drain a queue, as CoDel sheds on a standing queue and not on a burst of
    delay: a late request is refused when others wait behind it, or while the service is shedding
    (it refused one within ``RECENT`` seconds, so a burst's last requests go the way of its
    middle ones). A request made late by a pause with nobody behind it (a garbage collection, a
    commit, a snapshot swap) is served: refusing it frees nothing and makes its client wait a
    whole ``Retry-After`` second (the live page's click once took 1.2 s that way, under CI load).
    Read and written from the event loop and the pools' threads: each step is one assignment."""

    RECENT = 1.0

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.last_shed = -math.inf

    def shed(self, reason: str, message: str | None = None) -> ServiceError:
        """The 503 of a request refused under load (``message``, default :data:`BUSY`), counted by
        ``reason``; the service is shedding from now for ``RECENT`` seconds."""
        self.last_shed = time.monotonic()
        self.metrics.overloaded.labels(reason).inc()
        return ServiceError(503, message or BUSY, headers={"retry-after": "1"})

    def late(self, deadline: float | None, behind: int) -> ServiceError | None:
        """The refusal of work starting now with ``behind`` others queued after it, if it is late and shed."""
        now = time.monotonic()
        if deadline is None or now <= deadline:
            return None
        if behind > 0 or now - self.last_shed < self.RECENT:
            return self.shed("queue")
        return None


class Pool:
    """A bounded thread pool that counts the tasks waiting for a thread (the queue a late one is
    shed to drain). ``run`` refuses a task with 503 when its turn comes after ``deadline`` and the
    :class:`Shedder` says so: a bounded pool makes the wait visible, and work that waited too long
    behind others is not worth doing."""

    def __init__(self, threads: int, name: str) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._lock = threading.Lock()
        self.waiting = 0

    async def run(self, fn: Callable[[], T], deadline: float | None, shedder: Shedder) -> T:
        with self._lock:
            self.waiting += 1

        def timed() -> T:
            with self._lock:
                self.waiting -= 1
                behind = self.waiting
            refusal = shedder.late(deadline, behind)
            if refusal is not None:
                raise refusal
            return fn()

        return await asyncio.get_running_loop().run_in_executor(self.executor, timed)

    def shutdown(self) -> None:
        self.executor.shutdown()


class Guard:
    """``auth(scope)`` raises a 401 :class:`ServiceError` for a caller without a valid key (or does
    nothing when keys are off); ``hosts`` is the set of accepted Host names, None for any."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_inflight: int,
        max_body_bytes: int,
        metrics: Metrics,
        max_queue_ms: float | None = None,
        body_timeout: float | None = None,
        hosts: frozenset[str] | None = None,
        auth: Callable[[Scope], Any] | None = None,
        public: frozenset[str] = frozenset(),
        unshed: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.max_body = max_body_bytes
        self.metrics = metrics
        self.max_queue = max_queue_ms / 1000 if max_queue_ms is not None else None
        self.body_timeout = body_timeout
        self.hosts = hosts
        self.auth = auth
        self.public = public | UNLIMITED
        # Static files cost microseconds: shedding them breaks a page (an unstyled one) and saves nothing.
        self.unshed = unshed | UNLIMITED
        self.inflight = 0
        self.shedder = Shedder(metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        scope["state"]["shedder"] = self.shedder  # the pools shed by the same rule (Services.offload)
        path = scope["path"]
        backlog = scope["state"].get("backlog")
        if backlog is not None and backlog.waiting and path not in UNLIMITED:
            # Requests read behind this one wait for it: let them be refused (or shed) first, so a
            # burst's refusals take microseconds each instead of queueing behind the work served.
            await asyncio.sleep(0)
        refusal = self._refusal(scope)
        if refusal is not None:
            await _send_error(send, refusal)
            if path not in UNLIMITED:
                self.metrics.timeline.request(0.0, refusal.status)
            return
        started = False
        status = 500
        received = 0
        timeout = self.body_timeout

        async def counted_receive() -> Message:
            nonlocal received
            try:
                message = await (asyncio.wait_for(receive(), timeout) if timeout is not None else receive())
            except TimeoutError:
                raise BodyTimeout(timeout or 0) from None
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
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS,
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        counted = path not in UNLIMITED
        self.inflight += counted
        t0 = time.perf_counter()
        try:
            await self.app(scope, counted_receive, tagged_send)
        except ServiceError as exc:  # raised outside FastAPI's handlers: the body limits, the fast path
            status = exc.status
            if not started:
                await _send_error(send, exc)
        except ClientDisconnect:  # the client went away mid-body: nobody to answer, nothing to log loudly
            status = 499
            log.info("client disconnected before its request body was complete: %s %s", scope["method"], path)
        finally:
            self.inflight -= counted
            template = route_template(scope)
            elapsed = time.perf_counter() - t0
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(elapsed)
            if counted:  # the operator's own polling of health and metrics is not traffic
                self.metrics.timeline.request(elapsed, status)

    def _refusal(self, scope: Scope) -> ServiceError | None:
        """Why this request is refused before any of its body is read, if it is."""
        path = scope["path"]
        headers = scope.get("headers", [])
        if self.hosts is not None:
            host = header_value(headers, b"host")
            if host is not None and _hostname(host) not in self.hosts:
                return ServiceError(400, f"Host {host!r} is not a name this service answers to; "
                                    "add it to allowed_hosts", field="host")
            origin = header_value(headers, b"origin")
            if origin is not None and origin != "null" and _hostname(origin.partition("://")[2]) not in self.hosts:
                return ServiceError(403, f"requests from the web origin {origin!r} are not accepted", field="origin")
            if origin == "null":
                return ServiceError(403, "requests from an opaque web origin are not accepted", field="origin")
        if scope["method"] in _BODY_METHODS and _has_body(headers):
            kind = (header_value(headers, b"content-type") or "").partition(";")[0].strip().lower()
            if kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
                return ServiceError(415, f"the body must be JSON (Content-Type: application/json), got "
                                    f"{kind or 'no content type'!r}", field="content-type")
        if self.auth is not None and path not in self.public:
            try:
                self.auth(scope)
            except ServiceError as exc:
                return exc
        if path in self.unshed:
            return None
        deadline = queue_deadline(scope, self.max_queue) if self.max_queue is not None else None
        backlog = scope["state"].get("backlog")
        late = self.shedder.late(deadline, backlog.waiting if backlog is not None else 0)
        if late is not None:
            return late
        if self.inflight >= self.max_inflight:
            return self.shedder.shed("inflight", f"{self.inflight} requests are in progress; retry shortly")
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            return ServiceError(413, f"request body is {declared} bytes; at most {self.max_body} are accepted",
                                field="body")
        return None


def route_template(scope: Scope) -> str:
    """The route a served request matched, as its template (``/users/{user_id}``); a file under a
    mount (the page's assets) as ``/ui/{path}``; anything else ``unmatched``."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    if "app_root_path" in scope:  # set by a Mount that matched, with root_path extended by its path
        mounted = scope.get("root_path", "")[len(scope["app_root_path"]):]
        if mounted:
            return f"{mounted}/{{path}}"
    return "unmatched"


BUSY = "the service is busy; retry shortly"


def header_value(headers: Any, name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _hostname(host: str) -> str:
    """``example.com:8000`` → ``example.com``; ``[::1]:8000`` → ``[::1]``; lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.partition(":")[0]


def _has_body(headers: Any) -> bool:
    length = header_value(headers, b"content-length")
    return (length is not None and length.strip() != "0") or header_value(headers, b"transfer-encoding") is not None


def _content_length(scope: Scope) -> int | None:
    try:
        return int(header_value(scope.get("headers", []), b"content-length") or "")
    except ValueError:
        return None


async def _send_error(send: Send, error: ServiceError) -> None:
    body = error_body(status_code_name(error.status), error.message, error.field)
    raw: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                      *_SECURITY_HEADERS]
    raw += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})

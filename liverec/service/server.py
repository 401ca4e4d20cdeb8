"""Running the app under uvicorn: the HTTP protocol's guards and TLS.

uvicorn parses HTTP; three things a public service needs are added to its protocol here, since
no ASGI middleware can see them:

* **arrival time** — each request's scope gets ``state["arrived"]`` (``time.monotonic()`` when its
  headers were complete), so the load guard can tell how long it waited for the event loop and,
  with others waiting behind it, answer 503 at once instead of serving it late (``max_queue_ms``,
  :class:`~liverec.service.limits.Shedder`); ``state["backlog"]`` tells it how many wait;
* **header timeout** — a connection that has not sent a complete request head within
  ``header_timeout`` seconds is closed (slowloris: idle half-requests would otherwise hold
  connections for ever; the body has its own timeout in the guard);
* **JSON for the parser's refusals** — a request line or head uvicorn cannot parse (a 100 KB query
  string) gets the service's error shape, not a plain-text 400;
* **a bounded backlog** — requests parsed but not yet started (the event loop reads every ready
  socket before it runs any request) beyond ``max_backlog`` are answered 503 by a two-message app
  instead of going through the whole stack: under a burst of hundreds, a refusal then costs tens
  of microseconds of loop time, not a quarter of a millisecond each, so refusals stay quick too.
  Only the loop's own queue counts, so slow clients cannot fill it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from liverec.service.limits import BUSY, UNLIMITED, error_body
from liverec.service.settings import ServiceSettings

__all__ = ["GuardedProtocol", "run"]

# The parser refuses a head above this size (the same as uvicorn's h11 default); httptools has no limit.
MAX_HEAD_BYTES = 64 * 1024


class Backlog:
    """Requests of one server whose task was created but has not started (shared by its connections)."""

    def __init__(self, limit: int, on_shed: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self.waiting = 0
        self.on_shed = on_shed  # counts a refusal (in the service's metrics)


_SHED_BODY = error_body("overloaded", BUSY)
_SHED_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_SHED_BODY)).encode()),
                 (b"retry-after", b"1"), (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]


async def _shed(scope: Scope, receive: Receive, send: Send) -> None:
    """The 503 of a request refused because the backlog is full; its body is never read."""
    await send({"type": "http.response.start", "status": 503, "headers": _SHED_HEADERS})
    await send({"type": "http.response.body", "body": _SHED_BODY})


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with an arrival stamp, a head timeout, JSON 400s and a
    bounded backlog."""

    header_timeout = 10.0  # set per server by :func:`uvicorn_options`
    backlog = Backlog(256)  # likewise: one per server

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes of the head so far: its end may straddle two reads

    def _arm(self) -> None:
        self._disarm()
        self._head_bytes = 0
        self._head_tail = b""
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._send_json_error(408, "request_timeout",
                                  f"the request head did not arrive within {self.header_timeout:g} s", "headers")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            # Only the head counts: a client that writes head and body at once delivers a read of
            # both, and a bulk POST's first read is far past the limit (all of its 10,000 events
            # were refused with 431 before this looked for the head's end).
            seen = self._head_tail + data
            end = seen.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._head_tail))
            self._head_tail = seen[-3:]
            if self._head_bytes > MAX_HEAD_BYTES:
                self._disarm()
                self._send_json_error(431, "too_large", f"the request head exceeds {MAX_HEAD_BYTES} bytes",
                                      "headers")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # a keep-alive connection's next request: its head is timed too
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self.scope["state"]["arrived"] = time.monotonic()
        self.scope["state"]["backlog"] = self.backlog
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        backlog = self.backlog
        if backlog.waiting >= backlog.limit and cycle.scope["path"] not in UNLIMITED:
            if backlog.on_shed is not None:
                backlog.on_shed()
            app = _shed
        else:
            backlog.waiting += 1
            app = functools.partial(_started, backlog, app)
        super()._start_asgi_task(cycle, app)

    def send_400_response(self, msg: str) -> None:
        self._send_json_error(400, "bad_request", f"the request could not be parsed: {msg}", None)

    def _send_json_error(self, status: int, code: str, message: str, field: str | None) -> None:
        body = error_body(code, message, field)
        reason = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        head = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
                 b"connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()


async def _started(backlog: Backlog, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    backlog.waiting -= 1  # the task's first step: the request has left the loop's queue
    await app(scope, receive, send)


def uvicorn_options(settings: ServiceSettings, on_shed: Callable[[], None] | None = None) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` for ``settings`` (TLS, proxies, timeouts);
    ``on_shed`` is called for each request the backlog refuses."""
    protocol = type("Protocol", (GuardedProtocol,), {"header_timeout": settings.header_timeout,
                                                     "backlog": Backlog(settings.max_backlog, on_shed)})
    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "http": protocol, "log_level": "warning",
        "access_log": False, "backlog": 2048, "timeout_graceful_shutdown": 10, "server_header": False,
        "proxy_headers": settings.behind_proxy,
        # Only the named proxies' X-Forwarded-For is believed; without a proxy, nobody's.
        "forwarded_allow_ips": list(settings.trusted_proxies) if settings.behind_proxy else [],
    }
    if settings.tls_cert:
        options |= {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key}
    return options


def run(app: Any, settings: ServiceSettings) -> None:
    """Serve ``app`` as ``settings`` say, until interrupted. One worker process: user states live
    in this process, which is what makes read-your-writes hold."""
    import uvicorn

    def shed() -> None:
        services = getattr(app.state, "services", None)  # set once the app has started
        if services is not None:
            services.metrics.overloaded.labels("backlog").inc()

    uvicorn.run(app, **uvicorn_options(settings, shed))

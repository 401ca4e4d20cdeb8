"""Running the app under uvicorn: the HTTP protocol's guards and TLS.

uvicorn parses HTTP; three things a public service needs are added to its protocol here, since
no ASGI middleware can see them:

* **arrival time** — each request's scope gets ``state["arrived"]`` (``time.monotonic()`` when its
  headers were complete), so the load guard can tell how long it waited for the event loop and
  answer 503 at once instead of serving it late (``max_queue_ms``);
* **header timeout** — a connection that has not sent a complete request head within
  ``header_timeout`` seconds is closed (slowloris: idle half-requests would otherwise hold
  connections for ever; the body has its own timeout in the guard);
* **JSON for the parser's refusals** — a request line or head uvicorn cannot parse (a 100 KB query
  string) gets the service's error shape, not a plain-text 400.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from liverec.service.limits import error_body
from liverec.service.settings import ServiceSettings

__all__ = ["GuardedProtocol", "run"]

# The parser refuses a head above this size (the same as uvicorn's h11 default); httptools has no limit.
MAX_HEAD_BYTES = 64 * 1024


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with an arrival stamp, a head timeout and JSON 400s."""

    header_timeout = 10.0  # set per server by :func:`run`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def _arm(self) -> None:
        self._disarm()
        self._head_bytes = 0
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
            self._head_bytes += len(data)
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
        super().on_headers_complete()

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


def uvicorn_options(settings: ServiceSettings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` for ``settings`` (TLS, proxies, timeouts)."""
    protocol = type("Protocol", (GuardedProtocol,), {"header_timeout": settings.header_timeout})
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

    uvicorn.run(app, **uvicorn_options(settings))

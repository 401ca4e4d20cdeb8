"""What the load guard sheds when requests waited too long, straight against :class:`Guard`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from liverec.service.limits import Guard
from liverec.service.metrics import Metrics


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _status(guard: Guard, path: str) -> int:
    """The status ``guard`` answers a GET of ``path`` that arrived a second ago."""
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": "GET", "path": path, "headers": [],
             "state": {"arrived": time.monotonic() - 1.0}}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return int(sent[0]["status"])


def test_a_late_request_is_shed_but_the_pages_static_files_are_not() -> None:
    guard = Guard(_ok, max_inflight=8, max_body_bytes=1024, metrics=Metrics(), max_queue_ms=10,
                  unshed=frozenset({"/ui/app.css"}))
    assert _status(guard, "/users/u1/recommendations") == 503
    assert _status(guard, "/ui/app.css") == 200  # an unstyled page saves nothing
    assert _status(guard, "/healthz") == 200

"""What the load guard sheds when requests waited too long: the app's own :class:`Guard` settings,
in front of a route that answers 200."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from liverec.service.app import create_app
from liverec.service.limits import Guard
from liverec.service.routes import docs, page
from liverec.service.settings import ServiceSettings


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


def _app_guard() -> Guard:
    """The load guard as the service's app configures it, in front of a route that answers 200."""
    app = create_app(ServiceSettings(store="memory://"))
    options = next(m.kwargs for m in app.user_middleware if m.cls is Guard)
    return Guard(_ok, **{**options, "auth": None})  # keyless: no app state to find keys in


def test_a_late_request_is_shed_but_the_pages_static_files_are_not() -> None:
    guard = _app_guard()
    assert _status(guard, "/users/u1/recommendations") == 503
    for static in sorted(page.PUBLIC_PATHS | docs.PUBLIC_PATHS):
        assert _status(guard, static) == 200, static  # an unstyled page saves nothing
    assert _status(guard, "/healthz") == 200

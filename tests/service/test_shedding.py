"""What the load guard sheds when requests waited too long: the app's own :class:`Guard` settings,
in front of a route that answers 200, and the pools' rule (:class:`Pool`): a late request is shed
when others wait behind it or the service is shedding, and served when a pause alone made it late."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from liverec.service.app import create_app
from liverec.service.limits import Guard, Pool, Shedder
from liverec.service.metrics import Metrics
from liverec.service.routes import docs, page
from liverec.service.server import Backlog
from liverec.service.settings import ServiceSettings


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _status(guard: Guard, path: str, waiting: int = 5) -> int:
    """The status ``guard`` answers a GET of ``path`` that arrived a second ago, with ``waiting``
    requests read after it and not started."""
    sent: list[dict[str, Any]] = []
    backlog = Backlog(256)
    backlog.waiting = waiting
    scope = {"type": "http", "method": "GET", "path": path, "headers": [],
             "state": {"arrived": time.monotonic() - 1.0, "backlog": backlog}}

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


def test_a_late_request_alone_is_served_and_shed_while_the_service_sheds() -> None:
    """A pause (a collection, a commit) made it late, nobody waits behind it: refusing it would
    free nothing and cost its client a whole Retry-After second. Right after a refusal, the
    service is shedding: a late request is refused though nobody waits behind it (a burst's tail)."""
    guard = _app_guard()
    assert _status(guard, "/users/u1/recommendations", waiting=0) == 200
    assert _status(guard, "/users/u1/recommendations", waiting=3) == 503
    assert _status(guard, "/users/u1/recommendations", waiting=0) == 503
    guard.shedder.last_shed -= Shedder.RECENT
    assert _status(guard, "/users/u1/recommendations", waiting=0) == 200


def test_a_pool_sheds_a_late_task_only_with_others_queued_behind_it() -> None:
    metrics = Metrics()
    shedder = Shedder(metrics)
    pool = Pool(1, "test-pool")
    late = time.monotonic() - 1.0

    async def three_late_tasks() -> list[Any]:
        # The first holds the pool's one thread while the two others queue behind it.
        first = pool.run(lambda: time.sleep(0.2) or "first", None, shedder)
        return await asyncio.gather(first, pool.run(lambda: "second", late, shedder),
                                    pool.run(lambda: "third", late, shedder), return_exceptions=True)

    try:
        assert asyncio.run(pool.run(lambda: "alone", late, shedder)) == "alone"
        first, second, third = asyncio.run(three_late_tasks())
        assert first == "first"
        assert getattr(second, "status", None) == 503  # the third waited behind it
        assert getattr(third, "status", None) == 503  # nobody behind, but the service is shedding
    finally:
        pool.shutdown()

"""POST /events: single events and batches, idempotent retries, every refusal in the error shape,
body limits, read-your-writes, overload (503) and group commit."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from liverec.core.types import Event, EventType
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from liverec.service.ingest import Committer, Overloaded
from liverec.service.limits import Guard
from liverec.service.metrics import Metrics
from tests.service._api import CommitGate, Response, as_json, assert_error, wait_until
from tests.service.conftest import make_client


def _post(client: TestClient, body: Any) -> Response:
    return client.post("/events", json=body)


# ---------------------------------------------------------------- accepted


def test_a_single_event_is_stored_and_acknowledged(client: TestClient, engine: Engine, world: DemoWorld) -> None:
    item = world.items_in("coffee")[0].item_id
    event = {"event_id": "api-ev-single-1", "user_id": "api-ev-single", "type": "view", "item_id": item,
             "timestamp": 1_767_230_000.0}
    before = engine.store.events.count()
    response = _post(client, event)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "acknowledged": 1, "stored": 1, "duplicates": 0,
                               "event_ids": ["api-ev-single-1"]}
    assert response.headers["Liverec-Duplicates"] == "0"
    assert engine.store.events.count() == before + 1
    [stored] = engine.store.events.by_user("api-ev-single")
    assert (stored.event_id, stored.type, stored.item_id, stored.timestamp) == (
        "api-ev-single-1", EventType.VIEW, item, 1_767_230_000.0)


def test_a_batch_is_stored_in_order_of_its_ids(client: TestClient, engine: Engine, world: DemoWorld) -> None:
    history = world.new_user_history("api-ev-batch", "books", 7)
    before = engine.store.events.count()
    response = _post(client, {"events": as_json(history)})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 7, "acknowledged": 7, "stored": 7, "duplicates": 0,
                               "event_ids": [e.event_id for e in history]}
    assert engine.store.events.count() == before + 7
    assert sorted(e.event_id for e in engine.store.events.by_user("api-ev-batch")) == sorted(
        e.event_id for e in history)
    assert engine.state("api-ev-batch").n_events == 7


def test_a_retried_batch_stores_nothing_twice_and_acknowledges_the_same_ids(
    client: TestClient, engine: Engine, world: DemoWorld
) -> None:
    history = world.new_user_history("api-ev-retry", "laptops", 6)
    first = _post(client, {"events": as_json(history)})
    count = engine.store.events.count()
    n_events = engine.state("api-ev-retry").n_events
    again = _post(client, {"events": as_json(history)})
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == {**first.json(), "stored": 0, "duplicates": 6}  # the same ids, counted as retries
    assert (first.headers["Liverec-Duplicates"], again.headers["Liverec-Duplicates"]) == ("0", "6")
    assert engine.store.events.count() == count
    assert engine.state("api-ev-retry").n_events == n_events
    assert len(engine.store.events.by_user("api-ev-retry")) == 6


def test_a_partly_stored_batch_stores_only_the_missing_events(
    client: TestClient, engine: Engine, world: DemoWorld
) -> None:
    history = world.new_user_history("api-ev-partial", "toys", 6)
    assert _post(client, {"events": as_json(history[:4])}).status_code == 200
    count = engine.store.events.count()
    response = _post(client, {"events": as_json(history)})
    assert response.status_code == 200
    assert response.json()["event_ids"] == [e.event_id for e in history]
    assert response.headers["Liverec-Duplicates"] == "4"
    assert engine.store.events.count() == count + 2


def test_an_event_without_an_id_but_with_a_timestamp_is_recognised_on_retry(
    client: TestClient, engine: Engine, world: DemoWorld
) -> None:
    item = world.items_in("gaming")[0].item_id
    event = {"user_id": "api-ev-noid", "type": "click", "item_id": item, "timestamp": "2026-01-01T05:00:00Z"}
    first, again = _post(client, event), _post(client, event)
    assert first.json()["event_ids"] == again.json()["event_ids"]
    [event_id] = first.json()["event_ids"]
    assert event_id.startswith("h-")
    assert (first.headers["Liverec-Duplicates"], again.headers["Liverec-Duplicates"]) == ("0", "1")
    assert [e.event_id for e in engine.store.events.by_user("api-ev-noid")] == [event_id]


def test_three_hiking_clicks_show_in_the_very_next_recommendations_with_cited_evidence(
    client: TestClient, engine: Engine, world: DemoWorld
) -> None:
    user = "api-ev-hiker"
    history = world.new_user_history(user, "cameras", 12)
    assert _post(client, {"events": as_json(history)}).status_code == 200
    before = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()["items"]
    assert not [r for r in before if world.category_of(r["item_id"]) == "hiking"]
    start = max(e.timestamp for e in history) + 60.0
    burst = world.burst(user, "hiking", n=3, start=start, types=("click",))
    assert _post(client, {"events": as_json(burst)}).status_code == 200

    after = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()["items"]
    burst_items = {e.item_id for e in burst}
    hiking = [r for r in after if world.category_of(r["item_id"]) == "hiking"]
    citing = [r for r in hiking if any(reason["evidence"] in burst_items for reason in r["reasons"])]
    assert len(citing) >= 2, [r["reasons"] for r in hiking]
    assert not {r["item_id"] for r in after} & burst_items
    # Three clicks, minutes old against a three-day half-life: the new interest weighs three clicks.
    tags = {i["tag"]: i["weight"] for i in client.get(f"/users/{user}/interests", params={"k": 30}).json()["interests"]}
    assert tags["hiking"] == pytest.approx(3 * engine.settings.event_weights[EventType.CLICK], rel=0.01)


# ---------------------------------------------------------------- refused


def _view(world: DemoWorld, user: str = "api-ev-bad", n: int = 0) -> dict[str, Any]:
    return {"event_id": f"{user}-{n}", "user_id": user, "type": "view",
            "item_id": world.items_in("coffee")[n].item_id, "timestamp": 1_767_230_000.0 + n}


BAD_EVENTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("type", {"type": "clik"}, "type", "'clik' is not one of"),
    ("rating", {"type": "rate", "value": 7}, "value", "rating 7 is out of range"),
    ("item", {"item_id": "no-such-item"}, "item_id", "unknown item 'no-such-item'"),
    ("user", {"user_id": None}, "user_id", "user_id is missing"),
    ("field", {"colour": "red"}, "colour", "unknown event field(s): colour"),
]


@pytest.mark.parametrize(("change", "field", "words"), [b[1:] for b in BAD_EVENTS], ids=[b[0] for b in BAD_EVENTS])
def test_a_bad_single_event_is_refused_naming_its_field(
    client: TestClient, engine: Engine, world: DemoWorld, change: dict[str, Any], field: str, words: str
) -> None:
    event = {k: v for k, v in {**_view(world), **change}.items() if v is not None}
    before = engine.store.events.count()
    assert_error(_post(client, event), 422, "invalid_input", field, words)
    assert engine.store.events.count() == before


@pytest.mark.parametrize(("change", "field", "words"), [b[1:] for b in BAD_EVENTS], ids=[b[0] for b in BAD_EVENTS])
def test_a_batch_with_one_bad_event_stores_nothing(
    client: TestClient, engine: Engine, world: DemoWorld, change: dict[str, Any], field: str, words: str
) -> None:
    bad = {k: v for k, v in {**_view(world, n=1), **change}.items() if v is not None}
    batch = [_view(world, n=0), bad, _view(world, n=2)]
    before = engine.store.events.count()
    response = _post(client, {"events": batch})
    assert_error(response, 422, "invalid_input", f"events[1].{field}", words)
    assert response.json()["error"]["message"].startswith("events[1]: ")
    assert engine.store.events.count() == before
    assert engine.store.events.by_user("api-ev-bad") == []


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b"", "body", "empty"),
        (b"[1, 2]", "body", "must be an object"),
        (b'{"events": []}', "events", "events is empty"),
        (b'{"events": {"user_id": "x"}}', "events", "must be a list"),
        (b'{"events": [], "extra": 1}', "extra", "unknown field(s) next to 'events': extra"),
    ],
    ids=["not-json", "empty-body", "a-list", "empty-batch", "not-a-list", "extra-field"],
)
def test_a_malformed_body_is_refused_naming_the_field(
    client: TestClient, content: bytes, field: str, words: str
) -> None:
    response = client.post("/events", content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "invalid_input", field, words)


def test_a_batch_of_10001_events_is_refused(client: TestClient, engine: Engine, world: DemoWorld) -> None:
    event = _view(world, user="api-ev-huge")
    before = engine.store.events.count()
    response = _post(client, {"events": [event] * 10_001})
    assert_error(response, 422, "invalid_input", "events", "10001 events is too large", "at most 10000")
    assert engine.store.events.count() == before


def test_a_batch_of_exactly_max_batch_is_accepted(engine: Engine, world: DemoWorld, tmp_path: Path) -> None:
    rows = [_view(world, user="api-ev-max", n=n) for n in range(3)]
    with make_client(engine, tmp_path, max_batch=3) as c:
        assert _post(c, {"events": rows}).json()["received"] == 3
        assert_error(_post(c, {"events": [*rows, _view(world, user="api-ev-max", n=3)]}), 422,
                     "invalid_input", "events", "at most 3")


def test_a_body_over_max_body_bytes_is_413(engine: Engine, world: DemoWorld, tmp_path: Path) -> None:
    rows = [_view(world, user="api-ev-413", n=n) for n in range(30)]
    body = json.dumps({"events": rows}).encode()
    assert len(body) > 2000
    before = engine.store.events.count()
    with make_client(engine, tmp_path, max_body_bytes=2000) as c:
        response = c.post("/events", content=body, headers={"Content-Type": "application/json"})
        assert_error(response, 413, "too_large", "body", "2000")

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming
            for start in range(0, len(body), 500):
                yield body[start : start + 500]

        streamed = c.post("/events", content=chunks(), headers={"Content-Type": "application/json"})
        assert "content-length" not in streamed.request.headers
        assert_error(streamed, 413, "too_large", "body", "2000")
        small = _post(c, _view(world, user="api-ev-413", n=0))
        assert small.status_code == 200
    assert engine.store.events.count() == before + 1


# ---------------------------------------------------------------- overload and group commit


@pytest.fixture
def gate(small_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[CommitGate]:
    """The small engine's commits, held while the gate is closed; opened again whatever happens."""
    held = CommitGate(small_engine, monkeypatch)
    yield held
    held.open()


def _events(world: DemoWorld, user: str, n: int, offset: int = 0) -> list[Event]:
    items = world.items_in("fitness")
    return [Event.create(user, "view", items[k % len(items)].item_id, timestamp=1_767_240_000.0 + k,
                         event_id=f"{user}-{k}") for k in range(offset, offset + n)]


def test_committer_refuses_once_max_pending_events_wait(
    small_engine: Engine, small_world: DemoWorld, gate: CommitGate
) -> None:
    committer = Committer(small_engine, max_pending_events=5)
    try:
        gate.close()
        first = committer.submit(_events(small_world, "api-cm-a", 3))
        gate.wait_entered()  # taken off the queue and held in its commit
        second = committer.submit(_events(small_world, "api-cm-b", 5))  # an empty queue takes any size
        assert committer.pending_events == 5
        with pytest.raises(Overloaded, match="5 events are waiting"):
            committer.submit(_events(small_world, "api-cm-c", 1))
        gate.open()
        assert (first.result(10).stored, second.result(10).stored) == (3, 5)
        assert committer.pending_events == 0
        assert committer.submit(_events(small_world, "api-cm-c", 1)).result(10).stored == 1
    finally:
        gate.open()
        committer.close()
    assert [len(small_engine.store.events.by_user(u)) for u in ("api-cm-a", "api-cm-b", "api-cm-c")] == [3, 5, 1]


def test_post_events_answers_503_with_retry_after_when_the_queue_is_full(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, gate: CommitGate
) -> None:
    with make_client(small_engine, tmp_path, max_pending_events=2) as c:
        committer = c.app.state.services.committer  # type: ignore[attr-defined]
        gate.close()
        held = [_events(small_world, "api-ov-a", 1), _events(small_world, "api-ov-b", 2)]
        answers: list[Response] = []
        threads = [threading.Thread(target=lambda b=b: answers.append(_post(c, {"events": as_json(b)})))
                   for b in held]
        threads[0].start()
        gate.wait_entered()
        threads[1].start()
        wait_until(lambda: committer.pending_events == 2)
        before = small_engine.store.events.count()
        refused = _post(c, {"events": as_json(_events(small_world, "api-ov-c", 1))})
        assert_error(refused, 503, "overloaded", None, "overloaded", "retry")
        assert refused.headers["Retry-After"] == "1"
        gate.open()
        for t in threads:
            t.join(10)
        assert sorted(a.json()["received"] for a in answers) == [1, 2]
        assert small_engine.store.events.count() == before + 3
        assert small_engine.store.events.by_user("api-ov-c") == []
        metrics = c.get("/metrics").text
    assert 'liverec_overload_refusals_total{reason="commit_queue"} 1.0' in metrics


def test_a_commit_that_outlasts_commit_timeout_is_503_and_the_retry_is_safe(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, gate: CommitGate
) -> None:
    batch = {"events": as_json(_events(small_world, "api-to", 2))}
    with make_client(small_engine, tmp_path, commit_timeout=0.05) as c:
        gate.close()
        late = _post(c, batch)
        assert_error(late, 503, "overloaded", None, "did not finish in time", "safe")
        assert late.headers["Retry-After"] == "1"
        gate.open()
        wait_until(lambda: len(small_engine.store.events.by_user("api-to")) == 2)  # the commit went on
        retry = _post(c, batch)
    assert retry.status_code == 200
    assert retry.headers["Liverec-Duplicates"] == "2"


def _histogram(text: str, name: str) -> dict[str, float]:
    family = next(f for f in text_string_to_metric_families(text) if f.name == name)
    return {s.labels.get("le", s.name): s.value for s in family.samples}


def test_concurrent_posts_share_group_commits(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, gate: CommitGate
) -> None:
    n_requests = 12
    batches = [_events(small_world, f"api-gc-{n}", 2) for n in range(n_requests)]
    before = small_engine.store.events.count()
    with make_client(small_engine, tmp_path) as c:
        committer = c.app.state.services.committer  # type: ignore[attr-defined]
        answers: dict[int, Response] = {}

        def post(n: int) -> None:
            answers[n] = _post(c, {"events": as_json(batches[n])})

        gate.close()
        first = threading.Thread(target=post, args=(0,))
        first.start()
        gate.wait_entered()
        rest = [threading.Thread(target=post, args=(n,)) for n in range(1, n_requests)]
        for t in rest:
            t.start()
        wait_until(lambda: committer.pending_events == 2 * (n_requests - 1))
        gate.open()
        for t in [first, *rest]:
            t.join(10)
        metrics = c.get("/metrics").text
    # One commit for the first request, one shared by the eleven that queued behind it.
    assert gate.calls == [2, 2 * (n_requests - 1)]
    assert {n: a.json()["event_ids"] for n, a in answers.items()} == {
        n: [e.event_id for e in b] for n, b in enumerate(batches)}
    assert {a.headers["Liverec-Duplicates"] for a in answers.values()} == {"0"}
    assert small_engine.store.events.count() == before + 2 * n_requests
    groups = _histogram(metrics, "liverec_commit_group_requests")
    assert groups["liverec_commit_group_requests_count"] == 2
    assert groups["liverec_commit_group_requests_sum"] == n_requests
    assert groups["1.0"] == 1  # one group of one request; the other had more


def test_the_same_event_in_two_requests_of_one_group_is_stored_once(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, gate: CommitGate
) -> None:
    shared = as_json(_events(small_world, "api-gc-dup", 3))
    with make_client(small_engine, tmp_path) as c:
        committer = c.app.state.services.committer  # type: ignore[attr-defined]
        answers: list[Response] = []
        gate.close()
        holder = threading.Thread(target=lambda: answers.append(
            _post(c, {"events": as_json(_events(small_world, "api-gc-hold", 1))})))
        holder.start()
        gate.wait_entered()
        twins = [threading.Thread(target=lambda: answers.append(_post(c, {"events": shared}))) for _ in range(2)]
        for t in twins:
            t.start()
        wait_until(lambda: committer.pending_events == 6)
        gate.open()
        for t in [holder, *twins]:
            t.join(10)
    assert gate.calls == [1, 6]
    duplicates = Counter(a.headers["Liverec-Duplicates"] for a in answers)
    assert duplicates == {"0": 2, "3": 1}  # the holder, the first twin; the second twin got its retry's answer
    assert len(small_engine.store.events.by_user("api-gc-dup")) == 3


def test_an_item_deleted_while_events_wait_fails_only_the_request_that_names_it(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, gate: CommitGate
) -> None:
    doomed = small_world.make_item("toys", "en", seed=9101)
    small_engine.ingest_items([doomed])
    with make_client(small_engine, tmp_path) as c:
        committer = c.app.state.services.committer  # type: ignore[attr-defined]
        answers: dict[str, Response] = {}

        def post(user: str, event: dict[str, Any]) -> None:
            answers[user] = _post(c, event)

        def view(user: str, item_id: str) -> dict[str, Any]:
            return {"event_id": f"{user}-1", "user_id": user, "type": "view", "item_id": item_id,
                    "timestamp": 1_767_250_000.0}

        ok_item = small_world.items_in("toys")[0].item_id
        gate.close()
        threads = [threading.Thread(target=post, args=("api-del-hold", view("api-del-hold", ok_item)))]
        threads[0].start()
        gate.wait_entered()
        for user, item in (("api-del-doomed", doomed.item_id), ("api-del-fine", ok_item)):
            threads.append(threading.Thread(target=post, args=(user, view(user, item))))
            threads[-1].start()
        wait_until(lambda: committer.pending_events == 2)
        assert c.delete(f"/items/{doomed.item_id}").status_code == 200
        gate.open()
        for t in threads:
            t.join(10)
    assert answers["api-del-hold"].status_code == 200
    assert answers["api-del-fine"].status_code == 200
    assert_error(answers["api-del-doomed"], 422, "invalid_input", "item_id", doomed.item_id)
    assert small_engine.store.events.by_user("api-del-doomed") == []
    assert len(small_engine.store.events.by_user("api-del-fine")) == 1


# ---------------------------------------------------------------- the Guard as an ASGI app


class SlowApp:
    """An inner ASGI app that holds every request to /slow until released; others answer at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        if scope["path"] == "/slow":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"done"})


async def _call(app: Any, path: str, chunks: tuple[bytes, ...] = (b"",), headers: tuple[tuple[bytes, bytes], ...] = ()
                ) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = {"type": "http", "method": "POST", "path": path, "headers": list(headers), "query_string": b""}
    pending = [{"type": "http.request", "body": c, "more_body": n < len(chunks) - 1} for n, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def test_guard_sheds_load_beyond_max_inflight_at_once() -> None:
    async def scenario() -> None:
        inner, metrics = SlowApp(), Metrics()
        guard = Guard(inner, max_inflight=2, max_body_bytes=1000, metrics=metrics)
        held = [asyncio.create_task(_call(guard, "/slow")) for _ in range(2)]
        while guard.inflight < 2:
            await asyncio.sleep(0)
        status, headers, body = await asyncio.wait_for(_call(guard, "/slow"), 1.0)  # answered, not queued
        assert (status, headers[b"retry-after"]) == (503, b"1")
        assert json.loads(body)["error"]["code"] == "overloaded"
        assert "2 requests are in progress" in json.loads(body)["error"]["message"]
        for exempt in ("/healthz", "/metrics"):  # still answer when shedding: that is when they matter
            assert (await asyncio.wait_for(_call(guard, exempt), 1.0))[0] == 200
        inner.release.set()
        done = await asyncio.gather(*held)
        assert [d[0] for d in done] == [200, 200]
        assert all(len(d[1][b"x-request-id"]) == 32 for d in done)
        assert guard.inflight == 0
        assert (await _call(guard, "/slow"))[0] == 200
        assert metrics.overloaded.labels("inflight")._value.get() == 1

    asyncio.run(scenario())


def test_guard_bounds_a_streamed_body_without_content_length() -> None:
    async def scenario() -> None:
        inner = SlowApp()
        inner.release.set()
        guard = Guard(inner, max_inflight=10, max_body_bytes=1000, metrics=Metrics())
        status, _, body = await _call(guard, "/upload", (b"x" * 600, b"x" * 600))
        assert status == 413
        assert json.loads(body)["error"] == {"code": "too_large", "message": "request body exceeds 1000 bytes",
                                             "field": "body"}
        assert inner.bodies == []  # the inner app never got the oversized body
        status, _, _ = await _call(guard, "/upload", (b"x" * 500, b"x" * 500))
        assert status == 200 and inner.bodies == [b"x" * 1000]
        status, _, body = await _call(guard, "/upload", headers=((b"content-length", b"1001"),
                                                                 (b"content-type", b"application/json")))
        assert status == 413 and "1001 bytes" in json.loads(body)["error"]["message"]
        assert guard.inflight == 0

    asyncio.run(scenario())

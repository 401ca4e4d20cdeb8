"""Helpers shared by the API tests: the error-shape assertion, events as JSON, and a gate on the
engine's commit so tests can hold a group commit open without sleeping or stubbing the engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import pytest

from liverec.core.types import Event
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine, IngestResult
from tests._worlds import world_engine


class Response(Protocol):
    """What the tests read of an answer (TestClient's httpx flavour varies between installs)."""

    status_code: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...

    @property
    def request(self) -> Any: ...

    def json(self) -> Any: ...


def assert_error(response: Response, status: int, code: str, field: str | None, *words: str) -> None:
    """The status, and the one error shape with ``code``, ``field`` and ``words`` in the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["field"] == field, body
    for word in words:
        assert word in body["error"]["message"], body


def as_json(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Events as a client would send them (no null fields)."""
    return [{k: v for k, v in e.to_dict().items() if v is not None} for e in events]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` every few milliseconds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


class CommitGate:
    """Wraps the real ``engine.ingest_events``: counts calls, records group sizes, and (while
    closed) holds each call before it starts, so requests queue up behind it."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = engine.ingest_events
        self.calls: list[int] = []
        self.entered = threading.Semaphore(0)
        self._open = threading.Event()
        self._open.set()
        monkeypatch.setattr(engine, "ingest_events", self._ingest)

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def wait_entered(self, timeout: float = 10.0) -> None:
        assert self.entered.acquire(timeout=timeout), "no commit started"

    def _ingest(self, events: Iterable[Event | Mapping[str, Any]], **options: Any) -> IngestResult:
        batch = list(events)
        self.calls.append(len(batch))
        self.entered.release()
        assert self._open.wait(10.0), "the gate was never opened"
        return self.real(batch, **options)


def trained_engine(world: DemoWorld) -> Engine:
    """A memory-store engine holding ``world`` and trained on it."""
    return world_engine(world, train=True)

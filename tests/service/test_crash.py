"""Durability under SIGKILL: a real ``liverec serve`` process takes a concurrent ingest load, is
killed mid-way, and every acknowledged event is then in the store exactly once, none half-written.

An acknowledgement (a 200 from ``POST /events``) is sent only after the group commit's fsync, so
the kill may lose unacknowledged events but never an acknowledged one. Events that were in flight
at the kill may or may not be stored; a retry of their batch must then store exactly the missing
ones, and a retry of an acknowledged batch must store nothing.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from liverec.core.types import Event, EventType
from liverec.datasets.demo import build_demo_world
from liverec.engine import Engine
from liverec.storage import open_store

CLIENTS = 6
MIN_ACKED = 3000  # events acknowledged before the kill
MIN_LOAD_SECONDS = 2.0
MAX_LOAD_SECONDS = 30.0  # a loaded machine may be slow; the kill then comes later, never without load
STARTUP_TIMEOUT = 60.0
BASE_TS = 1_750_000_000.0
TYPES = ("view", "view", "view", "click", "add_to_cart", "purchase", "rate", "dismiss")


@dataclass
class Batch:
    """One request: its body, its event ids, and what the server answered (None: no answer)."""

    body: dict[str, Any]
    ids: list[str]
    status: int | None = None


@dataclass
class Load:
    """What the clients sent and what was acknowledged, shared by the client threads."""

    item_ids: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    batches: list[Batch] = field(default_factory=list)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    acked_events: int = 0
    inflight: int = 0
    errors: list[BaseException] = field(default_factory=list)

    def acked(self) -> set[str]:
        return {i for b in self.batches if b.status == 200 for i in b.ids}

    def unacked(self) -> list[Batch]:
        return [b for b in self.batches if b.status != 200]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _build_store(path: Path) -> tuple[str, list[str]]:
    """A store with 100 demo items and no events, untrained: the service ingests without a snapshot."""
    world = build_demo_world(seed=13, n_items=100, n_users=10)
    url = f"sqlite:///{path}"
    engine = Engine.open(url)
    try:
        engine.ingest_items(world.items)
    finally:
        engine.close()
    return url, [item.item_id for item in world.items]


class Server:
    """``python -m liverec.cli serve`` in its own process group, so SIGKILL reaches all of it."""

    def __init__(self, url: str, logs: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEREC_")}
        env["HF_HUB_OFFLINE"] = env["TRANSFORMERS_OFFLINE"] = "1"
        self.log = open(logs, "ab")  # closed by kill(), stop() or ensure_dead()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liverec.cli", "serve", "--store", url, "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        self.logs = logs

    def wait_healthy(self) -> dict[str, Any]:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.logs.read_text()}")
            try:
                r = httpx.get(f"{self.base}/healthz", timeout=2.0)
                if r.status_code == 200:
                    body: dict[str, Any] = r.json()
                    return body
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"server did not answer /healthz within {STARTUP_TIMEOUT} s:\n{self.logs.read_text()}")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> int:
        """A graceful stop (SIGTERM): uvicorn finishes requests and the committer drains its queue."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.log.close()

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        if not self.log.closed:
            self.log.close()


def _event(rng: random.Random, event_id: str, n: int, item_ids: list[str]) -> dict[str, Any]:
    kind = rng.choice(TYPES)
    event: dict[str, Any] = {
        "event_id": event_id,
        "user_id": f"u{rng.randrange(40):03d}",
        "type": kind,
        "item_id": rng.choice(item_ids),
        "timestamp": BASE_TS + 10 * n + rng.random(),  # 10 s apart: two alike are never duplicates to cleaning
    }
    if kind == "rate":
        event["value"] = float(rng.randint(1, 5))
    if rng.random() < 0.3:
        event["session_id"] = f"会话-{rng.randrange(1000)}"
    return event


def _client(load: Load, worker: int, base: str) -> None:
    rng = random.Random(worker)
    n = 0
    with httpx.Client(base_url=base, timeout=30.0) as http:
        while not load.stop.is_set():
            size = 1 if rng.random() < 0.3 else rng.randint(1, 200)
            events = []
            for _ in range(size):
                n += 1
                events.append(_event(rng, f"w{worker}-{n:06d}", worker * 100_000 + n, load.item_ids))
            single = size == 1 and rng.random() < 0.5
            batch = Batch(events[0] if single else {"events": events}, [e["event_id"] for e in events])
            with load.lock:
                load.batches.append(batch)
                load.sent.update((e["event_id"], e) for e in events)
                load.inflight += 1
            try:
                r = http.post("/events", json=batch.body)
            except httpx.TransportError:
                continue  # the server is gone (killed): this batch stays unacknowledged
            finally:
                with load.lock:
                    load.inflight -= 1
            batch.status = r.status_code
            if r.status_code == 200:
                answer = r.json()
                if answer["event_ids"] != batch.ids or r.headers["Liverec-Duplicates"] != "0":
                    load.errors.append(AssertionError(f"bad acknowledgement {answer} for {batch.ids[:3]}..."))
                with load.lock:
                    load.acked_events += len(batch.ids)
            elif r.status_code != 503:  # 503 (shed load, slow commit): unacknowledged, retried below
                load.errors.append(AssertionError(f"{r.status_code}: {r.text}"))


def _run_load(base: str, item_ids: list[str], server: Server,
              ready: Callable[[], bool] | None = None) -> tuple[Load, float, int]:
    """Post from CLIENTS threads until enough is acknowledged and the kill is due — some requests in
    flight, and ``ready()`` (the operation under test is under way) if given — then SIGKILL the server."""
    load = Load(item_ids)
    threads = [threading.Thread(target=_client, args=(load, w, base), daemon=True) for w in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while True:
        time.sleep(0.02)
        elapsed = time.monotonic() - t0
        with load.lock:
            acked, inflight = load.acked_events, load.inflight
        # ready() last and only then: it may record what it saw at the moment of the kill.
        if (elapsed >= MIN_LOAD_SECONDS and acked >= MIN_ACKED and (ready() if ready else inflight > 0)) \
                or elapsed > MAX_LOAD_SECONDS:
            break
    server.kill()
    load.stop.set()
    for t in threads:
        t.join(timeout=60)
    return load, elapsed, inflight


def _stored_rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        duplicated = conn.execute("SELECT event_id, COUNT(*) FROM events GROUP BY event_id HAVING COUNT(*) > 1")
        assert duplicated.fetchall() == []
        rows = conn.execute(
            "SELECT event_id, user_id, type, item_id, value, text, ts, session_id FROM events"
        ).fetchall()
    conn.close()
    return rows


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.ensure_dead()


def test_acknowledged_events_survive_sigkill_exactly_once(tmp_path: Path, servers: list[Server]) -> None:
    db = tmp_path / "crash.db"
    url, item_ids = _build_store(db)
    first = Server(url, tmp_path / "server-1.log")
    servers.append(first)
    assert first.wait_healthy()["model_version"] is None  # no snapshot: ingest must not need one

    load, seconds, inflight = _run_load(first.base, item_ids, first)
    assert not load.errors, load.errors[:3]
    acked = load.acked()
    assert len(acked) >= MIN_ACKED, f"only {len(acked)} events acknowledged in {seconds:.1f} s"
    assert inflight > 0  # the kill came while requests were in flight

    # The file as SQLite sees it: intact, one row per id, every row a whole, valid event as sent.
    rows = _stored_rows(db)
    stored = {row[0] for row in rows}
    assert len(stored) == len(rows)
    assert acked <= stored, f"{len(acked - stored)} acknowledged events lost, e.g. {sorted(acked - stored)[:5]}"
    assert stored <= set(load.sent), "the store holds events nobody sent"
    for event_id, user_id, type_, item_id, value, text, ts, session_id in rows:
        event = Event(event_id, user_id, EventType(type_), item_id, value, text, ts, session_id)
        sent = load.sent[event_id]
        assert event == Event.from_dict(sent), f"stored {event} differs from sent {sent}"
    in_flight_stored = stored - acked
    print(f"\ncrash: {len(acked)} acknowledged in {seconds:.1f} s, {len(stored)} stored, "
          f"{len(in_flight_stored)} stored but unacknowledged (in flight at the kill, {inflight} requests)")

    # The same through liverec's own store: counts agree and every event reads back.
    store = open_store(url)
    try:
        assert store.events.count() == len(rows)
        assert store.events.existing(sorted(acked)) == acked
        assert sum(1 for _ in store.events.all()) == len(rows)
    finally:
        store.close()

    # A restarted server answers, a retried acknowledged batch stores nothing new, and a retried
    # unacknowledged batch stores exactly what the kill lost of it.
    second = Server(url, tmp_path / "server-2.log")
    servers.append(second)
    health = second.wait_healthy()
    assert health["status"] == "ok" and health["items"] == len(item_ids)
    acked_batches = sorted((b for b in load.batches if b.status == 200), key=lambda b: len(b.ids))
    retries = [acked_batches[0], acked_batches[-1], *load.unacked()]
    with httpx.Client(base_url=second.base, timeout=30.0) as http:
        for batch in retries:
            r = http.post("/events", json=batch.body)
            assert r.status_code == 200, r.text
            assert r.json()["event_ids"] == batch.ids
            already = sum(1 for i in batch.ids if i in stored)
            assert r.headers["Liverec-Duplicates"] == str(already)
            if batch.status == 200:
                assert already == len(batch.ids)
        # Now everything sent is stored, and a user's state, rebuilt from the log, counts all of it.
        per_user = Counter(event["user_id"] for event in load.sent.values())
        for user_id in sorted(per_user)[:3]:
            r = http.get(f"/users/{user_id}/interests")
            assert r.status_code == 200, r.text
            assert r.json()["events"] == per_user[user_id]
    assert second.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down

    assert sorted(row[0] for row in _stored_rows(db)) == sorted(load.sent)


# ---------------------------------------------------------------- kills during a retrain and an erasure

ERASE_VICTIMS = 40  # users erased one after another until the kill
FAST_TRAINING = {"models": {"sequential": {"max_epochs": 2, "patience": 1}}}


def _build_trained_store(directory: Path, victims: list[str]) -> tuple[str, list[str]]:
    """A store with 100 demo items, the demo users' events and a few events of each victim, trained
    (quickly) in this process: the snapshot the server loads holds every victim."""
    world = build_demo_world(seed=13, n_items=100, n_users=10)
    url = f"sqlite:///{directory / 'crash.db'}"
    start = min(time.time(), world.reference_time) - 86_400.0
    with Engine.open(url, **FAST_TRAINING) as engine:
        engine.ingest_items(world.items)
        engine.ingest_events(world.events)
        for n, victim in enumerate(victims):
            engine.ingest_events(world.new_user_history(victim, "coffee" if n % 2 else "fitness", 6, start=start + n))
        engine.train()
        assert set(victims) <= engine.snapshot.users()  # type: ignore[union-attr]
    return url, [item.item_id for item in world.items]


def _files_naming(directory: Path, user_ids: list[str]) -> list[str]:
    """``file: user id`` for every user id found in the raw bytes of any file under ``directory``."""
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(directory)}: {u}" for u in user_ids if u.encode() in data]
    return found


def _events_of(db: Path, user_ids: list[str]) -> Counter[str]:
    with sqlite3.connect(db) as conn:
        marks = ",".join("?" * len(user_ids))
        rows = conn.execute(f"SELECT user_id FROM events WHERE user_id IN ({marks})", user_ids).fetchall()
    conn.close()
    return Counter(row[0] for row in rows)


def _load_then_kill(base: str, item_ids: list[str], server: Server, ready: Callable[[], bool]) -> Load:
    """:func:`_run_load` until ``ready()``; no client may have seen a wrong answer."""
    load, _, _ = _run_load(base, item_ids, server, ready)
    assert not load.errors, load.errors[:3]
    return load


def _delete_until_taken(http: httpx.Client, path: str, inflight: threading.Event | None = None) -> httpx.Response:
    """DELETE ``path`` until the service takes it: a 503 is load shed under the clients' traffic,
    "retry shortly", as a client does. ``inflight`` is set while a request is out."""
    while True:
        if inflight is not None:
            inflight.set()
        try:
            answer = http.delete(path)
        finally:
            if inflight is not None:
                inflight.clear()
        if answer.status_code != 503:
            return answer
        time.sleep(0.05)


def _assert_acknowledged_events_kept(db: Path, load: Load) -> set[str]:
    stored = {row[0] for row in _stored_rows(db)}
    acked = load.acked()
    assert acked <= stored, f"{len(acked - stored)} acknowledged events lost, e.g. {sorted(acked - stored)[:5]}"
    return stored


def test_a_kill_during_a_retrain_loses_no_event_and_brings_back_no_erased_user(
    tmp_path: Path, servers: list[Server]
) -> None:
    directory = tmp_path / "store"  # the server logs, which name request paths, are kept apart
    victim = "crash-retrain-victim-5d2e"
    url, item_ids = _build_trained_store(directory, [victim])
    db = directory / "crash.db"
    first = Server(url, tmp_path / "server-1.log")
    servers.append(first)
    assert first.wait_healthy()["model_version"] == "v0001"

    erased, running_at_kill = threading.Event(), []

    def retrain_then_erase() -> None:
        with httpx.Client(base_url=first.base, timeout=30.0) as http:
            assert http.post("/admin/train").status_code == 202
            time.sleep(2.0)  # the training process has started and is likely reading the log
            answer = _delete_until_taken(http, f"/users/{victim}")
            assert answer.status_code == 200 and answer.json()["events_removed"] == 6, answer.text
            erased.set()

    def ready() -> bool:
        if not erased.is_set():
            return False
        status = httpx.get(f"{first.base}/admin/train", timeout=5.0).json()["status"]
        running_at_kill.append(status == "running")
        return True

    worker = threading.Thread(target=retrain_then_erase, daemon=True)
    worker.start()
    load = _load_then_kill(first.base, item_ids, first, ready)
    worker.join(timeout=60)
    assert erased.is_set(), "the erasure was not acknowledged before the kill"
    assert running_at_kill == [True], "the retrain had finished before the kill"

    _assert_acknowledged_events_kept(db, load)
    assert _events_of(db, [victim]) == Counter()
    second = Server(url, tmp_path / "server-2.log")
    servers.append(second)
    assert second.wait_healthy()["status"] == "ok"
    assert _files_naming(directory, [victim]) == []  # no snapshot, log or half-written training holds it
    with httpx.Client(base_url=second.base, timeout=30.0) as http:
        assert http.get(f"/users/{victim}/interests").status_code == 404
    assert second.stop() in (0, -signal.SIGTERM)
    assert _files_naming(directory, [victim]) == []


def test_a_kill_during_erasures_loses_no_event_and_brings_back_no_erased_user(
    tmp_path: Path, servers: list[Server]
) -> None:
    directory = tmp_path / "store"
    victims = [f"crash-erase-victim-{n:03d}-8kq" for n in range(ERASE_VICTIMS)]
    url, item_ids = _build_trained_store(directory, victims)
    db = directory / "crash.db"
    first = Server(url, tmp_path / "server-1.log")
    servers.append(first)
    first.wait_healthy()

    acked: list[str] = []
    refused: list[str] = []  # answers a client must not get (an assert in this thread would fail nothing)
    inflight = threading.Event()

    def erase() -> None:
        with httpx.Client(base_url=first.base, timeout=30.0) as http:
            for victim in victims:
                try:
                    answer = _delete_until_taken(http, f"/users/{victim}", inflight)
                except httpx.TransportError:
                    return  # killed mid-erasure: unacknowledged
                if answer.status_code != 200:
                    refused.append(f"{victim}: {answer.status_code} {answer.text}")
                    return
                acked.append(victim)

    worker = threading.Thread(target=erase, daemon=True)
    worker.start()
    load = _load_then_kill(first.base, item_ids, first, lambda: len(acked) >= 3 and inflight.is_set())
    worker.join(timeout=60)
    assert not refused, refused
    assert 3 <= len(acked) < ERASE_VICTIMS, f"{len(acked)} erasures acknowledged before the kill"

    _assert_acknowledged_events_kept(db, load)
    left = _events_of(db, victims)
    assert not set(acked) & set(left), "an acknowledged erasure lost"
    assert set(left.values()) <= {6}, f"an erasure was half done: {left}"  # all of a user's events, or none
    gone = [v for v in victims if v not in left]  # acknowledged, or committed before the kill

    second = Server(url, tmp_path / "server-2.log")
    servers.append(second)
    second.wait_healthy()
    assert _files_naming(directory, gone) == []  # the restart scrubbed what the kill interrupted
    with httpx.Client(base_url=second.base, timeout=30.0) as http:
        for victim in gone:
            assert http.get(f"/users/{victim}/interests").status_code == 404
        for victim in left:  # the client retries what was not acknowledged
            assert http.delete(f"/users/{victim}").status_code == 200
    assert _files_naming(directory, victims) == []
    assert second.stop() in (0, -signal.SIGTERM)

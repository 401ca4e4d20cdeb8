"""PostgreSQL briefly unreachable under a serving worker (issue 17): clear 503s while it is away,
nothing acknowledged lost, and service again when it is back, without a restart.

The outage is real at the network level: the worker reaches PostgreSQL through a TCP relay that
the test cuts (every connection dropped, new ones refused) and restores."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from liverec.core.settings import Settings
from liverec.datasets.demo import build_demo_world
from liverec.engine import Engine
from liverec.storage import open_store
from tests.service._server import Server

pytestmark = pytest.mark.services


class Relay:
    """A TCP relay to PostgreSQL that can be cut and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            server = socket.create_connection(self.target)
            with self.lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.up.clear()
        with self.lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.open.clear()

    def restore(self) -> None:
        self.up.set()


@pytest.fixture
def served(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[Server, Relay, str]]:
    world = build_demo_world(seed=3, n_items=30, n_users=5)
    engine = Engine(open_store(postgres_url), Settings())
    engine.ingest_items(world.items)
    engine.close()
    relay = Relay(("127.0.0.1", 5432))
    relayed = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}") + "&connect_timeout=2"
    server = Server(tmp_path, relayed, engine={"state_store": redis_url})
    try:
        server.wait_healthy()
        yield server, relay, world.items[0].item_id
    finally:
        relay.restore()
        server.stop()
        relay.listener.close()


def test_an_outage_is_clear_503s_loses_nothing_and_ends_without_a_restart(served: tuple[Server, Relay, str],
                                                                           postgres_url: str) -> None:
    server, relay, item = served
    client = httpx.Client(base_url=server.base, timeout=60)

    def post(n: int) -> httpx.Response:
        return client.post("/events", json={"event_id": f"o-{n}", "user_id": "outage", "type": "view",
                                            "item_id": item})

    acknowledged = [n for n in range(20) if post(n).status_code == 200]
    assert len(acknowledged) == 20
    relay.cut()
    during = []
    for n in range(20, 24):
        t = time.monotonic()
        answer = post(n)
        during.append((answer.status_code, answer.json()["error"]["code"], time.monotonic() - t))
    assert {(status, code) for status, code, _ in during} == {(503, "storage_unavailable")}, during
    assert max(seconds for *_, seconds in during) < 15
    relay.restore()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and post(100).status_code != 200:
        time.sleep(0.5)
    acknowledged.append(100)
    for n in range(101, 111):
        assert post(n).status_code == 200
        acknowledged.append(n)
    store = open_store(postgres_url)
    try:
        stored = store.events.get_many([f"o-{n}" for n in acknowledged])
        assert len(stored) == len(acknowledged)
    finally:
        store.close()
    assert server.proc.poll() is None  # the same process throughout

"""Concurrent readers and writers on one engine: no crash, no torn state, every answer valid.

faiss releases the GIL while searching, and user states change while requests read them, so
this is a real race test, bounded in iterations (not in time) so it never flakes on speed.
"""

from __future__ import annotations

import threading

from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine

READERS = 3
READS = 60


def test_readers_and_writers_run_concurrently_without_errors(engine: Engine, world: DemoWorld) -> None:
    users = [f"cc-{n}" for n in range(READERS)]
    for n, user in enumerate(users):
        engine.ingest_events(world.new_user_history(user, world.categories[n], 8))
    errors: list[BaseException] = []
    added: list[str] = []
    done = threading.Event()

    def read(user: str) -> None:
        try:
            for _ in range(READS):
                for rec in engine.recommend(user, k=10):
                    assert rec.reasons and rec.item_id not in engine.state(user).dismissed
                assert len(engine.search("waterproof hiking boots", k=5)) == 5
                engine.similar_items("i00001", k=5)
                engine.interests(user)
        except BaseException as exc:  # noqa: BLE001 - surfaced to the main thread below
            errors.append(exc)

    def write() -> None:
        try:
            n = 0
            while not done.is_set() and n < 200:
                user = users[n % READERS]
                last = max(e.timestamp for e in engine.store.events.by_user(user))
                engine.ingest_events(world.burst(user, "hiking", n=2, start=last + 1, types=("view",)))
                item = world.make_item("coffee", "en", seed=10_000 + n)
                engine.ingest_items([item])
                added.append(item.item_id)
                if n % 3 == 0:
                    engine.delete_item(item.item_id)
                n += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(u,)) for u in users]
    writer = threading.Thread(target=write)
    writer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    done.set()
    writer.join(timeout=300)
    for item_id in added:  # the engine is shared by the session: leave its catalog as found
        engine.delete_item(item_id)
    assert not errors, errors[:3]
    assert all(not t.is_alive() for t in [*threads, writer])

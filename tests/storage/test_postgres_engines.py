"""Two engines (as two workers) on one PostgreSQL store: what one ingests reaches the other's
online models (trending), once, and a snapshot one trains is adopted by the other's sync."""

from __future__ import annotations

import time

import pytest

from liverec.core.settings import Settings
from liverec.datasets.demo import build_demo_world
from liverec.engine import Engine
from liverec.realtime.store import MemoryStateStore
from liverec.storage import open_store

pytestmark = pytest.mark.services


def test_events_one_worker_stores_reach_the_others_trending_once(postgres_url: str) -> None:
    world = build_demo_world(seed=9, n_items=40, n_users=8)
    shared = MemoryStateStore()
    a = Engine(open_store(postgres_url), Settings(), state_store=shared)
    a.ingest_items(world.items)
    a.ingest_events(world.events)
    a.train()
    b = Engine(open_store(postgres_url), Settings(), state_store=shared)
    try:
        assert b.snapshot is not None and b.snapshot.version == a.snapshot.version  # type: ignore[union-attr]
        item = world.items[-1].item_id
        trending = b.snapshot.models["trending"]  # type: ignore[union-attr]
        before = float(trending.score_of([item])[0])  # type: ignore[attr-defined]
        now = time.time()
        a.ingest_events([{"event_id": f"t{n}", "user_id": f"buyer{n}", "type": "purchase", "item_id": item,
                          "timestamp": now} for n in range(30)])
        assert b.sync().items == 0
        after = float(trending.score_of([item])[0])  # type: ignore[attr-defined]
        assert after > before
        b.sync()  # read again (the look-back window): folded once only
        assert float(trending.score_of([item])[0]) == pytest.approx(after)  # type: ignore[attr-defined]
        mine = float(a.snapshot.models["trending"].score_of([item])[0])  # type: ignore[union-attr]
        assert after == pytest.approx(mine, rel=1e-3)  # both workers' trending saw the same events
        a.sync()  # its own events come back in the log: not folded in a second time
        assert float(a.snapshot.models["trending"].score_of([item])[0]) == pytest.approx(mine)  # type: ignore[union-attr]
    finally:
        a.close()
        b.close()

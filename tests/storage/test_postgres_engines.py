"""Two engines (as two workers) on one PostgreSQL store: what one ingests reaches the other's
online models (trending), once, and a snapshot one trains is adopted by the other's sync."""

from __future__ import annotations

import pytest

from liverec.core.settings import Settings
from liverec.datasets.demo import build_demo_world
from liverec.engine import Engine
from liverec.realtime.store import MemoryStateStore
from liverec.storage import open_store
from tests._worlds import assert_trending_takes_the_others_events_once

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
        assert_trending_takes_the_others_events_once(a, b, world.items[-1].item_id)
    finally:
        a.close()
        b.close()

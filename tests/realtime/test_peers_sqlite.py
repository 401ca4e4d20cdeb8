"""Two processes on one SQLite file: what one writes (items, deletions, events), the other serves
after its next sync — as `liverec ingest` while `liverec serve` runs — without a restart."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from liverec.core.settings import Settings
from liverec.datasets.demo import build_demo_world
from liverec.engine import Engine
from liverec.realtime.store import MemoryStateStore
from liverec.storage import open_store
from liverec.storage.sqlite import SCHEMA_VERSION
from tests._worlds import assert_trending_takes_the_others_events_once

WORLD = build_demo_world(seed=11, n_items=40, n_users=8)


def _engine(db: Path) -> Engine:
    """One process's engine: its own states, as two processes would have."""
    return Engine(open_store(f"sqlite:///{db}"), Settings(), state_store=MemoryStateStore())


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    a = _engine(tmp_path / "shop.db")
    a.ingest_items(WORLD.items)
    a.ingest_events(WORLD.events)
    b = _engine(tmp_path / "shop.db")
    yield a, b
    a.close()
    b.close()


def _item(item_id: str) -> dict[str, object]:
    return {"item_id": item_id, "title": "Trail running shoes", "description": "Light shoes for rocky trails",
            "categories": ["sports"]}


def test_an_item_upserted_or_deleted_by_one_process_is_served_by_the_other_after_its_sync(
        pair: tuple[Engine, Engine]) -> None:
    a, b = pair
    a.ingest_items([_item("new-shoe")])
    assert "new-shoe" not in b.items
    assert b.sync().items == 1
    assert "new-shoe" in b.items and b.items.get("new-shoe").title == "Trail running shoes"
    gone = WORLD.items[0].item_id
    a.delete_item(gone)
    assert b.sync().items == 1
    assert gone not in b.items
    assert b.sync().items == 0  # nothing new: nothing reloaded


def test_events_one_process_stores_reach_the_others_states(pair: tuple[Engine, Engine]) -> None:
    a, b = pair
    user = WORLD.events[0].user_id
    before = b.states.view(user)
    assert before is not None
    item = WORLD.items[-1].item_id
    a.ingest_events([{"event_id": "peer-1", "user_id": user, "type": "purchase", "item_id": item,
                      "timestamp": time.time()}])
    b.sync()
    after = b.states.view(user)
    assert after is not None and after.n_events == before.n_events + 1
    assert item in after.seen and after.recent[-1].event_id == "peer-1"
    assert item not in {r.item_id for r in b.recommend(user, k=10)}  # bought: not recommended again
    b.ingest_events([{"event_id": "own-1", "user_id": user, "type": "view", "item_id": item,
                      "timestamp": time.time()}])
    b.sync()  # its own event comes back in the log: not taken for another process's
    assert b.states.view(user).n_events == before.n_events + 2  # type: ignore[union-attr]


def test_the_online_models_take_another_processs_events_once(pair: tuple[Engine, Engine]) -> None:
    a, b = pair
    a.train()
    b.sync()
    assert_trending_takes_the_others_events_once(a, b, WORLD.items[-1].item_id)


def test_an_item_the_cli_ingests_into_a_served_file_is_served_without_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    served = _engine(db)
    try:
        served.ingest_items(WORLD.items)
        items = tmp_path / "items.jsonl"
        items.write_text(json.dumps(_item("cli-shoe")) + "\n")
        done = subprocess.run([sys.executable, "-m", "liverec.cli", "ingest", str(items), "--kind", "items",
                               "--store", f"sqlite:///{db}"], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert done.returncode == 0, done.stderr
        served.sync()
        assert "cli-shoe" in served.items
    finally:
        served.close()


def test_a_version_2_file_gains_the_change_log_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _engine(db).close()
    with sqlite3.connect(db) as conn:  # what a store written before version 3 holds
        conn.execute("DROP TABLE item_changes")
        conn.execute("PRAGMA user_version = 2")
    a, b = _engine(db), _engine(db)
    try:
        assert SCHEMA_VERSION == 3
        a.ingest_items([_item("after-upgrade")])
        assert b.sync().items == 1 and "after-upgrade" in b.items
    finally:
        a.close()
        b.close()

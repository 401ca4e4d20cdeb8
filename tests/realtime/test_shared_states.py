"""Two engines (as two API workers) sharing one event log and one state store: a state rebuilt by
one never overwrites what the other folded in meanwhile, and no event is lost or counted twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from liverec.core.settings import Settings
from liverec.datasets.demo import DemoWorld, build_demo_world
from liverec.engine import Engine
from liverec.realtime.store import MemoryStateStore
from liverec.storage import open_store
from tests._hooks import before_first_call


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(seed=5, n_items=40, n_users=6)


@pytest.fixture
def pair(world: DemoWorld, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    shared = MemoryStateStore()  # what Redis is to two processes: one store, two engines
    a = Engine(open_store(url), Settings(), state_store=shared)
    a.ingest_items(world.items)
    b = Engine(open_store(url), Settings(), state_store=shared)
    yield a, b
    a.close()
    b.close()


def _event(n: int, user_id: str, item_id: str) -> dict[str, object]:
    return {"event_id": f"x{n}", "user_id": user_id, "type": "view", "item_id": item_id, "timestamp": time.time()}


def test_a_state_another_worker_stored_first_gets_the_events_it_lacks(pair: tuple[Engine, Engine],
                                                                       world: DemoWorld) -> None:
    a, b = pair
    items = [i.item_id for i in world.items]
    a.ingest_events([_event(1, "u-new", items[0])])
    a.states.forget("u-new")  # cold again, as after Redis restarted empty
    # B rebuilt the user from the log as it was before A's next event, and stores it while A
    # rebuilds (A found no state, so it rebuilds instead of applying).
    older = b.states.build("u-new", b.store.events.by_user("u-new"))
    before_first_call(a.states, "put_new", lambda: b.states.put_new(older))
    a.ingest_events([_event(2, "u-new", items[1])])
    state = a.state("u-new")
    assert state.n_events == 2
    assert [r.event_id for r in state.recent] == ["x1", "x2"]


def test_a_rebuild_that_already_holds_the_event_does_not_fold_it_twice(pair: tuple[Engine, Engine],
                                                                         world: DemoWorld) -> None:
    a, b = pair
    items = [i.item_id for i in world.items]
    # While A rebuilds after storing x3, B rebuilds from the log that already holds x3 and stores first.
    before_first_call(a.states, "put_new",
                      lambda: b.states.put_new(b.states.build("u-two", b.store.events.by_user("u-two"))))
    a.ingest_events([_event(3, "u-two", items[2])])
    state = b.state("u-two")
    assert state.n_events == 1 and [r.event_id for r in state.recent] == ["x3"]


def test_events_of_one_user_through_both_workers_are_all_in_the_state(pair: tuple[Engine, Engine],
                                                                        world: DemoWorld) -> None:
    a, b = pair
    items = [i.item_id for i in world.items]
    for n in range(40):
        (a if n % 2 else b).ingest_events([_event(100 + n, "u-both", items[n % len(items)])])
        if n % 7 == 0:
            (b if n % 2 else a).states.forget("u-both")  # evicted now and then: rebuilt by whoever comes next
    assert a.state("u-both").n_events == b.state("u-both").n_events == 40

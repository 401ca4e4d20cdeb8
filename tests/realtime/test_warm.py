"""Warming user states in the background (``LiveStates.warm``): built outside the write lock, and
never at the cost of an event stored or a user erased meanwhile (issue 12: a warm-up held the
lock for whole chunks of rebuilds, and requests and commits waited behind it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from liverec.datasets.demo import DemoWorld, build_demo_world
from liverec.engine import Engine
from tests._hooks import before_first_call, free_on_another_thread
from tests._worlds import world_engine


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(seed=11, n_items=60, n_users=12)


@pytest.fixture
def engine(world: DemoWorld) -> Iterator[Engine]:
    eng = world_engine(world)
    eng.states.clear()  # every user cold, as after a start
    yield eng
    eng.close()


def _on_first_signals(engine: Engine, action: Callable[[], object]) -> None:
    """Run ``action`` when the warm-up has read its first chunk's histories, before it puts states."""
    before_first_call(engine.states, "signals", action)


def test_warm_builds_every_users_state_as_a_rebuild_would(engine: Engine, world: DemoWorld) -> None:
    users = sorted({e.user_id for e in world.events})
    assert engine.warm_states() == len(users)
    for user_id in users:
        rebuilt = engine.states.build(user_id, engine.store.events.by_user(user_id))
        assert engine.states.get(user_id) == rebuilt
    assert engine.warm_states() == 0  # nothing cold is left


def test_warm_does_not_hold_the_write_lock_while_it_builds(engine: Engine) -> None:
    free: list[bool] = []

    def try_lock() -> None:
        free.append(free_on_another_thread(engine.states.lock))

    _on_first_signals(engine, try_lock)
    engine.warm_states()
    assert free == [True]


def test_an_event_stored_during_a_warm_up_is_in_the_users_state(engine: Engine, world: DemoWorld) -> None:
    user_id = sorted({e.user_id for e in world.events})[0]
    item_id = world.items[-1].item_id
    late = {"event_id": "late-1", "user_id": user_id, "type": "click", "item_id": item_id, "timestamp": time.time()}
    _on_first_signals(engine, lambda: engine.ingest_events([late]))
    engine.warm_states()
    state = engine.states.get(user_id)
    assert state is not None and "late-1" in [a.event_id for a in state.recent]
    assert state == engine.states.build(user_id, engine.store.events.by_user(user_id))


def test_a_user_erased_during_a_warm_up_is_not_put_back(engine: Engine, world: DemoWorld) -> None:
    user_id = sorted({e.user_id for e in world.events})[0]
    _on_first_signals(engine, lambda: engine.forget_user(user_id))
    engine.warm_states()
    assert not engine.has_live_state(user_id)
    assert engine.store.events.by_user(user_id) == []


def test_a_bounded_store_keeps_its_bound_and_an_evicted_user_reads_as_a_rebuild(world: DemoWorld) -> None:
    """Issue 16: live states have a memory bound; a state dropped for room is rebuilt from the log
    on its user's next read, equal to one that was never dropped."""
    eng = Engine.open("memory://", state_store="memory://?capacity=4")
    try:
        eng.ingest_items(world.items)
        eng.ingest_events(world.events)
        users = sorted({e.user_id for e in world.events})
        assert len(users) > 4 and len(eng.states) <= 4  # a full store left the rest cold
        assert eng.warm_states() == 0  # warming past the bound would only evict
        for user_id in users:  # every read rebuilds or finds; the bound holds throughout
            rebuilt = eng.states.build(user_id, eng.store.events.by_user(user_id))
            assert eng.state(user_id) == rebuilt
            assert len(eng.states) <= 4
        assert eng.states.store.evicted >= len(users) - 4
    finally:
        eng.close()

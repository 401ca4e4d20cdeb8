"""The contract every :class:`~liverec.realtime.store.StateStore` keeps, as one reusable test suite.

Subclass :class:`StateContract` in a test module and override the ``make_state_store`` fixture
to return a function that opens an empty store of the backend under test::

    class TestRedisStateStore(StateContract):
        @pytest.fixture
        def make_state_store(self, redis_url):
            return lambda: open_state_store(redis_url)

Each test works on a few hand-made states whose right answer is known and asserts it exactly,
so a backend passes only if it keeps every field of a state and the semantics the protocol's
docstring states: ``get`` copies, ``put`` takes ownership, ``update`` is atomic and loses no
update, even from many threads.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError, StorageError
from liverec.core.settings import Settings
from liverec.core.types import Event, EventType
from liverec.realtime.codec import encode_state
from liverec.realtime.state import EventSignal, StateUpdater, UserState
from liverec.realtime.store import StateStore

StateStoreFactory = Callable[[], StateStore]

_UPDATER = StateUpdater(Settings(recent_length=4, short_term_half_life=100.0, tag_half_life=1000.0))


def _vector(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def make_state(user_id: str = "u1") -> UserState:
    """A state that uses every field: five events (one more than ``recent`` keeps), a search
    (no item), a dismissal (a negative vector), a review in Chinese; vectors of dimension 3."""
    events = [
        (Event.create(user_id, EventType.VIEW, "i1", timestamp=10.0), EventSignal(_vector(1, 0, 0), tags=("tents",))),
        (Event.create(user_id, EventType.CLICK, "i2", timestamp=20.0), EventSignal(_vector(0, 1, 0), tags=("雨伞",))),
        (Event.create(user_id, EventType.SEARCH, text="red shoes", timestamp=30.0), EventSignal(_vector(0, 0, 1))),
        (Event.create(user_id, EventType.DISMISS, "i3", timestamp=40.0), EventSignal(_vector(1, 1, 0))),
        (
            Event.create(user_id, EventType.REVIEW, "i4", value=5.0, text="很好, great", timestamp=50.0),
            EventSignal(_vector(0, 0.5, 0.5), polarity=0.5, tags=("shoes", "tents")),
        ),
    ]
    state = UserState.empty(user_id, recent_length=4)
    for event, signal in events:
        _UPDATER.apply(state, event, signal)
    return state


def _view(user_id: str, item_id: str, timestamp: float) -> tuple[Event, EventSignal]:
    return Event.create(user_id, EventType.VIEW, item_id, timestamp=timestamp), EventSignal(_vector(1, 0, 0))


def _applied(state: UserState, event: Event, signal: EventSignal) -> UserState:
    return _UPDATER.apply(state, event, signal)


def _count(state: UserState) -> UserState:
    """An update a store may retry: bumps both counters, so a half-done update would show."""
    state.version += 1
    state.interactions["count"] = state.interactions.get("count", 0.0) + 1.0
    state.n_events += 1
    return state


class StateContract:
    """Tests every state store must pass; subclasses override :meth:`make_state_store`."""

    @pytest.fixture
    def make_state_store(self) -> StateStoreFactory:
        """Return a function that opens a new, empty state store of the backend under test."""
        raise NotImplementedError("override the make_state_store fixture in the subclass")

    @pytest.fixture
    def store(self, make_state_store: StateStoreFactory) -> Iterator[StateStore]:
        store = make_state_store()
        yield store
        store.close()

    def test_is_a_state_store(self, store: StateStore) -> None:
        assert isinstance(store, StateStore)
        assert isinstance(store.url, str) and store.url
        assert len(store) == 0

    def test_make_state_uses_every_field(self) -> None:
        # The states below are only as good a probe as they are full.
        state = make_state()
        assert [(a.type, a.item_id, a.text) for a in state.recent] == [
            (EventType.CLICK, "i2", None),
            (EventType.SEARCH, None, "red shoes"),
            (EventType.DISMISS, "i3", None),
            (EventType.REVIEW, "i4", "很好, great"),
        ]
        assert state.recent.maxlen == 4
        assert state.short_vec is not None and state.neg_vec is not None
        assert (state.short_ts, state.neg_ts, state.tags_ts, state.last_ts) == (50.0, 40.0, 10.0, 50.0)
        assert sorted(state.tags) == ["shoes", "tents", "雨伞"]
        assert state.interactions == {"i1": 1.0, "i2": 1.5, "i4": 1.5}
        assert state.seen == {"i1", "i2", "i3", "i4"} and state.dismissed == {"i3"}
        assert (state.n_events, state.version) == (5, 5)

    # --- a user with no state ------------------------------------------------------------------

    def test_a_missing_user_has_no_state_and_update_does_not_call_fn(self, store: StateStore) -> None:
        calls: list[UserState] = []

        def fn(state: UserState) -> UserState:
            calls.append(state)
            return state

        assert store.get("u1") is None
        assert store.update("u1", fn) is False
        assert calls == []
        assert "u1" not in store and len(store) == 0
        assert store.delete("u1") is False

    # --- put and get ---------------------------------------------------------------------------

    def test_put_then_get_gives_an_equal_state(self, store: StateStore) -> None:
        store.put(make_state())
        assert store.get("u1") == make_state()
        assert "u1" in store and len(store) == 1

    def test_a_state_comes_back_with_every_field_exactly(self, store: StateStore) -> None:
        expected = encode_state(make_state())
        store.put(make_state())
        got = store.get("u1")
        assert got is not None
        assert encode_state(got) == expected

    def test_put_replaces_the_users_state(self, store: StateStore) -> None:
        store.put(UserState.empty("u1"))
        store.put(make_state())
        assert store.get("u1") == make_state()
        assert len(store) == 1

    def test_put_if_absent_stores_only_the_first_state(self, store: StateStore) -> None:
        assert store.put_if_absent(make_state()) is True
        assert store.put_if_absent(UserState.empty("u1")) is False
        assert store.get("u1") == make_state()
        assert len(store) == 1

    def test_of_racing_put_if_absent_exactly_one_wins(self, store: StateStore) -> None:
        start = threading.Barrier(8)

        def put(n: int) -> bool:
            state = UserState.empty("u1")
            state.version = n
            start.wait()
            return store.put_if_absent(state)

        with ThreadPoolExecutor(max_workers=8) as pool:
            won = list(pool.map(put, range(8)))
        assert won.count(True) == 1
        state = store.get("u1")
        assert state is not None and state.version == won.index(True)

    def test_get_returns_a_copy_the_caller_owns(self, store: StateStore) -> None:
        store.put(make_state())
        got = store.get("u1")
        assert got is not None and got.short_vec is not None and got.neg_vec is not None
        got.recent.append(got.recent[0])
        got.recent.popleft()
        got.short_vec *= 2.0
        got.neg_vec[0] = 99.0
        got.tags["new"] = 1.0
        got.interactions["i1"] = 7.0
        got.seen.add("i9")
        got.dismissed.clear()
        got.version = 99
        assert got != make_state()
        assert store.get("u1") == make_state()

    def test_two_gets_are_independent_of_each_other(self, store: StateStore) -> None:
        store.put(make_state())
        first, second = store.get("u1"), store.get("u1")
        assert first is not None and second is not None and first is not second
        assert first.short_vec is not None
        first.short_vec[:] = 0.0
        first.seen.add("i9")
        assert second == make_state()

    def test_states_of_different_users_are_independent(self, store: StateStore) -> None:
        store.put(make_state("u1"))
        store.put(make_state("u2"))
        assert store.update("u1", lambda s: _applied(s, *_view("u1", "i7", 60.0))) is True
        assert store.get("u2") == make_state("u2")
        assert store.delete("u1") is True
        assert store.get("u2") == make_state("u2")
        assert "u1" not in store and "u2" in store and len(store) == 1

    # --- update --------------------------------------------------------------------------------

    def test_update_stores_what_fn_returns(self, store: StateStore) -> None:
        store.put(make_state())
        event, signal = _view("u1", "i7", 60.0)
        assert store.update("u1", lambda s: _applied(s, event, signal)) is True
        assert store.get("u1") == _applied(make_state(), event, signal)
        assert store.update("u1", lambda s: UserState.empty("u1", recent_length=9)) is True
        assert store.get("u1") == UserState.empty("u1", recent_length=9)
        assert len(store) == 1

    def test_update_passes_the_stored_state(self, store: StateStore) -> None:
        store.put(make_state())
        passed: list[UserState] = []

        def fn(state: UserState) -> UserState:
            passed.append(state.copy())
            return state

        assert store.update("u1", fn) is True
        assert passed and all(state == make_state() for state in passed)
        assert store.get("u1") == make_state()

    def test_update_returning_another_users_state_is_refused(self, store: StateStore) -> None:
        store.put(make_state("u1"))
        with pytest.raises(InvalidInputError, match="'u1'.*'u2'"):
            store.update("u1", lambda s: make_state("u2"))
        assert store.get("u1") == make_state("u1")
        assert "u2" not in store and len(store) == 1

    def test_concurrent_updates_of_one_user_lose_none(self, store: StateStore) -> None:
        store.put(UserState.empty("u1"))
        start = threading.Barrier(8)

        def update_many(_: int) -> int:
            start.wait()
            return sum(store.update("u1", _count) for _ in range(200))

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert sum(pool.map(update_many, range(8))) == 1600
        state = store.get("u1")
        assert state is not None
        assert (state.version, state.n_events, state.interactions) == (1600, 1600, {"count": 1600.0})

    def test_a_get_during_updates_never_sees_one_half_done(self, store: StateStore) -> None:
        store.put(UserState.empty("u1"))
        done = threading.Event()

        def update_many() -> None:
            for _ in range(500):
                store.update("u1", _count)
            done.set()

        writer = threading.Thread(target=update_many)
        writer.start()
        seen: list[tuple[int, int, float]] = []
        while not done.is_set():
            state = store.get("u1")
            assert state is not None
            seen.append((state.version, state.n_events, state.interactions.get("count", 0.0)))
        writer.join()
        assert all(version == n_events == count for version, n_events, count in seen)
        assert [version for version, _, _ in seen] == sorted(version for version, _, _ in seen)
        final = store.get("u1")
        assert final is not None and final.version == 500

    def test_concurrent_updates_of_different_users_do_not_interfere(self, store: StateStore) -> None:
        users = [f"u{n}" for n in range(8)]
        for user_id in users:
            store.put(UserState.empty(user_id, recent_length=200))
        start = threading.Barrier(8)

        def update_many(user_id: str) -> None:
            start.wait()
            for n in range(200):
                event, signal = _view(user_id, f"{user_id}-i{n}", float(n))
                assert store.update(user_id, functools.partial(_applied, event=event, signal=signal)) is True

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(update_many, users))
        for user_id in users:
            state = store.get(user_id)
            assert state is not None
            assert (state.user_id, state.version, len(state.seen)) == (user_id, 200, 200)
            assert [a.item_id for a in state.recent] == [f"{user_id}-i{n}" for n in range(200)]

    # --- delete, clear, len, contains ----------------------------------------------------------

    def test_delete_returns_whether_a_state_was_held(self, store: StateStore) -> None:
        store.put(make_state("u1"))
        store.put(make_state("u2"))
        assert store.delete("u1") is True
        assert store.delete("u1") is False
        assert store.get("u1") is None and "u1" not in store
        assert store.update("u1", _count) is False
        assert len(store) == 1 and store.get("u2") == make_state("u2")

    def test_clear_drops_every_state(self, store: StateStore) -> None:
        for user_id in ("u1", "u2", "u3"):
            store.put(make_state(user_id))
        assert len(store) == 3
        store.clear()
        assert len(store) == 0
        assert [store.get(u) for u in ("u1", "u2", "u3")] == [None, None, None]
        store.put(make_state("u2"))
        assert len(store) == 1 and store.get("u2") == make_state("u2")

    def test_user_ids_lists_whose_states_are_held(self, store: StateStore) -> None:
        assert store.user_ids() == []
        for user_id in ("u1", "用户-二", "u3"):
            store.put(make_state(user_id))
        store.delete("u3")
        assert sorted(store.user_ids()) == sorted(["u1", "用户-二"])
        store.clear()
        assert store.user_ids() == []

    def test_contains_takes_any_object(self, store: StateStore) -> None:
        store.put(make_state("u1"))
        assert "u1" in store
        assert "u2" not in store
        assert 1 not in store
        assert None not in store

    def test_user_ids_are_kept_exactly(self, store: StateStore) -> None:
        users = ["用户-一", " u1", "u1 ", "U1", "a:b{c}*?"]
        for user_id in users:
            store.put(UserState.empty(user_id))
        assert len(store) == len(users)
        for user_id in users:
            state = store.get(user_id)
            assert state is not None and state.user_id == user_id
        assert "u1" not in store

    # --- lifetime ------------------------------------------------------------------------------

    def test_close_twice_is_safe_and_a_closed_store_refuses_use(self, make_state_store: StateStoreFactory) -> None:
        store = make_state_store()
        store.put(make_state())
        store.close()
        store.close()
        with pytest.raises(StorageError, match="closed"):
            store.get("u1")
        with pytest.raises(StorageError, match="closed"):
            store.put(make_state())
        with pytest.raises(StorageError, match="closed"):
            store.update("u1", _count)

"""MemoryStateStore against the state-store contract, and state stores opened by URL."""

from __future__ import annotations

import re

import pytest

from liverec.core.errors import InvalidInputError
from liverec.realtime.state import UserState
from liverec.realtime.store import (
    MemoryStateStore,
    StateStore,
    open_state_store,
    register_state_store,
)
from liverec.testing.state_contract import StateContract, StateStoreFactory


class TestMemoryStateStore(StateContract):
    @pytest.fixture
    def make_state_store(self) -> StateStoreFactory:
        return MemoryStateStore


def test_memory_update_changes_the_stored_object_in_place_without_a_copy() -> None:
    store = MemoryStateStore()
    store.put(UserState.empty("u1"))
    passed: list[UserState] = []

    def fn(state: UserState) -> UserState:
        passed.append(state)
        state.version += 1
        return state

    store.update("u1", fn)
    store.update("u1", fn)
    assert len(passed) == 2 and passed[0] is passed[1]
    assert passed[0].version == 2


def test_memory_store_keeps_the_object_put() -> None:
    store = MemoryStateStore()
    state = UserState.empty("u1")
    store.put(state)
    state.version = 7  # what the contract forbids a caller, to show the store took the object itself
    got = store.get("u1")
    assert got is not None and got.version == 7 and got is not state


def test_memory_url_opens_an_empty_memory_store() -> None:
    store = open_state_store("memory://")
    assert isinstance(store, MemoryStateStore) and isinstance(store, StateStore)
    assert store.url == "memory://" and len(store) == 0
    assert isinstance(open_state_store(), MemoryStateStore)
    assert open_state_store("MEMORY://").url == "memory://"


_MEMORY_REST = "memory:// takes nothing after the scheme but an optional ?capacity=N (states held; 0 = no bound)"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("memcached://x", "unknown scheme 'memcached'; known: memory://, redis://, rediss://"),
        ("nonsense", "it has no scheme; known: memory://, redis://, rediss://"),
        ("://x", "it has no scheme; known: memory://, redis://, rediss://"),
        ("", "it has no scheme; known: memory://, redis://, rediss://"),
        ("memory://x", _MEMORY_REST),
        ("memory://?capacity=-1", _MEMORY_REST),
        ("memory://?size=5", _MEMORY_REST),
    ],
)
def test_an_unknown_or_malformed_url_is_refused_naming_it(url: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_state_store(url)
    assert str(caught.value) == f"state store URL {url!r} is not supported: {problem}"
    assert (caught.value.field, caught.value.value) == ("state_store", url)


def test_a_registered_scheme_opens_through_its_opener(monkeypatch: pytest.MonkeyPatch) -> None:
    import liverec.realtime.store as store_module

    monkeypatch.setattr(store_module, "_OPENERS", dict(store_module._OPENERS))
    opened: list[tuple[str, str]] = []

    def open_fake(url: str, rest: str) -> StateStore:
        opened.append((url, rest))
        return MemoryStateStore()

    register_state_store("fake", open_fake)
    register_state_store("fake+tls", open_fake)
    assert isinstance(open_state_store("fake://host:1/0"), MemoryStateStore)
    assert isinstance(open_state_store("fake+tls://"), MemoryStateStore)
    assert opened == [("fake://host:1/0", "host:1/0"), ("fake+tls://", "")]
    with pytest.raises(InvalidInputError, match=r"known: memory://, redis://, rediss://, fake://, fake\+tls://$"):
        open_state_store("memcached://x")


@pytest.mark.parametrize("scheme", ["", "Redis", "re dis", "redis://", "1redis", "redis_x"])
def test_a_scheme_that_is_not_a_lower_case_url_scheme_cannot_be_registered(scheme: str) -> None:
    message = f"state store scheme {scheme!r} is not a lower-case URL scheme like 'redis'"
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        register_state_store(scheme, lambda url, rest: MemoryStateStore())


def test_a_memory_store_holds_at_most_its_capacity_dropping_the_least_recently_used() -> None:
    store = open_state_store("memory://?capacity=3")
    assert isinstance(store, MemoryStateStore) and store.capacity == 3
    for user in ("a", "b", "c"):
        store.put(UserState.empty(user))
    assert store.get("a") is not None  # a read makes "a" recent
    assert store.update("b", lambda s: s)  # so does an update
    store.put(UserState.empty("d"))  # "c" is the least recently used
    assert sorted(store.user_ids()) == ["a", "b", "d"] and store.evicted == 1
    store.put(UserState.empty("e"))
    assert sorted(store.user_ids()) == ["b", "d", "e"] and store.evicted == 2


def test_capacity_zero_in_the_url_means_no_bound_and_the_default_is_bounded() -> None:
    from liverec.realtime.store import DEFAULT_CAPACITY

    assert open_state_store("memory://?capacity=0").capacity is None
    assert open_state_store("memory://").capacity == DEFAULT_CAPACITY
    with pytest.raises(InvalidInputError, match="capacity must be an integer >= 1"):
        MemoryStateStore(0)

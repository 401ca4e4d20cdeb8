"""The Redis state store: the whole state-store contract, plus what only a shared store faces
(several processes writing one user, expiry, a Redis that restarts empty or is not there)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

from liverec.core.errors import InvalidInputError, StorageError
from liverec.realtime.codec import encode_state
from liverec.realtime.redis_store import RedisStateStore
from liverec.realtime.state import UserState
from liverec.realtime.store import StateStore, open_state_store
from liverec.testing.state_contract import StateContract, StateStoreFactory, make_state

pytestmark = pytest.mark.services

redis = pytest.importorskip("redis")


class TestRedisStateStore(StateContract):
    @pytest.fixture
    def make_state_store(self, redis_url: str) -> StateStoreFactory:
        return lambda: open_state_store(redis_url)


def _prefix(url: str) -> str:
    return parse_qs(urlsplit(url).query)["prefix"][0]


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client of the same database: what another process, or an operator, sees and does."""
    client = redis.Redis.from_url(redis_url.partition("?")[0])
    yield client
    client.close()


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStateStore]:
    opened = open_state_store(redis_url)
    assert isinstance(opened, RedisStateStore)
    yield opened
    opened.close()


def _count(state: UserState) -> UserState:
    state.version += 1
    state.n_events += 1
    return state


def test_states_are_codec_bytes_under_one_key_per_user_and_a_users_set(
    store: RedisStateStore, raw: redis.Redis, redis_url: str
) -> None:
    prefix = _prefix(redis_url)
    store.put(make_state("u1"))
    store.put(UserState.empty("用户-二"))
    assert raw.get(f"{prefix}state:u1") == encode_state(make_state("u1"))
    assert raw.get(f"{prefix}state:用户-二") == encode_state(UserState.empty("用户-二"))
    assert raw.smembers(f"{prefix}users") == {b"u1", "用户-二".encode()}
    assert raw.ttl(f"{prefix}state:u1") == -1  # no ttl in the URL: states do not expire
    assert sorted(raw.scan_iter(match=f"{prefix}*")) == sorted(
        [f"{prefix}state:u1".encode(), f"{prefix}state:用户-二".encode(), f"{prefix}users".encode()]
    )


def test_two_stores_updating_one_user_from_many_threads_lose_no_update(redis_url: str) -> None:
    # Two stores, two connection pools: what two API workers updating the same user do.
    first, second = open_state_store(redis_url), open_state_store(redis_url)
    first.put(UserState.empty("u1"))
    calls = 0
    calls_lock = threading.Lock()

    def count(state: UserState) -> UserState:
        nonlocal calls
        with calls_lock:
            calls += 1
        return _count(state)

    start = threading.Barrier(12)

    def update_many(n: int) -> int:
        store = (first, second)[n % 2]
        start.wait()
        return sum(store.update("u1", count) for _ in range(100))

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            assert sum(pool.map(update_many, range(12))) == 1200
        for store in (first, second):
            state = store.get("u1")
            assert state is not None and (state.version, state.n_events) == (1200, 1200)
        assert calls >= 1200  # each retried conflict calls fn once more
    finally:
        first.close()
        second.close()


def test_an_update_that_loses_a_conflict_starts_again_from_the_winners_state(redis_url: str) -> None:
    store, other = open_state_store(redis_url), open_state_store(redis_url)
    store.put(UserState.empty("u1"))
    passed: list[int] = []

    def fn(state: UserState) -> UserState:
        passed.append(state.version)
        if len(passed) == 1:  # another worker writes between this update's read and its commit
            assert other.update("u1", _count) is True
        return _count(state)

    try:
        assert store.update("u1", fn) is True
        state = store.get("u1")
        assert passed == [0, 1]  # the first attempt's write was refused; the second saw the winner's
        assert state is not None and state.version == 2
    finally:
        store.close()
        other.close()


def test_an_update_whose_commit_reply_is_lost_drops_the_state_for_a_rebuild(
    store: RedisStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # EXEC ran but its reply timed out: retrying could fold the event in twice, giving up could
    # lose it, so the state goes and the next read rebuilds it from the log.
    store.put(UserState.empty("u1"))
    store.put(UserState.empty("u2"))
    execute = redis.client.Pipeline.execute
    commits: list[list[object]] = []

    def execute_then_time_out(pipe: redis.client.Pipeline, raise_on_error: bool = True) -> list[object]:
        commits.append(execute(pipe, raise_on_error))
        if len(commits) == 1:  # the update's EXEC; the drop that follows gets its reply
            raise redis.TimeoutError("Timeout reading from socket")
        return commits[-1]

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute_then_time_out)
    with pytest.raises(StorageError) as caught:
        store.update("u1", _count)
    monkeypatch.undo()
    assert str(caught.value) == (
        f"cannot update the state of user 'u1' in {store.where}: Timeout reading from socket; whether it was "
        "stored is unknown, so the state was dropped and will be rebuilt from the event log"
    )
    assert commits == [[True, 0], [1, 1]]  # the update was stored, then dropped (key and id)
    assert store.get("u1") is None and store.user_ids() == ["u2"]


def test_put_if_absent_stores_only_for_a_user_without_a_state(store: RedisStateStore, redis_url: str) -> None:
    other = open_state_store(redis_url)
    assert isinstance(other, RedisStateStore)
    try:
        assert store.put_if_absent(make_state("u1")) is True
        rebuilt = UserState.empty("u1")
        assert other.put_if_absent(rebuilt) is False  # a second rebuild of u1 never overwrites the first
        assert store.put_if_absent(UserState.empty("u1")) is False
        assert other.get("u1") == make_state("u1")
        assert store.user_ids() == ["u1"] and len(store) == 1
        assert store.delete("u1") is True
        assert other.put_if_absent(UserState.empty("u1")) is True
        assert store.get("u1") == UserState.empty("u1") and len(store) == 1
    finally:
        other.close()


def test_states_expire_ttl_seconds_after_their_last_write(redis_url: str, raw: redis.Redis) -> None:
    store = open_state_store(f"{redis_url}&ttl=1")
    assert isinstance(store, RedisStateStore) and store.ttl == 1
    prefix = _prefix(redis_url)
    try:
        store.put(make_state("u1"))
        assert store.put_if_absent(make_state("u2")) is True
        store.put(make_state("u3"))
        assert 0 < raw.pttl(f"{prefix}state:u1") <= 1000
        time.sleep(0.7)
        assert store.update("u3", _count) is True  # a write starts u3's second again
        assert 0 < raw.pttl(f"{prefix}state:u3") <= 1000
        time.sleep(0.6)  # 1.3 s after u1 and u2 were written, 0.6 s after u3 was
        assert store.get("u1") is None and "u2" not in store
        assert store.update("u1", _count) is False
        assert store.user_ids() == ["u3"] and len(store) == 1
        assert raw.smembers(f"{prefix}users") == {b"u3"}  # listing dropped the ids of expired states
        time.sleep(0.6)
        assert store.get("u3") is None and len(store) == 0 and store.user_ids() == []
        assert store.put_if_absent(make_state("u1")) is True  # a miss is rebuilt and stored again
        assert store.get("u1") == make_state("u1")
    finally:
        store.close()


def test_a_redis_that_lost_every_state_shows_misses_not_errors(
    store: RedisStateStore, raw: redis.Redis, redis_url: str
) -> None:
    for user_id in ("u1", "u2"):
        store.put(make_state(user_id))
    # What a restart of a Redis that keeps nothing on disk looks like: this prefix's keys are gone.
    raw.delete(*raw.scan_iter(match=f"{_prefix(redis_url)}*"))
    called: list[UserState] = []
    assert store.get("u1") is None
    assert store.update("u1", lambda s: called.append(s) or s) is False and called == []
    assert "u2" not in store and len(store) == 0 and store.user_ids() == []
    assert store.delete("u2") is False
    store.put(make_state("u1"))
    assert store.get("u1") == make_state("u1") and store.user_ids() == ["u1"]


def test_connections_dropped_by_redis_are_reconnected_to(store: RedisStateStore, raw: redis.Redis) -> None:
    store.put(make_state("u1"))
    killed = raw.client_kill_filter(_id=store._client.client_id())  # its pooled connection, as a restart drops it
    assert killed == 1
    assert store.get("u1") == make_state("u1")
    assert store.update("u1", _count) is True
    state = store.get("u1")
    assert state is not None and state.version == make_state("u1").version + 1


def test_clear_drops_only_its_own_prefix(redis_url: str, raw: redis.Redis) -> None:
    # "a*:" read as a pattern would match "ab:"'s keys too: the prefix is matched literally.
    base, prefix = redis_url.partition("?")[0], _prefix(redis_url)
    mine, theirs = (open_state_store(f"{base}?prefix={prefix}{tail}") for tail in ("a*:", "ab:"))
    try:
        for store in (mine, theirs):
            store.put(make_state("u1"))
            store.put(make_state("u2"))
        mine.clear()
        assert len(mine) == 0 and mine.get("u1") is None
        assert sorted(theirs.user_ids()) == ["u1", "u2"] and theirs.get("u2") == make_state("u2")
        assert not list(raw.scan_iter(match=f"{prefix}a\\*:*"))
    finally:
        mine.close()
        theirs.close()


def test_a_state_redis_holds_in_a_format_this_liverec_cannot_read_is_a_storage_error(
    store: RedisStateStore, raw: redis.Redis, redis_url: str
) -> None:
    raw.set(f"{_prefix(redis_url)}state:u1", b"LRUS\x09\x00")
    message = f"the state of user 'u1' in {store.where} cannot be read: user state format version 9; this liverec reads"
    with pytest.raises(StorageError, match=re.escape(message)):
        store.get("u1")
    with pytest.raises(StorageError, match=re.escape(message)):
        store.update("u1", _count)


def test_an_update_returning_another_users_state_stores_nothing(store: RedisStateStore) -> None:
    store.put(UserState.empty("u1"))
    with pytest.raises(InvalidInputError, match="an update of user 'u1' returned the state of user 'u2'"):
        store.update("u1", lambda s: UserState.empty("u2"))
    assert store.get("u1") == UserState.empty("u1") and store.user_ids() == ["u1"]


_SECRET = "redis://ann:s3cret@127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("?prefix=x:&colour=red",
         "has the unknown parameter 'colour'; expected prefix, ttl or a redis-py connection parameter such as "
         "socket_timeout"),
        ("?ttl=abc", "has ttl='abc'; expected whole seconds >= 1"),
        ("?ttl=0", "has ttl='0'; expected whole seconds >= 1"),
        ("?ttl=-5", "has ttl='-5'; expected whole seconds >= 1"),
        ("?prefix=", "has prefix=''; expected 1 to 200 characters without spaces or control characters"),
        ("?prefix=a+b", "has prefix='a b'; expected 1 to 200 characters without spaces or control characters"),
        ("?ttl=5&ttl=6", "gives the parameter 'ttl' more than once"),
    ],
)
def test_a_bad_url_is_refused_naming_the_problem_without_its_password(query: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_state_store(_SECRET + query)
    shown = f"redis://ann:***@127.0.0.1:6379/0{query}"
    assert str(caught.value) == f"state store URL {shown!r} {problem}"
    assert (caught.value.field, caught.value.value) == ("state_store", shown)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://ann:s3cret@127.0.0.1:6379/zero", "has the path '/zero'; expected a database number"),
        ("redis://ann:s3cret@127.0.0.1:99999/0", "is not a Redis URL: Port out of range 0-65535"),
        ("redis://ann:s3cret@127.0.0.1/0?socket_timeout=soon",
         "is not supported: Invalid value for 'socket_timeout' in connection URL."),
        # redact() masks only the userinfo; a password in the query is masked too, and refused.
        ("redis://127.0.0.1/0?password=s3cret", "has the unknown parameter 'password'"),
    ],
)
def test_a_malformed_address_or_driver_parameter_is_refused(url: str, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(problem)) as caught:
        open_state_store(url)
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


def test_an_unreachable_redis_fails_fast_on_first_use_with_a_clear_message() -> None:
    started = time.monotonic()
    store = open_state_store("redis://ann:s3cret@127.0.0.1:1/0")  # opening connects to nothing
    assert isinstance(store, RedisStateStore) and time.monotonic() - started < 0.5
    where = "redis state store 'redis://ann:***@127.0.0.1:1/0'"
    calls = [
        ("read the state of user 'u1'", lambda: store.get("u1")),
        ("store the state of user 'u1'", lambda: store.put(UserState.empty("u1"))),
        ("update the state of user 'u1'", lambda: store.update("u1", _count)),
        ("count the states", lambda: len(store)),
        ("clear the states", store.clear),
    ]
    for action, call in calls:
        started = time.monotonic()
        with pytest.raises(StorageError) as caught:
            call()
        assert time.monotonic() - started < 3.0
        message = str(caught.value)
        assert message.startswith(f"cannot {action} in {where}: ") and "127.0.0.1:1" in message
        assert "Connection refused" in message and "s3cret" not in message
    store.close()


def test_a_closed_store_refuses_every_call(store: RedisStateStore) -> None:
    store.put(make_state("u1"))
    store.close()
    store.close()
    calls = [lambda: store.put_if_absent(make_state("u2")), lambda: store.delete("u1"), store.clear,
             lambda: "u1" in store, lambda: 1 in store, lambda: len(store), store.user_ids]
    for call in calls:
        with pytest.raises(StorageError, match=r"state store redis://127\.0\.0\.1:6379/0\?prefix=.* is closed"):
            call()


def test_redis_urls_open_a_redis_state_store_that_bounds_itself(redis_url: str) -> None:
    store = open_state_store(redis_url)
    tls = open_state_store("rediss://cache.example:6380/1?prefix=shop:&ttl=3600")  # connects to nothing yet
    try:
        assert isinstance(store, RedisStateStore) and isinstance(store, StateStore)
        assert (store.url, store.prefix, store.ttl, store.capacity) == (redis_url, _prefix(redis_url), None, None)
        assert isinstance(tls, RedisStateStore)
        assert (tls.url, tls.prefix, tls.ttl) == ("rediss://cache.example:6380/1?prefix=shop:&ttl=3600", "shop:", 3600)
    finally:
        store.close()
        tls.close()
    default = open_state_store("redis://127.0.0.1:6379/0")
    assert isinstance(default, RedisStateStore) and default.prefix == "liverec:"
    default.close()

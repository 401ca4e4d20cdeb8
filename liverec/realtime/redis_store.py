"""A state store in Redis: the live user states every API worker shares, on one machine or many.

URL (``rediss://`` for TLS; redis-py's own query parameters such as ``socket_timeout`` pass
through to it)::

    redis://[user:password@]host:6379/0?prefix=liverec:&ttl=86400

* ``prefix`` — starts every key (default ``liverec:``), so several stores share one Redis.
* ``ttl`` — seconds a state lives after its last write (default: none). This is the eviction
  policy: a state that expired is a miss, and a miss means "rebuild it from the event log".
  Redis's ``maxmemory-policy`` may evict states too, with or without a ``ttl``.

Keys: ``<prefix>state:<user_id>`` holds the state as :mod:`liverec.realtime.codec` bytes, one key
per user, so updates of different users never contend; the set ``<prefix>users`` holds the user
ids, changed in the same ``MULTI``/``EXEC`` as the state. ``update`` runs ``fn`` in this process
(Python cannot run in Lua), so it is optimistic: ``WATCH`` the key, read, ``fn``, write in
``MULTI``/``EXEC``, and start again if another writer changed the key meanwhile.

Because states expire and may be evicted behind the set's back, ``len`` and ``user_ids()`` check
every listed id's key (a Lua script per 1,000 ids, which also drops the ids of states that are
gone): they cost O(users), fine for a stats page, not for a request path. ``in`` is one
``EXISTS``. Every Redis failure is a :class:`~liverec.core.errors.StorageError` naming what was
being done; a Redis that restarted empty only shows misses. Not for Redis Cluster: a state's
``MULTI`` spans its key and the users set, which live in different hash slots.

>>> url = RedisStateUrl("redis://cache:6379/2?prefix=shop:&ttl=86400&socket_timeout=1")
>>> url.client_url, url.prefix, url.ttl
('redis://cache:6379/2?socket_timeout=1', 'shop:', 86400)
>>> try:
...     RedisStateUrl("redis://ann:s3cret@cache/0?ttl=1h")
... except InvalidInputError as error:
...     print(error)
state store URL 'redis://ann:***@cache/0?ttl=1h' has ttl='1h'; expected whole seconds >= 1
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from liverec.core.errors import InvalidInputError, StorageError
from liverec.core.redact import redact
from liverec.realtime.codec import decode_state, encode_state
from liverec.realtime.state import UserState

if TYPE_CHECKING:
    import redis

__all__ = ["DEFAULT_PREFIX", "UPDATE_ATTEMPTS", "RedisStateStore", "RedisStateUrl", "open_url"]

DEFAULT_PREFIX = "liverec:"
UPDATE_ATTEMPTS = 100  # optimistic tries of one update before giving up (each conflict means another writer won)
BATCH = 1000  # ids or keys per round trip when listing or clearing

# Timeouts for the pool's connections (a URL may set its own): a Redis that does not answer fails a
# call within seconds instead of hanging a request. A connection idle for the health check interval
# is PINGed before use, and a connection error is retried once on a fresh connection, so a Redis that
# restarted is reconnected to without restarting the process.
CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0
HEALTH_CHECK_INTERVAL = 10

_OWN_PARAMETERS = ("prefix", "ttl")
# redis-py's URL parameters taken as plain strings (those it converts come from the driver itself).
_STRING_PARAMETERS = ("client_name", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile")
_PREFIX = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")
_DB = re.compile(r"/?(\d{1,5})?/?")
_GLOB = re.compile(rb"([*?\[\]\\])")  # what SCAN's MATCH would read as a pattern
_TTL_LIMIT = 10**10  # seconds; past this Redis would overflow its millisecond clock

# Of a batch of user ids (ARGV), the ones whose state key (KEYS[2..]) exists; the others are removed
# from the users set (KEYS[1]) in the same atomic step, so a put running meanwhile is never undone.
_LIVE_IDS = """
local live = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    live[#live + 1] = ARGV[i - 1]
  else
    redis.call('SREM', KEYS[1], ARGV[i - 1])
  end
end
return live
"""


class RedisStateUrl:
    """A ``redis://`` state store URL taken apart: liverec's ``prefix`` and ``ttl``, and the URL
    redis-py opens (everything else). Raises :class:`InvalidInputError` naming the problem."""

    def __init__(self, url: str) -> None:
        self.shown = _shown(url)

        def bad(why: str) -> InvalidInputError:
            return InvalidInputError(f"state store URL {self.shown!r} {why}", field="state_store", value=self.shown)

        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError as exc:
            raise bad(f"is not a Redis URL: {exc}") from None
        if parts.scheme.lower() not in ("redis", "rediss"):
            raise bad("is not a Redis URL: expected redis:// or rediss://")
        if _DB.fullmatch(parts.path) is None:
            raise bad(f"has the path {parts.path!r}; expected a database number, as in redis://host:6379/0")
        query = parse_qsl(parts.query, keep_blank_values=True)
        known = (*_OWN_PARAMETERS, *_driver_parameters())
        names = [name for name, _ in query]
        for name in names:
            if name not in known:
                raise bad(f"has the unknown parameter {name!r}; expected prefix, ttl or a redis-py connection "
                          "parameter such as socket_timeout")
            if names.count(name) > 1:
                raise bad(f"gives the parameter {name!r} more than once")
        own = {name: value for name, value in query if name in _OWN_PARAMETERS}
        self.url = url
        self.prefix = own.get("prefix", DEFAULT_PREFIX)
        if _PREFIX.fullmatch(self.prefix) is None:
            raise bad(f"has prefix={self.prefix!r}; expected 1 to 200 characters without spaces or control characters")
        ttl = own.get("ttl")
        if ttl is not None and (not ttl.isascii() or not ttl.isdigit() or not 1 <= int(ttl) <= _TTL_LIMIT):
            raise bad(f"has ttl={ttl!r}; expected whole seconds >= 1")
        self.ttl = None if ttl is None else int(ttl)
        passed = [(name, value) for name, value in query if name not in _OWN_PARAMETERS]
        self.client_url = urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, urlencode(passed), ""))


def _shown(url: str) -> str:
    """``url`` for a message: its password masked, in the userinfo or in a query parameter."""
    return re.sub(r"(?i)([?&][^=&]*password=)[^&#]*", r"\1***", redact(url))


def _driver() -> ModuleType:
    try:
        import redis
    except ImportError as exc:  # an optional extra: say how to get it
        raise StorageError(f"the Redis state store needs redis-py ({exc}); install liverec[redis]") from None
    return redis


def _driver_parameters() -> tuple[str, ...]:
    try:
        from redis.connection import URL_QUERY_ARGUMENT_PARSERS
    except ImportError:
        return _STRING_PARAMETERS
    return (*URL_QUERY_ARGUMENT_PARSERS, *_STRING_PARAMETERS)


class RedisStateStore:
    """User states in Redis, shared by every process that opens the same URL (see the module docstring).

    Opening connects to nothing: the first call does, and fails with a :class:`StorageError` if
    Redis does not answer. The store is safe to use from many threads (redis-py's pool hands each
    call a connection of its own).

    Parameters
    ----------
    url
        ``redis://[user:password@]host:port/db?prefix=liverec:&ttl=SECONDS``; kept as ``url``.
    """

    capacity = None  # Redis bounds itself (ttl, maxmemory), so the engine never holds states back for room
    shared = True  # every worker's events are in the states it holds

    def __init__(self, url: str) -> None:
        parsed = RedisStateUrl(url)
        driver = _driver()
        self.url = url
        self.prefix = parsed.prefix
        self.ttl = parsed.ttl
        self.where = f"redis state store {parsed.shown!r}"
        self._errors: tuple[type[BaseException], ...] = (driver.RedisError,)
        self._watch_error: type[BaseException] = driver.WatchError
        self._unsure: tuple[type[BaseException], ...] = (driver.ConnectionError, driver.TimeoutError)
        retry = driver.retry.Retry(driver.backoff.ExponentialWithJitterBackoff(base=0.01, cap=0.1), 1,
                                   supported_errors=(driver.ConnectionError,))
        try:
            self._client: redis.Redis = driver.Redis.from_url(
                parsed.client_url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT,
                health_check_interval=HEALTH_CHECK_INTERVAL, retry=retry,
            )  # fmt: skip
        except ValueError as exc:  # a driver parameter's value it cannot read
            raise InvalidInputError(f"state store URL {parsed.shown!r} is not supported: {exc}",
                                    field="state_store", value=parsed.shown) from None
        self._users = self._bytes(self.prefix) + b"users"
        self._states = self._bytes(self.prefix) + b"state:"
        self._live_ids = self._client.register_script(_LIVE_IDS)
        self._random = random.Random()  # jitter between update attempts only: no result depends on it
        self._closed = False
        self._close_lock = threading.Lock()

    # --- the StateStore contract ---------------------------------------------------------------

    def get(self, user_id: str) -> UserState | None:
        with self._action(f"read the state of user {user_id!r}"):
            data = self._client.get(self._key(user_id))
        return None if data is None else self._decode(user_id, data)

    def put(self, state: UserState) -> None:
        data = encode_state(state)
        with self._action(f"store the state of user {state.user_id!r}"), self._client.pipeline() as pipe:
            pipe.set(self._key(state.user_id), data, ex=self.ttl)
            pipe.sadd(self._users, self._bytes(state.user_id))
            pipe.execute()

    def put_if_absent(self, state: UserState) -> bool:
        """Store ``state`` only if its user has none; whether it was stored.

        Two processes rebuilding the same user's state from the log this way never overwrite each
        other, nor a state that events were applied to meanwhile.
        """
        data = encode_state(state)
        with self._action(f"store the state of user {state.user_id!r}"), self._client.pipeline() as pipe:
            pipe.set(self._key(state.user_id), data, ex=self.ttl, nx=True)
            pipe.sadd(self._users, self._bytes(state.user_id))
            stored, _ = pipe.execute()
        return bool(stored)

    def update(self, user_id: str, fn: Callable[[UserState], UserState]) -> bool:
        """Replace the user's state ``s`` by ``fn(s)``; False, without calling ``fn``, if none is stored.

        ``fn`` gets a state decoded for this attempt, so what an attempt that lost a conflict changed
        is dropped with it. Raises :class:`StorageError` after :data:`UPDATE_ATTEMPTS` conflicts, and
        when Redis failed while committing: the update may then have been stored or not, so the
        state is dropped (best effort) to be rebuilt from the event log rather than miss or repeat it.
        """
        key = self._key(user_id)
        action = f"update the state of user {user_id!r}"
        for attempt in range(UPDATE_ATTEMPTS):
            if attempt:  # jittered exponential backoff, so conflicting writers spread out
                time.sleep(self._random.uniform(0.0, min(0.05, 0.0005 * 2**attempt)))
            with self._action(action), self._client.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    data = pipe.get(key)
                except self._watch_error:  # the connection died while watching: nothing was written
                    continue
                if data is None:
                    return False
                updated = fn(self._decode(user_id, data))
                if updated.user_id != user_id:
                    raise InvalidInputError(
                        f"an update of user {user_id!r} returned the state of user {updated.user_id!r}",
                        field="user_id",
                        value=updated.user_id,
                    )
                encoded = encode_state(updated)
                pipe.multi()
                pipe.set(key, encoded, ex=self.ttl)
                pipe.sadd(self._users, self._bytes(user_id))
                try:
                    pipe.execute()
                except self._watch_error as exc:
                    if not isinstance(exc.__context__, self._unsure):
                        continue  # another writer changed the state first: start again from its state
                    self._drop_after_unsure_commit(user_id, exc.__context__)
                except self._unsure as exc:
                    self._drop_after_unsure_commit(user_id, exc)
                return True
        raise StorageError(f"cannot {action} in {self.where}: {UPDATE_ATTEMPTS} attempts all conflicted "
                           "with other writers of the same user")

    def delete(self, user_id: str) -> bool:
        with self._action(f"delete the state of user {user_id!r}"), self._client.pipeline() as pipe:
            pipe.delete(self._key(user_id))
            pipe.srem(self._users, self._bytes(user_id))
            deleted, _ = pipe.execute()
        return bool(deleted)

    def clear(self) -> None:
        """Delete this prefix's states (``SCAN`` and ``UNLINK``; other prefixes and databases keep theirs).

        The users set goes first, so a put running meanwhile leaves at worst an id without a state,
        which the next listing drops, never a state no listing counts.
        """
        with self._action("clear the states"):
            self._client.unlink(self._users)
            pattern = _GLOB.sub(rb"\\\1", self._states) + b"*"
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=pattern, count=BATCH):
                batch.append(key)
                if len(batch) == BATCH:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)

    def __contains__(self, user_id: object) -> bool:
        if not isinstance(user_id, str):
            self._check_open()
            return False
        with self._action(f"look up the state of user {user_id!r}"):
            return bool(self._client.exists(self._key(user_id)))

    def __len__(self) -> int:
        return sum(1 for _ in self._iter_user_ids("count the states"))

    def user_ids(self) -> list[str]:
        """The users whose state is held; O(users) round trips / 1,000 (see the module docstring)."""
        return list(self._iter_user_ids("list the users"))

    def close(self) -> None:
        """Release the pool's connections; later calls raise :class:`StorageError`. Safe to call again."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._client.close()

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _bytes(text: str) -> bytes:
        # A lone surrogate cannot be UTF-8, but a key made of it must still miss, not fail.
        return text.encode("utf-8", "surrogatepass")

    def _key(self, user_id: str) -> bytes:
        return self._states + self._bytes(user_id)

    def _decode(self, user_id: str, data: bytes | str) -> UserState:
        assert isinstance(data, bytes)  # redis-py types a reply bytes | str; this client never decodes replies
        try:
            return decode_state(data)
        except StorageError as exc:
            raise StorageError(f"the state of user {user_id!r} in {self.where} cannot be read: {exc}") from None

    def _iter_user_ids(self, action: str) -> Iterator[str]:
        """The ids in the users set whose state still exists, dropping the others from the set."""
        with self._action(action):
            seen: set[bytes] = set()  # SSCAN may return an id twice
            batch: list[bytes] = []
            for member in self._client.sscan_iter(self._users, count=BATCH):
                if member not in seen:
                    seen.add(member)
                    batch.append(member)
                if len(batch) == BATCH:
                    yield from self._live(batch)
                    batch = []
            if batch:
                yield from self._live(batch)

    def _live(self, members: list[bytes]) -> Iterator[str]:
        live = self._live_ids(keys=[self._users, *(self._states + m for m in members)], args=members)
        for member in live:
            yield member.decode("utf-8", "surrogatepass")

    def _drop_after_unsure_commit(self, user_id: str, error: BaseException) -> NoReturn:
        """Redis failed during an update's ``EXEC``: whether it applied is unknown, so neither the old
        state nor the new one is sure to hold each event once. Drop it; the next read rebuilds it."""
        try:
            with self._client.pipeline() as pipe:
                pipe.delete(self._key(user_id))
                pipe.srem(self._users, self._bytes(user_id))
                pipe.execute()
        except self._errors as exc:
            raise StorageError(
                f"cannot update the state of user {user_id!r} in {self.where}: {redact(str(error))}; whether it "
                f"was stored is unknown, and dropping the state for a rebuild failed too: {redact(str(exc))}"
            ) from None
        raise StorageError(
            f"cannot update the state of user {user_id!r} in {self.where}: {redact(str(error))}; whether it "
            "was stored is unknown, so the state was dropped and will be rebuilt from the event log"
        ) from None

    @contextmanager
    def _action(self, action: str) -> Iterator[None]:
        """Check the store is open, and turn every Redis error raised inside into a StorageError."""
        self._check_open()
        try:
            yield
        except self._errors as exc:
            raise StorageError(f"cannot {action} in {self.where}: {redact(str(exc))}") from None

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"state store {_shown(self.url)} is closed")


def open_url(url: str, rest: str) -> RedisStateStore:
    """The opener :func:`~liverec.realtime.store.register_state_store` takes for ``redis://`` and
    ``rediss://``; ``rest`` (what follows the scheme) is not needed: the whole URL is parsed."""
    return RedisStateStore(url)

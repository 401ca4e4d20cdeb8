"""Where user states live: the :class:`StateStore` contract, the in-process store, and URLs.

``open_state_store(url)`` is the one place a state store is chosen, by the URL's scheme; a
backend registers its scheme once with :func:`register_state_store`. Known schemes:

* ``memory://[?capacity=N]`` — :class:`MemoryStateStore`, in this process (the default);
* ``redis://[user:password@]host:port/db?prefix=liverec:&ttl=SECONDS`` (``rediss://`` for TLS) —
  :class:`~liverec.realtime.redis_store.RedisStateStore`, shared by every worker, keeping states
  as :mod:`liverec.realtime.codec` bytes (needs ``liverec[redis]``).

>>> store = open_state_store("memory://")
>>> store.url, len(store)
('memory://', 0)
>>> try:
...     open_state_store("memcached://localhost")
... except InvalidInputError as error:
...     print(error)
state store URL 'memcached://localhost' is not supported: unknown scheme 'memcached'; known: memory://, redis://, rediss://
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from liverec.core.errors import InvalidInputError, StorageError
from liverec.core.redact import redact
from liverec.realtime.state import UserState

# States held in memory by default. A state keeps a text vector per recent action and per interest:
# ~106 KB of RSS each (benchmarks/scale.py, 512-d encoder, 1M-event world; 10.7 KB in its byte form),
# so a million-user log must not build a million of them: 50,000 cost ~5 GB.
DEFAULT_CAPACITY = 50_000

__all__ = ["DEFAULT_CAPACITY", "MemoryStateStore", "StateStore", "check_state_store_url", "open_state_store",
           "register_state_store"]


@runtime_checkable
class StateStore(Protocol):
    """Holds one :class:`UserState` per user id; a miss means "rebuild it from the event log".

    The contract every backend keeps (:class:`liverec.testing.state_contract.StateContract`
    checks it):

    * ``get(user_id)`` returns a copy the caller owns: changing it never changes the store.
      None means the store holds no state for the user.
    * ``put(state)`` stores ``state`` under ``state.user_id``, replacing any. The store takes
      ownership of the object: the caller must not use it afterwards.
    * ``put_if_absent(state)`` stores ``state`` only if the user has none, atomically, and says
      whether it did (a rebuilt state must not overwrite one another process stored meanwhile).
    * ``update(user_id, fn)`` atomically replaces the stored state ``s`` by ``fn(s)`` and returns
      True; it returns False, without calling ``fn``, when the user has no stored state. ``fn``
      may change its argument in place and must return the state to store (of the same user).
      No other ``update``, ``put`` or ``delete`` of the same user interleaves with it, so no
      update is lost. A store that retries on conflict (Redis WATCH/MULTI) may call ``fn`` more
      than once, so ``fn`` must have no other side effects. When ``fn`` raises, the error
      propagates and nothing new is stored, but a store that hands ``fn`` the stored object
      itself (:class:`MemoryStateStore`) keeps what ``fn`` changed before raising: check first,
      then change.
    * ``delete(user_id)`` returns whether a state was held; ``clear()`` drops every state.
    * ``user_id in store`` and ``len(store)`` count the states held; ``user_ids()`` lists whose
      (a point-in-time list: a shared store may scan for it).
    * ``close()`` releases the backend and may be called again; a closed store refuses
      further use with :class:`~liverec.core.errors.StorageError`.
    * ``url`` names the store (what :func:`open_state_store` opened it from).
    * ``shared`` says whether other processes read and update the same states (Redis): events
      another process applied are then in them; a store of this process alone must rebuild them.
    """

    url: str
    shared: bool

    def get(self, user_id: str) -> UserState | None: ...

    def put(self, state: UserState) -> None: ...

    def put_if_absent(self, state: UserState) -> bool: ...

    def update(self, user_id: str, fn: Callable[[UserState], UserState]) -> bool: ...

    def delete(self, user_id: str) -> bool: ...

    def clear(self) -> None: ...

    def __contains__(self, user_id: object) -> bool: ...

    def __len__(self) -> int: ...

    def user_ids(self) -> list[str]: ...

    def close(self) -> None: ...


class MemoryStateStore:
    """States in a dict in this process, behind one lock (the single-machine default).

    ``update`` applies ``fn`` to the stored object itself, under the lock: it runs on every
    event, and a copy costs O(state). ``get`` copies under the same lock, so a reader never
    sees an update half done.

    ``capacity`` bounds the states held: past it, the least recently used state is dropped (its
    user's next read rebuilds it from the log, as after a restart), so memory stays bounded however
    many users the log holds. None holds every state.
    """

    shared = False  # this process's alone: what another process applies is not in its states

    def __init__(self, capacity: int | None = DEFAULT_CAPACITY) -> None:
        if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1):
            raise InvalidInputError(f"state store capacity must be an integer >= 1, got {capacity!r}",
                                    field="capacity", value=capacity)
        self.url = "memory://" if capacity == DEFAULT_CAPACITY else f"memory://?capacity={capacity or 0}"
        self.capacity = capacity
        self.evicted = 0  # states dropped for room since the store opened
        self._states: OrderedDict[str, UserState] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    def get(self, user_id: str) -> UserState | None:
        with self._lock:
            self._check_open()
            state = self._states.get(user_id)
            if state is None:
                return None
            self._states.move_to_end(user_id)
            return state.copy()

    def put(self, state: UserState) -> None:
        with self._lock:
            self._check_open()
            self._put(state)

    def _put(self, state: UserState) -> None:
        self._states[state.user_id] = state
        self._states.move_to_end(state.user_id)
        if self.capacity is not None:
            while len(self._states) > self.capacity:
                self._states.popitem(last=False)
                self.evicted += 1

    def put_if_absent(self, state: UserState) -> bool:
        with self._lock:
            self._check_open()
            if state.user_id in self._states:
                return False
            self._put(state)
            return True

    def update(self, user_id: str, fn: Callable[[UserState], UserState]) -> bool:
        with self._lock:
            self._check_open()
            state = self._states.get(user_id)
            if state is None:
                return False
            updated = fn(state)
            if updated.user_id != user_id:
                raise InvalidInputError(
                    f"an update of user {user_id!r} returned the state of user {updated.user_id!r}",
                    field="user_id",
                    value=updated.user_id,
                )
            self._states[user_id] = updated
            self._states.move_to_end(user_id)
            return True

    def delete(self, user_id: str) -> bool:
        with self._lock:
            self._check_open()
            return self._states.pop(user_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._check_open()
            self._states.clear()

    def __contains__(self, user_id: object) -> bool:
        self._check_open()
        return user_id in self._states  # one dict lookup: atomic without the lock

    def __len__(self) -> int:
        self._check_open()
        return len(self._states)

    def user_ids(self) -> list[str]:
        with self._lock:
            self._check_open()
            return list(self._states)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._states.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"state store {self.url} is closed")


_MEMORY = re.compile(r"(?:\?capacity=(\d{1,12}))?")

# An opener gets the whole URL and what follows "scheme://".
StateStoreOpener = Callable[[str, str], StateStore]

_OPENERS: dict[str, StateStoreOpener] = {}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")  # RFC 3986's scheme, lower case (how URLs are matched)


def register_state_store(scheme: str, opener: StateStoreOpener) -> None:
    """Make :func:`open_state_store` open URLs ``scheme://…`` with ``opener(url, rest)``.

    ``rest`` is what follows ``scheme://``. Registering a scheme again replaces its opener.
    """
    if not isinstance(scheme, str) or _SCHEME.fullmatch(scheme) is None:
        raise InvalidInputError(
            f"state store scheme {scheme!r} is not a lower-case URL scheme like 'redis'", field="scheme", value=scheme
        )
    _OPENERS[scheme] = opener


def open_state_store(url: str = "memory://") -> StateStore:
    """Open the state store ``url`` names; raises :class:`InvalidInputError` for an unknown or malformed URL."""
    opener, rest = _opener(url)
    return opener(url, rest)


def check_state_store_url(url: str) -> None:
    """Raise what :func:`open_state_store` would for a URL it cannot open, without opening anything."""
    _opener(url)


def _opener(url: str) -> tuple[StateStoreOpener, str]:
    known = ", ".join(f"{scheme}://" for scheme in _OPENERS)
    scheme, separator, rest = url.partition("://") if isinstance(url, str) else ("", "", "")
    shown = redact(url) if isinstance(url, str) else url  # a URL's password is never repeated
    if not separator or not scheme:
        raise InvalidInputError(
            f"state store URL {shown!r} is not supported: it has no scheme; known: {known}",
            field="state_store",
            value=shown,
        )
    opener = _OPENERS.get(scheme.lower())
    if opener is None:
        raise InvalidInputError(
            f"state store URL {shown!r} is not supported: unknown scheme {scheme!r}; known: {known}",
            field="state_store",
            value=shown,
        )
    return opener, rest


def _open_memory(url: str, rest: str) -> StateStore:
    match = _MEMORY.fullmatch(rest)
    if match is None:
        raise InvalidInputError(
            f"state store URL {redact(url)!r} is not supported: memory:// takes nothing after the scheme "
            "but an optional ?capacity=N (states held; 0 = no bound)",
            field="state_store",
            value=redact(url),
        )
    capacity = DEFAULT_CAPACITY if match.group(1) is None else int(match.group(1)) or None
    return MemoryStateStore(capacity)


def _open_redis(url: str, rest: str) -> StateStore:
    # Imported on use, so `import liverec` never imports redis-py (an optional extra).
    from liverec.realtime.redis_store import open_url

    return open_url(url, rest)


register_state_store("memory", _open_memory)
register_state_store("redis", _open_redis)
register_state_store("rediss", _open_redis)

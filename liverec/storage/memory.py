"""An in-memory store: the reference backend for tests, demos and ``memory://``.

Nothing survives the process. It keeps exactly the contract of every other backend (the same
suite, :mod:`liverec.testing.store_contract`, runs against it), including that items come back
as they would from JSON and vectors as float32, so code tested against it behaves the same on disk.

Its feedback log and key store are the in-memory ones too (:class:`MemoryFeedbackLog`,
:class:`MemoryKeyStore`), unless given a file for them.

>>> store = MemoryStore()
>>> store.events.append([Event.create("u1", "view", "i1", timestamp=1.0, event_id="e1")])
1
>>> [e.item_id for e in store.events.by_user("u1")]
['i1']
"""

from __future__ import annotations

import bisect
import math
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from liverec.core.errors import NotFoundError, StorageError
from liverec.core.types import Event, Item
from liverec.storage.base import Catalog, EventLog, FeedbackLog, KeyStore, SnapshotIndex, StoreLocation, VectorCache
from liverec.storage.codecs import as_vector, check_events, decode_item, encode_item
from liverec.storage.memory_feedback import MemoryFeedbackLog
from liverec.storage.memory_keys import MemoryKeyStore
from liverec.storage.quarantine import Quarantine, Quarantined, check_kind, new_entries


class _State:
    """The lock and the open/closed flag the three parts of one store share."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed = False

    @contextmanager
    def guard(self) -> Iterator[None]:
        with self.lock:
            if self.closed:
                raise StorageError("the memory store is closed")
            yield


# An event's place in time order: timestamp, then arrival number. Arrival numbers are unique,
# so tuples never compare the events themselves.
_Entry = tuple[float, int, Event]


class MemoryEventLog:
    """Events in time order, indexed by user."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._arrivals = 0
        self._timeline: list[_Entry] = []
        self._by_user: dict[str, list[_Entry]] = {}
        self._by_id: dict[str, Event] = {}
        self._erasures = 0
        self._erased: dict[str, int] = {}  # user id -> the erasure epoch it was last erased at

    def append(self, events: Sequence[Event]) -> int:
        batch = check_events(events)
        with self._state.guard():
            new = 0
            for event in batch:
                if event.event_id in self._by_id:
                    continue
                self._by_id[event.event_id] = event
                self._arrivals += 1
                entry = (event.timestamp, self._arrivals, event)
                # In-order arrival (the common case) lands at the end, so insort stays cheap.
                bisect.insort(self._timeline, entry)
                bisect.insort(self._by_user.setdefault(event.user_id, []), entry)
                new += 1
            return new

    def existing(self, event_ids: Sequence[str]) -> set[str]:
        with self._state.guard():
            return {i for i in event_ids if i in self._by_id}

    def get_many(self, event_ids: Iterable[str]) -> dict[str, Event]:
        with self._state.guard():
            return {i: self._by_id[i] for i in event_ids if i in self._by_id}

    def by_user(self, user_id: str) -> list[Event]:
        with self._state.guard():
            return [entry[2] for entry in self._by_user.get(user_id, ())]

    def between(self, start: float, end: float) -> Iterator[Event]:
        """Events with ``start <= timestamp < end``, as they were when the call was made."""
        with self._state.guard():
            low = bisect.bisect_left(self._timeline, start, key=_timestamp)
            high = bisect.bisect_left(self._timeline, end, key=_timestamp)
            selected = [entry[2] for entry in self._timeline[low:high]] if low < high else []
        return iter(selected)

    def all(self, through: int | None = None) -> Iterator[Event]:
        """Every event (stored by ``through``), as they were when the call was made."""
        with self._state.guard():
            last = self._arrivals if through is None else through
            snapshot = [entry[2] for entry in self._timeline if entry[1] <= last]
        return iter(snapshot)

    def position(self) -> int:
        with self._state.guard():
            return self._arrivals

    def arrived_after(self, position: int, until: float = math.inf) -> Iterator[Event]:
        with self._state.guard():
            late = sorted((entry for entry in self._timeline if entry[1] > position and entry[0] <= until),
                          key=_arrival)
        return iter([entry[2] for entry in late])

    def delete_user(self, user_id: str) -> int:
        with self._state.guard():
            removed = self._by_user.pop(user_id, [])
            if removed:
                self._timeline = [entry for entry in self._timeline if entry[2].user_id != user_id]
                # Forgetting the ids matches a database, where deleted rows no longer block a re-insert.
                for entry in removed:
                    del self._by_id[entry[2].event_id]
                self._erasures += 1
                self._erased[user_id] = self._erasures
            return len(removed)

    def erasure_epoch(self) -> int:
        with self._state.guard():
            return self._erasures

    def erased_since(self, epoch: int, user_ids: Iterable[str]) -> set[str]:
        with self._state.guard():
            erased = self._erased
            return {user_id for user_id in user_ids if erased.get(user_id, 0) > epoch}

    def count(self) -> int:
        with self._state.guard():
            return len(self._timeline)

    def users(self) -> list[str]:
        """User ids with at least one event, sorted."""
        with self._state.guard():
            return sorted(self._by_user)


def _timestamp(entry: _Entry) -> float:
    return entry[0]


def _arrival(entry: _Entry) -> int:
    return entry[1]


class MemoryCatalog:
    """Items in first-insertion order; an upsert replaces content in place."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._items: dict[str, Item] = {}

    def upsert(self, items: Sequence[Item]) -> int:
        # Stored as JSON would return them, so attributes look the same as from any other backend.
        decoded = [decode_item(encode_item(item)) for item in items]
        with self._state.guard():
            for item in decoded:
                self._items[item.item_id] = item
            return len(decoded)

    def get(self, item_id: str) -> Item:
        with self._state.guard():
            item = self._items.get(item_id)
        if item is None:
            raise NotFoundError(f"item {item_id!r} is not in the catalog", kind="item", key=item_id)
        return item

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Item]:
        with self._state.guard():
            return {item_id: self._items[item_id] for item_id in item_ids if item_id in self._items}

    def all(self) -> Iterator[Item]:
        """Every item, as they were when the call was made."""
        with self._state.guard():
            snapshot = list(self._items.values())
        return iter(snapshot)

    def delete(self, item_id: str) -> bool:
        with self._state.guard():
            return self._items.pop(item_id, None) is not None

    def count(self) -> int:
        with self._state.guard():
            return len(self._items)


class MemoryVectorCache:
    """Float32 vectors keyed by (encoder, key); callers get copies, so they cannot change the cache."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self._salt = os.urandom(32)

    @property
    def key_salt(self) -> bytes:
        return self._salt

    def get_many(self, encoder: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        with self._state.guard():
            found = {key: self._vectors.get((encoder, key)) for key in keys}
        return {key: vector.copy() for key, vector in found.items() if vector is not None}

    def put_many(self, encoder: str, vectors: dict[str, np.ndarray]) -> None:
        checked = {key: as_vector(encoder, key, vector).copy() for key, vector in vectors.items()}
        with self._state.guard():
            for key, vector in checked.items():
                self._vectors[(encoder, key)] = vector

    def delete(self, keys: Sequence[str]) -> int:
        wanted = set(keys)
        with self._state.guard():
            gone = [pair for pair in self._vectors if pair[1] in wanted]
            for pair in gone:
                del self._vectors[pair]
        return len(gone)


class MemoryQuarantine:
    """Quarantined users and events, by (kind, key), in the order they were quarantined."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._held: dict[tuple[str, str], Quarantined] = {}
        self._version = 0

    def add(self, entries: Sequence[Quarantined]) -> int:
        with self._state.guard():
            new = new_entries(self._held, entries)
            for entry in new:
                self._held[entry.kind, entry.key] = entry
            self._version += bool(new)
            return len(new)

    def release(self, kind: str, key: str) -> Quarantined | None:
        with self._state.guard():
            entry = self._held.pop((check_kind(kind), key), None)
            self._version += entry is not None
            return entry

    def entries(self, kind: str | None = None) -> list[Quarantined]:
        with self._state.guard():
            return [e for e in self._held.values() if kind is None or e.kind == check_kind(kind)]

    def keys(self, kind: str) -> set[str]:
        return {e.key for e in self.entries(kind)}

    def forget_user(self, user_id: str) -> int:
        with self._state.guard():
            gone = [k for k, e in self._held.items() if e.user_id == user_id]
            for k in gone:
                del self._held[k]
            self._version += bool(gone)
            return len(gone)

    def version(self) -> int:
        with self._state.guard():
            return self._version


def locate_url(url: str, rest: str) -> StoreLocation:
    """Where a ``memory://`` store lives: nowhere on disk, and in no other process."""
    return StoreLocation(url=url, directory=None, name="memory", shared=False)


def open_url(url: str, rest: str) -> MemoryStore:
    """The store a ``memory://`` URL names: a new, empty one."""
    return MemoryStore(url)


class MemoryStore:
    """Events, items and vectors held in this process; thread-safe behind one lock."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._state = _State()
        self.events: EventLog = MemoryEventLog(self._state)
        self.catalog: Catalog = MemoryCatalog(self._state)
        self.vectors: VectorCache = MemoryVectorCache(self._state)
        self.quarantine: Quarantine = MemoryQuarantine(self._state)
        self.snapshots: SnapshotIndex | None = None  # one process or one machine: CURRENT suffices
        self._keys = MemoryKeyStore()
        self._location = locate_url(url, "")

    @property
    def location(self) -> StoreLocation:
        return self._location

    def feedback_log(self, path: Path | None = None) -> FeedbackLog:
        """A new in-memory feedback log, or the SQLite one in the file ``path``."""
        if path is None:
            return MemoryFeedbackLog()
        from liverec.storage.sqlite_feedback import SqliteFeedbackLog

        return SqliteFeedbackLog(path)

    def key_store(self, path: Path | None = None) -> KeyStore:
        """This store's in-memory keys (the same object on every call), or the SQLite keys in ``path``."""
        if path is None:
            return self._keys
        from liverec.storage.sqlite_keys import SqliteKeyStore

        return SqliteKeyStore(path)

    def checkpoint(self) -> None:
        """Nothing to do: a deleted event or vector is gone with its last reference."""

    def close(self) -> None:
        """Any later call raises :class:`StorageError`; closing twice is harmless."""
        with self._state.lock:
            self._state.closed = True

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"

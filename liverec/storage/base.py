"""Storage contracts: the event log (source of truth), the item catalog and the embedding cache.

Every backend implements :class:`Store`; the same contract suite
(``liverec.testing.store_contract``) runs against each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from liverec.core.types import Event, Item


@runtime_checkable
class EventLog(Protocol):
    """Append-only, durable, idempotent-by-event_id log of user events."""

    def append(self, events: Sequence[Event]) -> int:
        """Store ``events`` atomically; return how many were new.

        Returns only after a durable commit. An event whose ``event_id`` is already stored is
        skipped (a retry stores nothing twice); all or none of the new ones are stored.
        """
        ...

    def existing(self, event_ids: Sequence[str]) -> set[str]:
        """The ids among ``event_ids`` that are already stored (to apply only new events)."""
        ...

    def by_user(self, user_id: str) -> list[Event]:
        """The user's events in time order (timestamp, then arrival)."""
        ...

    def between(self, start: float, end: float) -> Iterator[Event]:
        """Events with ``start <= timestamp < end`` in time order."""
        ...

    def all(self) -> Iterator[Event]:
        """Every event in time order."""
        ...

    def delete_user(self, user_id: str) -> int:
        """Erase every event of the user; return how many were removed."""
        ...

    def count(self) -> int: ...

    def users(self) -> list[str]:
        """Every user id that has at least one event."""
        ...


@runtime_checkable
class Catalog(Protocol):
    """The items, upserted by ``item_id``."""

    def upsert(self, items: Sequence[Item]) -> int:
        """Insert or replace ``items`` atomically; return how many were written."""
        ...

    def get(self, item_id: str) -> Item:
        """The item; raises :class:`~liverec.core.errors.NotFoundError` if unknown."""
        ...

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Item]:
        """The known items among ``item_ids`` (unknown ids are left out)."""
        ...

    def all(self) -> Iterator[Item]:
        """Every item, in insertion order."""
        ...

    def delete(self, item_id: str) -> bool:
        """Remove the item; return whether it existed."""
        ...

    def count(self) -> int: ...


@runtime_checkable
class VectorCache(Protocol):
    """Text embeddings keyed by (encoder name, text hash) so unchanged text is never re-encoded."""

    def get_many(self, encoder: str, keys: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_many(self, encoder: str, vectors: dict[str, np.ndarray]) -> None: ...


@runtime_checkable
class Store(Protocol):
    """What ``open_store(url)`` returns."""

    url: str
    events: EventLog
    catalog: Catalog
    vectors: VectorCache

    @property
    def root(self) -> Path | None:
        """The directory the store lives in (None for memory://); snapshots go beside it."""
        ...

    def close(self) -> None: ...

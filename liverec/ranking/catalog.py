"""The in-memory view of the catalog that ranking reads on every request.

Item metadata (title, categories, availability, interest tags) lives here; item text vectors
live in the live :class:`~liverec.models.content.ContentModel`. Both are updated the moment
items are ingested, so a new item is recommendable without retraining.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from liverec.core.errors import NotFoundError
from liverec.core.types import Item


class ItemTable:
    """Items by id with their interest tags; thread-safe for one writer and many readers."""

    def __init__(self) -> None:
        self._items: dict[str, Item] = {}
        self._tags: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def upsert(self, items: Iterable[Item], tags: Mapping[str, tuple[str, ...]]) -> None:
        with self._lock:
            for item in items:
                self._items[item.item_id] = item
                self._tags[item.item_id] = tags.get(item.item_id, item.tags)

    def remove(self, item_id: str) -> bool:
        with self._lock:
            self._tags.pop(item_id, None)
            return self._items.pop(item_id, None) is not None

    def get(self, item_id: str) -> Item:
        try:
            return self._items[item_id]
        except KeyError:
            raise NotFoundError(f"item {item_id!r} is not in the catalog", kind="item", key=item_id) from None

    def find(self, item_id: str) -> Item | None:
        return self._items.get(item_id)

    def tags(self, item_id: str) -> tuple[str, ...]:
        return self._tags.get(item_id, ())

    def title(self, item_id: str) -> str:
        item = self._items.get(item_id)
        return item.title if item is not None else item_id

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> list[str]:
        return list(self._items)

"""The live catalog: what ranking reads about items on every request, changed the moment items are ingested.

Item metadata (title, categories, availability) and interest tags live in an :class:`ItemTable`;
item text vectors live in a :class:`~liverec.models.content.ContentModel` (the text index), in
the :class:`~liverec.text.space.TextSpace` being served. :class:`LiveCatalog` keeps the three
and the store's catalog in step, so a new item is recommendable without retraining.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.core.types import Item
from liverec.models.base import TrainingData
from liverec.models.content import ContentModel
from liverec.storage.base import Catalog
from liverec.text.centering import LanguageCentering
from liverec.text.enrich import enrich_many, interest_tags, item_language
from liverec.text.space import TextSpace

__all__ = ["CHUNK", "ItemArrays", "ItemLookup", "ItemTable", "LiveCatalog"]

CHUNK = 512  # items written per step under the lock, so events keep flowing during a large upsert


class ItemLookup(Protocol):
    """What ranking and explanations read about items (an :class:`ItemTable` or the live catalog)."""

    def find(self, item_id: str) -> Item | None: ...

    def get(self, item_id: str) -> Item: ...

    def tags(self, item_id: str) -> tuple[str, ...]: ...

    def title(self, item_id: str) -> str: ...

    def __contains__(self, item_id: object) -> bool: ...

    def arrays(self) -> ItemArrays: ...


@dataclass(frozen=True)
class ItemArrays:
    """The items as arrays, so features of a request's candidates are gathers, not a lookup per item.

    Row ``rows[item_id]`` holds an item; the last row stands for an item not in the table: no
    creation time (0), no category and no tags. Categories and tags are integer codes.
    """

    version: int  # the table's, when these were read from it
    rows: dict[str, int]
    created_at: np.ndarray  # float64 [items + 1]
    category: np.ndarray  # int64 [items + 1]: the code of the item's first category; -1: none
    categories: dict[str, int]  # category -> code
    tags: np.ndarray  # int64 [items + 1, most tags of an item]: see _tag_matrix
    tag_codes: dict[str, int]  # tag -> code

    @classmethod
    def build(cls, version: int, items: Sequence[Item], tags: Sequence[tuple[str, ...]]) -> ItemArrays:
        # Maps and comprehensions over the whole catalog, no statement per item: this runs after every write.
        n = len(items)
        first = [c[0] if c else None for c in map(operator.attrgetter("categories"), items)]
        categories = _codes(c for c in first if c is not None)
        tag_codes = _codes(itertools.chain.from_iterable(tags))
        created_at = np.fromiter(map(operator.attrgetter("created_at"), items), dtype=np.float64, count=n)
        category = np.array([categories[c] if c is not None else -1 for c in first], dtype=np.int64)
        arrays = cls(version, dict(zip(map(operator.attrgetter("item_id"), items), range(n), strict=True)),
                     np.append(created_at, 0.0), np.append(category, -1), categories, _tag_matrix(tags, tag_codes),
                     tag_codes)
        for shared in (arrays.created_at, arrays.category, arrays.tags):
            shared.flags.writeable = False  # every request reads the same arrays
        return arrays

    def rows_of(self, item_ids: Sequence[str]) -> np.ndarray:
        """The items' rows (the last row for an item not in the table)."""
        missing = len(self.created_at) - 1
        return np.fromiter(map(self.rows.get, item_ids, itertools.repeat(missing)), dtype=np.int64,
                           count=len(item_ids))


def _codes(names: Iterable[str]) -> dict[str, int]:
    """0, 1, … for the distinct names, in first-seen order."""
    return {name: code for code, name in enumerate(dict.fromkeys(names))}


def _tag_matrix(tags: Sequence[tuple[str, ...]], codes: dict[str, int]) -> np.ndarray:
    """Row ``i``: item ``i``'s tag codes from the left, padded with ``len(codes)``; and one more row
    of padding (an item not in the table)."""
    lengths = np.fromiter(map(len, tags), dtype=np.int64, count=len(tags))
    matrix = np.full((len(tags) + 1, max(1, int(lengths.max(initial=0)))), len(codes), dtype=np.int64)
    row = np.repeat(np.arange(len(tags)), lengths)  # each tag's item, tags in item order
    column = np.arange(len(row)) - (np.cumsum(lengths) - lengths)[row]  # its place among its item's tags
    matrix[row, column] = np.fromiter(map(codes.__getitem__, itertools.chain.from_iterable(tags)), dtype=np.int64,
                                      count=len(row))
    return matrix


class ItemTable:
    """Items by id with their interest tags; thread-safe for one writer and many readers."""

    def __init__(self) -> None:
        self._items: dict[str, Item] = {}
        self._tags: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()
        self._version = 0  # grows with every write, so :meth:`arrays` knows when to read the table again
        self._arrays: ItemArrays | None = None

    def upsert(self, items: Iterable[Item], tags: Mapping[str, tuple[str, ...]]) -> None:
        with self._lock:
            for item in items:
                self._items[item.item_id] = item
                self._tags[item.item_id] = tags.get(item.item_id, item.tags)
            self._version += 1

    def remove(self, item_id: str) -> bool:
        with self._lock:
            self._tags.pop(item_id, None)
            self._version += 1
            return self._items.pop(item_id, None) is not None

    def arrays(self) -> ItemArrays:
        """The table as :class:`ItemArrays`, read again only after a write."""
        found = self._arrays
        if found is None or found.version != self._version:
            with self._lock:  # a consistent copy: no write between reading the items and their tags
                version = self._version
                items = list(self._items.values())
                tags = [self._tags[i.item_id] for i in items]
            found = self._arrays = ItemArrays.build(version, items, tags)
        return found

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


def _text_index(items: Sequence[Item], vectors: np.ndarray) -> ContentModel:
    """A text index over ``items`` with their (language-centred) ``vectors``."""
    data = TrainingData.from_events([], [i.item_id for i in items], vectors, {})
    return ContentModel().fit(data)


class LiveCatalog:
    """The served items: table, interest tags and text index, kept in step with the store's catalog.

    Reads (everything :class:`ItemTable` answers, plus :meth:`vectors_of` and
    :meth:`query_vector`) never wait. Writes take ``lock``, the engine's write lock, so an item
    upsert never interleaves with an event batch or a snapshot swap. ``version`` grows with every
    change, so readers can cache what they derive from the catalog.
    """

    def __init__(self, store: Catalog, space: TextSpace, lock: threading.RLock, enrich_workers: int = 0) -> None:
        self.table = ItemTable()
        self.enrich_workers = enrich_workers
        self.store = store
        self.space = space
        self.lock = lock
        self.version = 0
        items = list(store.all())
        self.content = _text_index(items, space.item_vectors(items))
        self.table.upsert(items, {i.item_id: interest_tags(i) for i in items})

    # ------------------------------------------------------------------ writes

    def upsert(self, items: Iterable[Item | Mapping[str, Any]]) -> int:
        """Validate, enrich (language, keyword tags), encode and store items; live at once.

        All items are validated before any is stored: one bad item stores nothing.
        """
        parsed = [Item.from_dict(i) for i in items]
        seen: set[str] = set()
        for item in parsed:
            if item.item_id in seen:
                raise InvalidInputError(f"item {item.item_id!r} appears twice in one batch", field="item_id",
                                        value=item.item_id)
            seen.add(item.item_id)
        enriched = enrich_many(parsed, self.enrich_workers)
        # Encode before taking the write lock (it is the slow part, and events must keep flowing);
        # the cached raw vectors make the centring under the lock cheap.
        self.space.raw_item_vectors(enriched)
        with self.lock:
            self._serve(enriched, self.store.upsert)
            self.version += 1
        return len(enriched)

    def delete(self, item_id: str) -> bool:
        """Remove the item from the store and from serving; whether the store had it."""
        with self.lock:
            existed = self.store.delete(item_id)
            self._unserve([item_id])
            self.version += 1
        return existed

    def _serve(self, items: Sequence[Item], store: Callable[[Sequence[Item]], object] | None = None) -> None:
        """Index and table ``items`` a chunk at a time, each chunk ``store``d first. Call with the lock held."""
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            vectors = self.space.item_vectors(chunk)
            if store is not None:
                store(chunk)
            self.content.add_items([i.item_id for i in chunk], vectors)
            self.table.upsert(chunk, {i.item_id: interest_tags(i) for i in chunk})

    def _unserve(self, item_ids: Sequence[str]) -> None:
        """Take ``item_ids`` out of the index and the table. Call with the lock held."""
        self.content.remove_items(item_ids)
        for item_id in item_ids:
            self.table.remove(item_id)

    def reload(self, item_ids: Sequence[str]) -> int:
        """Serve these items as the store now holds them (another process upserted or deleted
        them): present ones are loaded, with their text vectors from the store's cache (encoded
        only if another process did not cache them), absent ones leave serving. How many changed."""
        found = self.store.get_many(item_ids)
        items = list(found.values())
        self.space.raw_item_vectors(items)  # any encoding happens before the lock, as in upsert
        with self.lock:
            self._serve(items)
            gone = [item_id for item_id in item_ids if item_id not in found and item_id in self.table]
            if gone:
                self._unserve(gone)
            self.version += 1
        return len(items) + len(gone)

    def refit_centering(self) -> tuple[list[str], np.ndarray]:
        """Fit the language centring on the current catalog and serve it, with a text index rebuilt
        in the new space. Returns the catalog's ids and their vectors in the new space, for training.

        The fit and the new index (minutes for an HNSW index of a million items) are built from the
        catalog as it is, without the write lock, so events keep flowing meanwhile; the lock is
        taken to swap them in. An item written in between makes the swap redo the work under the
        lock, on the catalog as it then is.
        """
        version = self.version
        items: list[Item] = []
        prepared = None
        try:
            items = self.items()
            prepared = self._prepare(items)
        except NotFoundError:  # an item deleted while the list was read: redone under the lock
            pass
        with self.lock:
            if prepared is None or self.version != version:
                items = self.items()
                prepared = self._prepare(items)
            self._swap(prepared)
        return [i.item_id for i in items], prepared[1]

    def recentre(self, centering: LanguageCentering) -> bool:
        """Serve ``centering`` (a snapshot's) if it is not the one served; whether it changed.

        Call with the lock held. The text index is rebuilt in the new space.
        """
        if centering == self.space.centering:
            return False
        self._swap(self._prepare(self.items(), centering))
        return True

    def _prepare(self, items: Sequence[Item], centering: LanguageCentering | None = None
                 ) -> tuple[LanguageCentering, np.ndarray, ContentModel]:
        """The items' vectors in ``centering``'s space (fitted on them when None) and a text index of them."""
        raw = self.space.raw_item_vectors(items)
        languages = [item_language(i) for i in items]
        if centering is None:
            centering = self.space.fit_centering(raw, languages)
        vectors = centering.apply(raw, languages)
        return centering, vectors, _text_index(items, vectors)

    def _swap(self, prepared: tuple[LanguageCentering, np.ndarray, ContentModel]) -> None:
        """Serve a prepared space and index (call with the lock held)."""
        centering, _, index = prepared
        self.space.recentre(centering)
        self.content = index
        self.version += 1

    # ------------------------------------------------------------------ reads

    def find(self, item_id: str) -> Item | None:
        return self.table.find(item_id)

    def get(self, item_id: str) -> Item:
        """The item; NotFoundError when it is not in the catalog."""
        return self.table.get(item_id)

    def tags(self, item_id: str) -> tuple[str, ...]:
        """The item's interest tags (none for an unknown item)."""
        return self.table.tags(item_id)

    def title(self, item_id: str) -> str:
        return self.table.title(item_id)

    def arrays(self) -> ItemArrays:
        return self.table.arrays()

    def ids(self) -> list[str]:
        return self.table.ids()

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.table

    def __len__(self) -> int:
        return len(self.table)

    def items(self) -> list[Item]:
        """Every served item, in catalog order."""
        return [self.table.get(i) for i in self.table.ids()]

    def vectors_of(self, item_ids: Sequence[str]) -> np.ndarray:
        """The items' text vectors; zeros for an unknown (deleted) item."""
        return self.content.vectors_of(item_ids)

    def query_vector(self, text: str) -> np.ndarray:
        return self.space.query_vector(text)

    def text_vectors(self, texts: Sequence[str], kind: Any) -> np.ndarray:
        return self.space.text_vectors(texts, kind)

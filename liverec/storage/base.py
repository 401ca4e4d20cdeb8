"""Storage contracts: the event log (source of truth), the item catalog, the embedding cache, the
feedback log and the API keys, and where a store lives.

Every backend implements :class:`Store`; one contract suite per kind of thing runs against each
implementation (``liverec.testing.store_contract``, ``feedback_contract``, ``keystore_contract``).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from liverec.core.types import Event, Item
from liverec.storage.feedback import FeedbackResult, VariantCounts
from liverec.storage.keys import ApiKey
from liverec.storage.quarantine import Quarantine


@dataclass(frozen=True)
class StoreLocation:
    """Where a store lives, known from its URL alone (see :func:`liverec.storage.locate`).

    Parameters
    ----------
    url
        The store's URL, as the store itself reports it.
    directory
        Where side files go (snapshots, the feedback log, the key database); ``None`` when the
        store is nowhere on disk.
    name
        The stem of side files: the database file's name for SQLite (``shop.db``).
    shared
        Whether another process opening ``url`` sees the same data (a file does; memory does not).

    >>> where = StoreLocation("sqlite:///data/shop.db", Path("/srv/data"), "shop.db", shared=True)
    >>> where.side(".models").as_posix()
    '/srv/data/shop.db.models'
    >>> StoreLocation("memory://", None, "memory", shared=False).side(".models") is None
    True
    """

    url: str
    directory: Path | None
    name: str
    shared: bool

    def side(self, suffix: str) -> Path | None:
        """The side file ``<directory>/<name><suffix>``, or None for a store nowhere on disk."""
        return None if self.directory is None else self.directory / f"{self.name}{suffix}"


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

    def get_many(self, event_ids: Iterable[str]) -> dict[str, Event]:
        """The stored events among ``event_ids``, by id (unknown ids are left out): what a
        re-sent id is compared against, so it is only asked for ids :meth:`existing` found."""
        ...

    def by_user(self, user_id: str) -> list[Event]:
        """The user's events in time order (timestamp, then arrival)."""
        ...

    def between(self, start: float, end: float) -> Iterator[Event]:
        """Events with ``start <= timestamp < end`` in time order."""
        ...

    def all(self, through: int | None = None) -> Iterator[Event]:
        """Every event in time order; with ``through`` (a :meth:`position`), only those stored by
        the time it was read: what training reads, so what it missed is exactly what came after."""
        ...

    def position(self) -> int:
        """Where the log's arrivals stand (0 before any): every event stored before this call is at
        or below it, every event stored after it is above it, whatever their timestamps."""
        ...

    def arrived_after(self, position: int, until: float = math.inf) -> Iterator[Event]:
        """The events stored after ``position`` (a :meth:`position`) dated at or before ``until``, in
        arrival order: a client's late events, which a replay by time from the newest event training
        read would miss."""
        ...

    def delete_user(self, user_id: str) -> int:
        """Erase every event of the user; return how many were removed.

        When any were, the erasure is recorded in the same transaction (see :meth:`erased_since`),
        so that a model trained meanwhile, here or in another process, can be scrubbed of the user.
        """
        ...

    def erasure_epoch(self) -> int:
        """A number that grows with every recorded erasure (0 before any): read it before reading
        events to train on, and :meth:`erased_since` names who was erased after that read."""
        ...

    def erased_since(self, epoch: int, user_ids: Iterable[str]) -> set[str]:
        """Those of ``user_ids`` whose erasure was recorded after ``epoch`` (an :meth:`erasure_epoch`).

        A durable backend keeps only a keyed digest of each erased id, never the id.
        """
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
    """Text embeddings keyed by (encoder name, text hash) so unchanged text is never re-encoded.

    ``key_salt`` is random bytes kept with the cache (the same every time a durable store is
    opened, different for every store) that key the text hashes: without it a guessed text
    cannot be checked against a copied key, nor a text followed from one store to another.
    """

    @property
    def key_salt(self) -> bytes: ...

    def get_many(self, encoder: str, keys: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_many(self, encoder: str, vectors: dict[str, np.ndarray]) -> None: ...

    def delete(self, keys: Sequence[str]) -> int:
        """Remove the vectors kept under ``keys``, of every encoder; how many were removed."""
        ...


@runtime_checkable
class FeedbackLog(Protocol):
    """Which variant served which list, and the impressions and clicks reported on those lists.

    A log remembers a bounded number of served lists (its capacity; past it the oldest are
    forgotten and feedback on them is :class:`~liverec.core.errors.NotFoundError`), but keeps
    every list's contribution to the per-variant totals. Safe to share between threads; a call
    that raises counts nothing. Used as a context manager, it is closed on exit.
    """

    def record_served(
        self, request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None = None
    ) -> None:
        """Remember that ``variant`` served ``item_ids`` to ``user_id`` as request ``request_id``.

        Recording the same request again with the same content is a no-op (a retried write);
        with other content it is a :class:`~liverec.core.errors.ConflictError`, since feedback
        already counted against the first list would no longer match.
        """
        ...

    def serve_later(
        self, request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None = None
    ) -> None:
        """:meth:`record_served` for the request path: checked now, possibly written later.

        A queued list is never missing from a later :meth:`record`, :meth:`forget_user` or
        :meth:`counts`. A request id recorded twice with other content is dropped, not raised.
        """
        ...

    def flush(self) -> int:
        """Write every queued list now; how many were written."""
        ...

    def record(self, request_id: str, kind: str, item_ids: Sequence[str] | None = None) -> FeedbackResult:
        """Count impressions or clicks on items of a served list; what was newly counted.

        ``kind`` is ``impression`` or ``click`` (a click also counts its item's impression);
        ``item_ids`` must all come from the served list, and ``None`` with an impression means
        the whole list. Each (request, item, kind) counts once, so a retried report returns zeros.
        Raises ``NotFoundError`` (kind ``request``) for an unknown, evicted or erased request and
        ``InvalidInputError`` (field ``type`` or ``item_ids``) for a bad report.
        """
        ...

    def forget_user(self, user_id: str) -> int:
        """Erase the lists served to ``user_id`` and the feedback on them; how many lists were erased.

        The variants' totals keep what those lists contributed: they are anonymous counts, and
        taking them back would change an experiment's results after the fact.
        """
        ...

    def counts(self) -> builtins.list[VariantCounts]:
        """Every variant that has served a list, in the order variants were first served."""
        ...

    def close(self) -> None:
        """Write what is queued and close; further use raises ``StorageError``. Safe to call twice."""
        ...

    def __enter__(self) -> FeedbackLog: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class KeyStore(Protocol):
    """The API keys a service accepts, kept as SHA-256 digests of their tokens (never the tokens).

    Thread-safe. Token format, scopes and validation are :mod:`liverec.storage.keys`'s.
    """

    def create(self, name: str, scopes: str | Iterable[str]) -> tuple[str, ApiKey]:
        """Make a key; returns ``(token, key)``. The token is shown this once and never stored.

        Raises ``InvalidInputError`` (field ``name`` or ``scopes``) for an empty or over-long
        name, no scopes, or a scope not in :data:`~liverec.storage.keys.SCOPES`.
        """
        ...

    def verify(self, token: str) -> ApiKey | None:
        """The key ``token`` belongs to, or None; never raises, whatever it is given.

        Constant-time, and an unknown key id costs one comparison too. Keys created or revoked
        elsewhere (another process) may take up to the store's reload interval to be seen.
        """
        ...

    def list(self) -> builtins.list[ApiKey]:
        """Every key, oldest first."""
        ...

    def revoke(self, key_id: str) -> ApiKey:
        """Delete the key so its token stops working; returns what it was.

        Raises ``NotFoundError`` (kind ``api_key``) if there is no such key.
        """
        ...

    def __len__(self) -> int: ...

    def close(self) -> None:
        """Release what the store holds open. Safe to call twice."""
        ...


class SnapshotIndex(Protocol):
    """A store's record of the model snapshots written for it: each version's manifest, and which
    version is current.

    The snapshots' files live in the model directory (:mod:`liverec.ranking.snapshot`); where a
    store keeps an index (PostgreSQL does), the index, not the directory's ``CURRENT`` file, says
    which snapshot every worker serves, so workers on several machines agree through the database
    they already share rather than through a shared file system's renames, and operators can query
    every training's manifest (figures, parameters, when its files were pruned) with SQL.
    """

    def publish(self, version: str, manifest: dict[str, Any]) -> None:
        """Record ``version`` with its manifest and make it current, in one transaction."""
        ...

    def adopt(self, version: str, manifest: dict[str, Any]) -> str:
        """Record ``version`` and make it current only if no version is current yet (a model
        directory written before the store kept an index); the version now current."""
        ...

    def update(self, version: str, manifest: dict[str, Any]) -> None:
        """Replace the manifest of a recorded ``version`` (an erasure rewrote the snapshot)."""
        ...

    def current(self) -> str | None:
        """The current version; None before the first snapshot."""
        ...

    def manifests(self) -> dict[str, dict[str, Any]]:
        """Every recorded version's manifest, oldest first, pruned ones included (with a
        ``pruned_at`` time where their files are gone)."""
        ...

    def pruned(self, versions: Sequence[str]) -> None:
        """Note that the files of ``versions`` were removed (their records stay)."""
        ...


@runtime_checkable
class Store(Protocol):
    """What ``open_store(url)`` returns."""

    url: str
    events: EventLog
    catalog: Catalog
    vectors: VectorCache
    quarantine: Quarantine
    snapshots: SnapshotIndex | None  # None: the model directory's CURRENT file says what is current

    @property
    def location(self) -> StoreLocation:
        """Where the store lives; equal to ``locate(self.url)``."""
        ...

    def feedback_log(self, path: Path | None = None) -> FeedbackLog:
        """Open the store's feedback log; ``path`` puts it in that SQLite file instead of the default."""
        ...

    def key_store(self, path: Path | None = None) -> KeyStore:
        """Open the store's API keys; ``path`` keeps them in that SQLite file instead of the default."""
        ...

    def checkpoint(self) -> None:
        """Make what was deleted unrecoverable from the store's own files (after an erasure): a
        SQLite store empties its write-ahead log. Nothing to do for a store in memory."""
        ...

    def close(self) -> None: ...

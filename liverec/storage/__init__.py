"""Storage backends, opened by URL, and everything a store keeps: events, items, vectors, the
feedback log and the API keys.

``open_store(url)`` is the one place a backend is chosen, by the URL's scheme, and
``locate(url)`` says where that store lives without opening it. ``open_store(url, create=False)``
opens only a store that exists, so a mistyped URL in a command that only reads is an error
rather than a new, empty store:

* ``memory://`` — :class:`MemoryStore`, gone when the process ends; its feedback log and keys
  are in memory too;
* ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — :class:`SqliteStore`, with
  its model snapshots, feedback log and keys in side files beside it (``path.db.models``,
  ``path.db.feedback.db``, ``path.db.keys.db``);
* ``postgresql://user@host:5432/database?schema=liverec&snapshots=/shared/dir`` —
  :class:`~liverec.storage.postgres.PostgresStore`, for several workers on one or many machines:
  events, items, vectors, feedback and keys in the database, snapshots in ``snapshots``.

A new backend is one module and one :func:`register_backend` call.

>>> store = open_store("memory://")
>>> store.events.count(), store.location.directory
(0, None)
>>> where = locate("sqlite:///data/shop.db")
>>> where.name, where.shared, where.side(".keys.db").name
('shop.db', True, 'shop.db.keys.db')
>>> locate("memory://").side(".models") is None
True
>>> open_store("redis://localhost")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
liverec.core.errors.InvalidInputError: store URL 'redis://localhost' has unknown scheme 'redis'; known: memory://, ...
>>> open_store("sqlite:///no/such/shop.db", create=False)
Traceback (most recent call last):
...
liverec.core.errors.NotFoundError: no store at sqlite:///no/such/shop.db
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.core.redact import redact
from liverec.storage import memory, postgres, sqlite
from liverec.storage.base import Catalog, EventLog, FeedbackLog, KeyStore, Store, StoreLocation, VectorCache
from liverec.storage.feedback import FeedbackResult, VariantCounts
from liverec.storage.keys import SCOPES, ApiKey
from liverec.storage.memory import MemoryStore
from liverec.storage.memory_feedback import MemoryFeedbackLog
from liverec.storage.memory_keys import MemoryKeyStore
from liverec.storage.postgres import PostgresStore
from liverec.storage.sqlite import SqliteStore
from liverec.storage.sqlite_feedback import SqliteFeedbackLog
from liverec.storage.sqlite_keys import SqliteKeyStore

__all__ = [
    "SCOPES",
    "ApiKey",
    "Backend",
    "Catalog",
    "EventLog",
    "FeedbackLog",
    "FeedbackResult",
    "KeyStore",
    "MemoryFeedbackLog",
    "MemoryKeyStore",
    "MemoryStore",
    "PostgresStore",
    "SqliteFeedbackLog",
    "SqliteKeyStore",
    "SqliteStore",
    "Store",
    "StoreLocation",
    "VariantCounts",
    "VectorCache",
    "locate",
    "open_key_store",
    "open_store",
    "register_backend",
]


def _always(url: str, rest: str) -> bool:
    return True


@dataclass(frozen=True)
class Backend:
    """One scheme's registry entry. Its functions take the whole URL and what follows ``scheme://``."""

    scheme: str
    open: Callable[[str, str], Store]
    locate: Callable[[str, str], StoreLocation]
    exists: Callable[[str, str], bool] = _always


_BACKENDS: dict[str, Backend] = {}


def register_backend(
    scheme: str,
    *,
    open: Callable[[str, str], Store],
    locate: Callable[[str, str], StoreLocation],
    exists: Callable[[str, str], bool] | None = None,
    replace: bool = False,
) -> None:
    """Make ``scheme://`` URLs open with ``open`` and locate with ``locate`` (schemes are case-insensitive).

    ``locate`` must not open or create anything, and must equal the opened store's ``location``.
    ``exists`` says, without creating anything, whether ``open`` would find a store rather than
    create one; without it every URL of the scheme names an existing store (``memory://``, or a
    server whose own connection refuses a database that is not there).
    Registering a scheme twice is an :class:`InvalidInputError` unless ``replace`` is true.
    """
    key = scheme.lower()
    if key in _BACKENDS and not replace:
        raise InvalidInputError(f"store scheme {scheme!r} is already registered", field="scheme", value=scheme)
    _BACKENDS[key] = Backend(key, open, locate, exists or _always)


register_backend("memory", open=memory.open_url, locate=memory.locate_url)
register_backend("sqlite", open=sqlite.open_url, locate=sqlite.locate_url, exists=sqlite.exists_url)
# A server refuses a database that is not there, so every URL "exists"; the schema is created at open.
register_backend("postgresql", open=postgres.open_url, locate=postgres.locate_url)
register_backend("postgres", open=postgres.open_url, locate=postgres.locate_url)


def _backend(url: str) -> tuple[Backend, str]:
    known = ", ".join(f"{scheme}://" for scheme in _BACKENDS)
    scheme, separator, rest = url.partition("://") if isinstance(url, str) else ("", "", "")
    shown = redact(url) if isinstance(url, str) else url  # a URL's password is never repeated
    if not separator or not scheme:
        raise InvalidInputError(f"store URL {shown!r} has no scheme; expected one of {known}", field="url",
                                value=shown)
    backend = _BACKENDS.get(scheme.lower())
    if backend is None:
        raise InvalidInputError(
            f"store URL {shown!r} has unknown scheme {scheme!r}; known: {known}", field="url", value=shown
        )
    return backend, rest


def open_store(url: str, *, create: bool = True) -> Store:
    """Open the store ``url`` names; raises :class:`InvalidInputError` for an unknown or malformed URL.

    A bare file path is not accepted, so a typo never silently creates a database somewhere.
    With ``create`` false a store that does not exist is a :class:`NotFoundError` (kind
    ``"store"``) and nothing is created: no file, no directory.
    """
    backend, rest = _backend(url)
    if not create and not backend.exists(url, rest):
        raise NotFoundError(f"no store at {redact(url)}", kind="store", key=redact(url))
    return backend.open(url, rest)


def locate(url: str) -> StoreLocation:
    """Where the store ``url`` names lives (its side files, whether it is shared), without opening it.

    Raises :class:`InvalidInputError` for exactly the URLs :func:`open_store` refuses.
    """
    backend, rest = _backend(url)
    return backend.locate(url, rest)


def open_key_store(path: str | Path) -> KeyStore:
    """The API keys in the SQLite file at ``path``, whatever the store (a ``keys_file`` setting)."""
    return SqliteKeyStore(path)

"""Storage backends, opened by URL.

``open_store(url)`` is the one place a backend is chosen, by the URL's scheme:

* ``memory://`` — :class:`MemoryStore`, gone when the process ends;
* ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — :class:`SqliteStore`.

>>> store = open_store("memory://")
>>> store.events.count(), store.root
(0, None)
>>> open_store("redis://localhost")
Traceback (most recent call last):
...
liverec.core.errors.InvalidInputError: store URL 'redis://localhost' has unknown scheme 'redis'; known: memory://, sqlite://
"""

from __future__ import annotations

from collections.abc import Callable

from liverec.core.errors import InvalidInputError
from liverec.storage.base import Catalog, EventLog, Store, VectorCache
from liverec.storage.memory import MemoryStore
from liverec.storage.sqlite import SqliteStore

__all__ = [
    "Catalog",
    "EventLog",
    "MemoryStore",
    "SqliteStore",
    "Store",
    "VectorCache",
    "open_store",
]


def _open_memory(url: str, rest: str) -> Store:
    return MemoryStore(url)


def _open_sqlite(url: str, rest: str) -> Store:
    # SQLAlchemy's convention: the path follows a third slash, so four slashes mean an absolute path.
    if not rest.startswith("/") or rest == "/":
        raise InvalidInputError(
            f"store URL {url!r} has no file path; expected sqlite:///relative/path.db or sqlite:////absolute/path.db",
            field="url",
            value=url,
        )
    path = rest[1:]
    if path == ":memory:":
        raise InvalidInputError(
            f"store URL {url!r} names no file; use memory:// for a store that is not kept", field="url", value=url
        )
    return SqliteStore(path)


# scheme -> opener(url, what follows "scheme://"); a new backend is one entry here.
_OPENERS: dict[str, Callable[[str, str], Store]] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
}


def open_store(url: str) -> Store:
    """Open the store ``url`` names; raises :class:`InvalidInputError` for an unknown or malformed URL.

    A bare file path is not accepted, so a typo never silently creates a database somewhere.
    """
    known = ", ".join(f"{scheme}://" for scheme in _OPENERS)
    scheme, separator, rest = url.partition("://") if isinstance(url, str) else ("", "", "")
    if not separator or not scheme:
        raise InvalidInputError(f"store URL {url!r} has no scheme; expected one of {known}", field="url", value=url)
    opener = _OPENERS.get(scheme.lower())
    if opener is None:
        raise InvalidInputError(
            f"store URL {url!r} has unknown scheme {scheme!r}; known: {known}", field="url", value=url
        )
    return opener(url, rest)

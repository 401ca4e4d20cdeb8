"""API keys in PostgreSQL, shared by every API worker of one store.

The database holds each key's id, name, scopes, creation time and the SHA-256 of its token,
never the token (:mod:`liverec.storage.keys`). Each worker keeps every key in a dict, so
verifying a token is a dict lookup and a hash and never touches the database. A thread of the
worker reads one counter, ``api_keys_version.version``, every ``reload_interval`` seconds; every
create and revoke bumps it in its own transaction, and the keys are re-read only when it moved.

**How soon a change is honoured.** In the worker that made it, at once. In every other worker,
within ``reload_interval`` (1 s by default) plus one query of its commit, for as long as that
worker reaches the database: while it cannot, it keeps the keys it read last (and logs a warning
once), so a key revoked during an outage stops working when the database answers again.

Schema (component ``keys`` of :func:`~liverec.storage.postgres.migrate`, version 1)::

    api_keys(key_id TEXT PRIMARY KEY, name, scopes TEXT[], created, token_sha256 BYTEA)
    api_keys_version(version)                                  -- one row, bumped by every change
"""

from __future__ import annotations

import builtins
import logging
import math
import threading
from collections.abc import Iterable
from typing import Any

from liverec.core.errors import InvalidInputError, LiveRecError, StorageError
from liverec.core.redact import redact
from liverec.storage.keys import (
    KEY_ID_RE,
    ApiKey,
    KeyEntry,
    check_name,
    check_scopes,
    new_key,
    no_such_key,
    oldest_first,
    verify_token,
)
from liverec.storage.postgres import PostgresDatabase, PostgresUrl, check_storable, database_for, migrate

__all__ = ["PostgresKeyStore"]

logger = logging.getLogger(__name__)

# Version n is _MIGRATIONS[n - 1]; never edit one that has shipped, add one. The CHECKs hold the
# rows to what liverec.storage.keys accepts (a new scope is a new migration), so rows read back
# need no second validation.
_MIGRATIONS = [
    """
    CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{8}$'),
        name TEXT NOT NULL,
        scopes TEXT[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'admin']),
        created DOUBLE PRECISION NOT NULL,
        token_sha256 BYTEA NOT NULL CHECK (octet_length(token_sha256) = 32)
    );
    CREATE TABLE api_keys_version (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        version BIGINT NOT NULL
    );
    INSERT INTO api_keys_version (version) VALUES (0)
    """,
]
_COLUMNS = "key_id, name, scopes, created, token_sha256"


def _read_keys(conn: Any) -> dict[str, KeyEntry]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys").fetchall()
    return {key_id: KeyEntry(ApiKey(key_id, name, frozenset(scopes), created), bytes(digest))
            for key_id, name, scopes, created, digest in rows}


def _bump(conn: Any) -> int:
    """Lock the version row until the transaction ends (changes run one at a time) and move it on."""
    return int(conn.execute("UPDATE api_keys_version SET version = version + 1 RETURNING version").fetchone()[0])


class PostgresKeyStore:
    """The API keys a service accepts, in the store's PostgreSQL schema; thread-safe.

    Construction raises :class:`StorageError` if the database cannot be reached. Later, a failed
    re-read keeps the keys read before in force and logs a warning once per failing spell.

    Parameters
    ----------
    url
        The store's connection pool (shared), or its parsed URL (a pool of its own: a connection
        or two are ever used, the reloading thread's and one to create or revoke).
    reload_interval
        Seconds between checks for keys created or revoked by another worker.
    """

    def __init__(self, url: PostgresUrl | PostgresDatabase, *, reload_interval: float = 1.0) -> None:
        if isinstance(reload_interval, bool) or not isinstance(reload_interval, int | float) or not (
            math.isfinite(reload_interval) and reload_interval > 0
        ):
            raise InvalidInputError(f"reload_interval {reload_interval!r} must be a positive number of seconds",
                                    field="reload_interval", value=reload_interval)
        self.reload_interval = float(reload_interval)
        self._lock = threading.Lock()  # orders replacements of the table, never held by verify
        self._entries: dict[str, KeyEntry] = {}
        self._version = -1
        self._closed = False
        self._failing = False
        self._stop = threading.Event()
        self._db = database_for(url, "key store", max_size=2)  # of its own: a reload thread and a writer
        self.url = self._db.url
        try:
            migrate(self._db, "keys", _MIGRATIONS)
            self._reload()
        except BaseException:
            self._db.close()
            raise
        self._watcher = threading.Thread(target=self._watch, name="liverec-keys", daemon=True)
        self._watcher.start()

    def __repr__(self) -> str:
        return f"PostgresKeyStore({redact(self.url.url)!r}, keys={len(self._entries)})"

    # -- the table in memory ----------------------------------------------------------------------

    def _adopt(self, entries: dict[str, KeyEntry], version: int) -> None:
        """Make ``entries`` the table, unless a newer version is already in force (a create that
        committed while the watcher read) or the store is closed."""
        with self._lock:
            if version > self._version and not self._closed:
                self._entries, self._version = entries, version

    def _reload(self) -> None:
        """Re-read the keys if the version moved since the last read."""
        with self._db.access("reading the keys") as conn:
            # The version first: keys read after it are at least that new, so a change committed
            # between the two reads is read again at the next check rather than missed.
            version = int(conn.execute("SELECT version FROM api_keys_version").fetchone()[0])
            if version == self._version:
                return
            entries = _read_keys(conn)
        self._adopt(entries, version)

    def _watch(self) -> None:
        while not self._stop.wait(self.reload_interval):
            try:
                self._reload()
            except LiveRecError as exc:
                if not self._failing and not self._stop.is_set():
                    logger.warning("%s; keeping the %d keys read before", exc, len(self._entries))
                self._failing = True
            else:
                self._failing = False

    # -- reading ----------------------------------------------------------------------------------

    def verify(self, token: str) -> ApiKey | None:
        return verify_token(token, self._entries.get)

    def list(self) -> builtins.list[ApiKey]:
        return oldest_first(self._in_force().values())

    def __len__(self) -> int:
        return len(self._in_force())

    def _in_force(self) -> dict[str, KeyEntry]:
        """The keys verified against; :class:`StorageError` once the store is closed."""
        if self._closed:
            raise StorageError(f"{self._db.where} is closed")
        return self._entries

    # -- writing ----------------------------------------------------------------------------------

    def create(self, name: str, scopes: str | Iterable[str]) -> tuple[str, ApiKey]:
        name, wanted = check_name(name), check_scopes(scopes)
        check_storable("name", (name,))
        with self._db.transaction("creating a key") as conn:
            version = _bump(conn)
            entries = _read_keys(conn)  # with keys other workers made a moment ago
            token, entry = new_key(name, wanted, taken=entries)
            key = entry.key
            conn.execute(f"INSERT INTO api_keys ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                         (key.key_id, key.name, sorted(key.scopes), key.created, entry.digest))
        self._adopt({**entries, key.key_id: entry}, version)
        return token, key

    def revoke(self, key_id: str) -> ApiKey:
        if not isinstance(key_id, str) or KEY_ID_RE.fullmatch(key_id) is None:  # no key has such an id
            raise no_such_key(key_id)
        with self._db.transaction(f"revoking key {key_id!r}") as conn:
            version = _bump(conn)
            entries = _read_keys(conn)
            entry = entries.pop(key_id, None)
            if entry is None:
                raise no_such_key(key_id)
            conn.execute("DELETE FROM api_keys WHERE key_id = %s", (key_id,))
        self._adopt(entries, version)
        return entry.key

    def close(self) -> None:
        """Stop the reloading thread and close the pool; :meth:`verify` then knows no key, other
        calls raise :class:`StorageError`. Safe to call twice."""
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join()
        with self._lock:
            self._closed = True
            self._entries = {}
        self._db.close()

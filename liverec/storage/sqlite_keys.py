"""API keys in a SQLite file of their own, beside the store (``<db>.keys.db``, mode 0o600).

The file holds each key's id, name, scopes, creation time and the SHA-256 of its token, never
the token. A running service keeps every key in a dict, so verifying a token is a dict lookup
and a hash; it sees keys created or revoked by another process (``liverec keys create``) because
it asks SQLite's ``PRAGMA data_version`` whether anyone else committed, at most once per
``reload_interval`` seconds, and re-reads the keys only then.

A store that used the JSON key file of earlier versions (``<db>.keys.json``) has it imported
into an empty key database on first open; the digests carry over, so every token keeps working,
and the JSON file is renamed ``<db>.keys.json.imported``.

Schema (version 1, kept in ``PRAGMA user_version``)::

    api_keys(key_id TEXT PRIMARY KEY, name, scopes -- space-separated, created REAL,
             token_sha256 -- 64 hex digits)
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from liverec.core.errors import LiveRecError, StorageError
from liverec.storage.keys import (
    KEY_ID_RE,
    SCOPES,
    ApiKey,
    KeyEntry,
    check_name,
    check_scopes,
    new_key,
    no_such_key,
    oldest_first,
    verify_token,
)
from liverec.storage.sqlite import SqliteConnection

__all__ = ["SqliteKeyStore", "decode_key_file"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created REAL NOT NULL,
    token_sha256 TEXT NOT NULL
) WITHOUT ROWID
"""
_COLUMNS = "key_id, name, scopes, created, token_sha256"
_HASH_RE = re.compile(r"[0-9a-f]{64}")
_JSON_FORMAT_VERSION = 1


class _KeysDatabase(SqliteConnection):
    """The key database: a durable connection and the schema, versioned."""

    def _configure(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"key store {self.path} has schema version {version}; this liverec reads up to {SCHEMA_VERSION}"
            )
        if version < SCHEMA_VERSION:
            with self.transaction("creating the schema"):
                conn.execute(_SCHEMA)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _row(entry: KeyEntry) -> tuple[str, str, str, float, str]:
    key = entry.key
    return key.key_id, key.name, " ".join(sorted(key.scopes)), key.created, entry.digest.hex()


def _read_keys(conn: sqlite3.Connection, path: Path) -> dict[str, KeyEntry]:
    """Every key in the database; :class:`StorageError` naming ``path`` for a row that makes no sense."""
    entries: dict[str, KeyEntry] = {}
    for key_id, name, scopes, created, digest in conn.execute(f"SELECT {_COLUMNS} FROM api_keys"):
        wanted = frozenset(scopes.split()) if isinstance(scopes, str) else frozenset()
        if (
            not isinstance(key_id, str) or not isinstance(name, str) or not wanted or not wanted <= set(SCOPES)
            or not isinstance(created, int | float) or not isinstance(digest, str) or not _HASH_RE.fullmatch(digest)
        ):
            raise StorageError(f"key store {path} is corrupt: the row of key {key_id!r} does not hold a name, "
                               f"scopes drawn from {', '.join(SCOPES)}, a time and 64 hex digits")
        entries[key_id] = KeyEntry(ApiKey(key_id, name, wanted, float(created)), bytes.fromhex(digest))
    return entries


def _data_version(conn: sqlite3.Connection) -> int:
    # Changes whenever another connection, in any process, commits to the file; not for our own commits.
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


class SqliteKeyStore:
    """The API keys a service accepts, in the SQLite file at ``path``; thread-safe.

    Construction raises :class:`StorageError` naming the path if the file cannot be opened, is
    not a key database, or (with ``legacy_json``) the JSON file to import is corrupt. Later, if
    a re-read fails, the keys read before stay in force and a warning is logged once, so a
    passing disk error does not take the service down; the file is retried at the next check.

    Parameters
    ----------
    path
        The database file; it and its directory are created if missing, the file with mode 0o600.
    reload_interval
        Seconds between checks for changes committed by another process.
    legacy_json
        A JSON key file of earlier versions to import if it exists and the database holds no keys.
    """

    def __init__(
        self, path: str | Path, *, reload_interval: float = 1.0, legacy_json: str | Path | None = None
    ) -> None:
        self.path = Path(path)
        self.reload_interval = reload_interval
        _refuse_json(self.path)
        _make_private(self.path)
        self._db = _KeysDatabase(self.path, "key store")
        self._entries: dict[str, KeyEntry] = {}
        self._version = -1
        self._checked = time.monotonic()
        self._reload_lock = threading.Lock()
        self._failing = False
        self._closed = False
        try:
            if legacy_json is not None:
                self._import(Path(legacy_json))
            with self._db.access("reading the keys") as conn:
                self._entries, self._version = _read_keys(conn, self.path), _data_version(conn)
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteKeyStore({str(self.path)!r}, keys={len(self._entries)})"

    # -- reading -------------------------------------------------------------------------------

    def _maybe_reload(self) -> None:
        """Re-read the keys if another process committed since the last read, at most once per
        ``reload_interval``; on failure keep the keys read before and warn (once per failing spell)."""
        if self._closed or time.monotonic() - self._checked < self.reload_interval:
            return
        with self._reload_lock:
            if self._closed or time.monotonic() - self._checked < self.reload_interval:
                return  # another thread checked meanwhile
            try:
                with self._db.access("reading the keys") as conn:
                    version = _data_version(conn)
                    if version != self._version:
                        self._entries, self._version = _read_keys(conn, self.path), version
            except LiveRecError as exc:
                if not self._failing and not self._closed:
                    logger.warning("%s; keeping the %d keys read before", exc, len(self._entries))
                self._failing = True
            else:
                self._failing = False
            self._checked = time.monotonic()

    def verify(self, token: str) -> ApiKey | None:
        self._maybe_reload()
        return verify_token(token, self._entries.get)

    def list(self) -> builtins.list[ApiKey]:
        self._check_open()
        self._maybe_reload()
        return oldest_first(self._entries.values())

    def __len__(self) -> int:
        self._check_open()
        self._maybe_reload()
        return len(self._entries)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"key store {self.path} is closed")

    # -- writing -------------------------------------------------------------------------------

    def create(self, name: str, scopes: str | Iterable[str]) -> tuple[str, ApiKey]:
        name, wanted = check_name(name), check_scopes(scopes)
        with self._db.transaction("creating a key") as conn:
            entries = _read_keys(conn, self.path)  # with keys other processes made a moment ago
            token, entry = new_key(name, wanted, taken=entries)
            conn.execute(f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", _row(entry))
            entries[entry.key.key_id] = entry
            version = _data_version(conn)
        self._entries, self._version = entries, version
        return token, entry.key

    def revoke(self, key_id: str) -> ApiKey:
        with self._db.transaction(f"revoking key {key_id!r}") as conn:
            entries = _read_keys(conn, self.path)
            entry = entries.pop(key_id, None) if isinstance(key_id, str) else None
            if entry is None:
                raise no_such_key(key_id)
            conn.execute("DELETE FROM api_keys WHERE key_id = ?", (key_id,))
            version = _data_version(conn)
        self._entries, self._version = entries, version
        return entry.key

    def close(self) -> None:
        """Close the database; :meth:`verify` then knows no key, other calls raise :class:`StorageError`."""
        self._closed = True
        self._entries = {}
        self._db.close()

    # -- the JSON key file of earlier versions --------------------------------------------------

    def _import(self, legacy: Path) -> None:
        if not legacy.is_file():
            return
        imported: int | None = None
        with self._db.transaction(f"importing the keys of {legacy}") as conn:
            if conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is None:
                try:
                    raw = legacy.read_bytes()
                except FileNotFoundError:  # another process imported it a moment ago
                    return
                except OSError as exc:
                    raise StorageError(f"could not read keys file {legacy}: {exc}") from exc
                entries = decode_key_file(legacy, raw)
                conn.executemany(f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                                 [_row(entry) for entry in entries])
                imported = len(entries)
        if imported is None:
            logger.warning("keys file %s was not imported: key store %s already holds keys", legacy, self.path)
            return
        try:
            os.replace(legacy, legacy.with_name(legacy.name + ".imported"))
        except FileNotFoundError:
            pass
        except OSError as exc:  # the keys are in; the next open finds them and leaves the file alone
            logger.warning("imported keys file %s but could not rename it: %s", legacy, exc)
        logger.info("imported %d API keys from %s into %s", imported, legacy, self.path)


def decode_key_file(path: Path, raw: bytes) -> builtins.list[KeyEntry]:
    """The keys in the bytes of a JSON key file of earlier versions; :class:`StorageError` naming
    ``path`` if they are not valid.

    The format: ``{"version": 1, "keys": [{key_id, name, scopes, created, token_sha256}]}``.
    """

    def bad(why: str) -> StorageError:
        return StorageError(f"keys file {path} is corrupt: {why}; restore it from a backup or remove it")

    try:
        data: Any = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise bad(f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("version") != _JSON_FORMAT_VERSION or not isinstance(
        data.get("keys"), list
    ):
        raise bad(f'expected {{"version": {_JSON_FORMAT_VERSION}, "keys": [...]}}')
    entries: dict[str, KeyEntry] = {}
    for i, item in enumerate(data["keys"]):
        if not isinstance(item, dict):
            raise bad(f"keys[{i}] is not an object")
        key_id, name, scopes = item.get("key_id"), item.get("name"), item.get("scopes")
        created, digest = item.get("created"), item.get("token_sha256")
        if not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id):
            raise bad(f"keys[{i}].key_id {key_id!r} is not 8 hex digits")
        if key_id in entries:
            raise bad(f"key id {key_id!r} appears twice")
        if not isinstance(name, str):
            raise bad(f"keys[{i}].name is not a string")
        if not isinstance(scopes, list) or not scopes or not all(s in SCOPES for s in scopes):
            raise bad(f"keys[{i}].scopes {scopes!r} is not a non-empty list drawn from {', '.join(SCOPES)}")
        if isinstance(created, bool) or not isinstance(created, int | float):
            raise bad(f"keys[{i}].created is not a number")
        if not isinstance(digest, str) or not _HASH_RE.fullmatch(digest):
            raise bad(f"keys[{i}].token_sha256 is not 64 hex digits")
        key = ApiKey(key_id=key_id, name=name, scopes=frozenset(scopes), created=float(created))
        entries[key_id] = KeyEntry(key=key, digest=bytes.fromhex(digest))
    return list(entries.values())


def _refuse_json(path: Path) -> None:
    """A clear error for a keys path that still names a JSON key file of earlier versions."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:  # missing (created next) or unreadable (reported when opened)
        return
    if head.lstrip().startswith(b"{"):
        raise StorageError(
            f"keys file {path} is a JSON key file of an earlier liverec; key files are SQLite databases now. "
            "Name a new file (e.g. <db>.keys.db), or put the JSON beside the store as <db>.keys.json "
            "to have it imported"
        )


def _make_private(path: Path) -> None:
    """Create ``path`` (and its directory) readable by its owner only; make an existing one so.

    SQLite creates the -wal and -shm files with the database file's mode, so they follow.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file.exists() and file.stat().st_mode & 0o777 != 0o600:
                file.chmod(0o600)
    except OSError as exc:
        raise StorageError(f"cannot open key store {path}: {exc}") from exc

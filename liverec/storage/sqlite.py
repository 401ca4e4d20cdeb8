"""A store in one SQLite file: durable, single-machine, no server to run.

The file runs in WAL mode with ``synchronous=FULL``: readers do not block the writer, and a
returned :meth:`SqliteEventLog.append` has reached the disk. One connection serves every thread
behind one lock, because the HTTP service calls the store from a thread pool and SQLite allows a
single writer anyway. Every sqlite3 failure surfaces as :class:`~liverec.core.errors.StorageError`,
and a failed write stores nothing.

Schema (version 3, kept in ``PRAGMA user_version``)::

    events(seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL, user_id, type,
           item_id, value REAL, text, ts REAL, session_id)       -- indexes (user_id, ts, seq), (ts, seq)
    items(seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT UNIQUE NOT NULL, data TEXT)
    vectors(encoder, key, dim, data BLOB, PRIMARY KEY (encoder, key))   -- data: float32 bytes; index (key)
    erasures(seq INTEGER PRIMARY KEY AUTOINCREMENT, digest BLOB UNIQUE)  -- keyed digests of erased user ids
    meta(key TEXT PRIMARY KEY, value BLOB)                              -- 'salt': this store's random key
    item_changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id)        -- every catalog write (version 3)

Another process serving the same file (``liverec serve`` while ``liverec ingest`` adds items or
events) takes in what this one wrote through the catalog's change log and the events' arrival
order (:meth:`SqliteCatalog.changes_since`, :meth:`SqliteEventLog.since`): SQLite lets one
transaction write at a time, so arrival numbers become visible in order.

Every connection runs with ``secure_delete`` on, so a deleted row is overwritten with zeros; an
erasure then empties the write-ahead log (:meth:`SqliteStore.checkpoint`). Version 1 stores are
upgraded when opened; their vector cache, keyed by unsalted text hashes, is emptied then.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from liverec.core.errors import InvalidInputError, NotFoundError, StorageError
from liverec.core.redact import redact
from liverec.core.types import Event, EventType, Item
from liverec.storage.base import Catalog, EventLog, FeedbackLog, KeyStore, SnapshotIndex, StoreLocation, VectorCache
from liverec.storage.codecs import as_vector, check_events, decode_item, encode_item, erased_among, erasure_digest
from liverec.storage.files import private_file
from liverec.storage.quarantine import SQL_SCHEMA as QUARANTINE_SCHEMA
from liverec.storage.quarantine import Quarantine, SqlQuarantine
from liverec.storage.sql_changes import changes_since, forget_old_changes
from liverec.storage.sql_events import EVENT_COLUMNS as _EVENT_COLUMNS
from liverec.storage.sql_events import INSERT_COLUMNS as _INSERT_COLUMNS
from liverec.storage.sql_events import SqlEventReads
from liverec.storage.sql_events import event_from_row as _event

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3
SALT_BYTES = 32

# Rows fetched per query when streaming; large enough to amortise the query, small enough that
# a scan of millions of events never holds more than a few MB or the lock for long.
PAGE_SIZE = 2048

# Host parameters per IN (...) list; SQLite builds before 3.32 allow at most 999.
_IN_CHUNK = 500
T = TypeVar("T")

# Rows per INSERT statement. One multi-row statement does the per-statement work (AUTOINCREMENT's
# sqlite_sequence update, VM setup) once per 100 rows instead of once per row, as executemany
# does: a third fewer instructions per appended event. 100 rows × 8 columns stays under 999.
_INSERT_ROWS = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT UNIQUE NOT NULL,
    user_id TEXT NOT NULL,
    type TEXT NOT NULL,
    item_id TEXT,
    value REAL,
    text TEXT,
    ts REAL NOT NULL,
    session_id TEXT
);
CREATE INDEX IF NOT EXISTS events_user_time ON events (user_id, ts, seq);
CREATE INDEX IF NOT EXISTS events_time ON events (ts, seq);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT UNIQUE NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    encoder TEXT NOT NULL,
    key TEXT NOT NULL,
    dim INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (encoder, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_key ON vectors (key);
CREATE TABLE IF NOT EXISTS erasures (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    digest BLOB UNIQUE NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT);
CREATE TABLE IF NOT EXISTS item_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""

_SCHEMA += QUARANTINE_SCHEMA



class SqliteConnection:
    """One connection behind one lock, with every sqlite3 error turned into a :class:`StorageError`
    naming what was being done. Shared by the store, the feedback log and the key store.

    Parameters
    ----------
    path
        The database file (its directory is created); ``None`` for an in-memory database.
    label
        What the database is, for messages: ``"sqlite store"``, ``"feedback log"``, ``"key store"``.
    synchronous
        SQLite's ``synchronous`` level in WAL mode: ``FULL`` (a commit is durable) or ``NORMAL``
        (survives a process crash; the last commits may be lost on power loss).
    """

    def __init__(self, path: Path | None, label: str = "sqlite store", synchronous: str = "FULL") -> None:
        self.path = path
        self.label = label
        self.lock = threading.Lock()
        where = f"{label} {path if path is not None else ':memory:'}"
        try:
            if path is not None:
                # SQLite gives the -wal and -shm files the database file's mode; older ones are narrowed.
                private_file(path)
                for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    if side.exists():
                        private_file(side)
            # Autocommit mode: transactions are begun and ended explicitly below, not by the driver.
            conn = sqlite3.connect(path or ":memory:", isolation_level=None, check_same_thread=False)
        except (OSError, ValueError, sqlite3.Error) as exc:  # ValueError: a NUL in the path
            raise StorageError(f"cannot open {where}: {exc}") from exc
        self._conn: sqlite3.Connection | None = conn
        try:
            if path is not None:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode != "wal":
                    raise StorageError(f"{where}: WAL journal mode is unavailable (got {mode!r})")
                conn.execute(f"PRAGMA synchronous={synchronous}")
                # Another process may hold the write lock briefly; wait rather than fail at once.
                conn.execute("PRAGMA busy_timeout=5000")
            # Deleted rows are overwritten with zeros, not left in free space (an erasure must erase).
            conn.execute("PRAGMA secure_delete=ON")
            self._configure(conn)
        except BaseException as exc:
            self.close()
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"cannot open {where}: {exc}") from exc
            raise

    def _configure(self, conn: sqlite3.Connection) -> None:
        """Subclasses create their schema here."""

    @contextmanager
    def access(self, action: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and turn any sqlite3 error into a :class:`StorageError` naming ``action``."""
        with self.lock:
            conn = self._conn
            if conn is None:
                raise StorageError(f"{self.label} {self.path} is closed")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StorageError(f"{self.label} {self.path}: {action} failed: {exc}") from exc

    @contextmanager
    def transaction(
        self, action: str, on_rollback: Callable[[], None] | None = None
    ) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on success, rolled back on any exception (then
        ``on_rollback`` runs, still under the lock, to undo in-memory state kept beside the rows)."""
        with self.access(action) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if on_rollback is not None:
                    on_rollback()
                raise

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file and truncate it to zero bytes, so rows
        deleted (and zeroed by ``secure_delete``) no longer survive in older frames of the log;
        whether it was emptied.

        A reader in another process can keep the log from being emptied; then the rows stay in it
        until the next checkpoint, and a warning says so. Nothing for an in-memory database.
        """
        if self.path is None:
            return True
        with self.access("checkpointing the write-ahead log") as conn:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            logger.warning("%s %s: the write-ahead log could not be emptied (another connection is reading); "
                           "deleted rows stay in it until the next checkpoint", self.label, self.path)
        return not busy

    def close(self) -> None:
        """Close the connection; further use raises :class:`StorageError`. Safe to call twice."""
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _Database(SqliteConnection):
    """The store's database: a durable connection and the schema, versioned, and the store's salt."""

    salt: bytes

    def _configure(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"sqlite store {self.path} has schema version {version}; this liverec reads up to {SCHEMA_VERSION}"
            )
        if version < SCHEMA_VERSION:
            with self.transaction("creating the schema"):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if version == 1:  # keys of version 1 are unsalted text hashes: a guess could be confirmed
                    conn.execute("DELETE FROM vectors")
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?)", (os.urandom(SALT_BYTES),))
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.salt = bytes(conn.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()[0])


# An event type's stored name by member: a dict lookup is cheaper than the enum's value property.
_TYPE_NAMES = {t: t.value for t in EventType}


def _event_row(event: Event) -> tuple[Any, ...]:
    return (
        event.event_id,
        event.user_id,
        _TYPE_NAMES[event.type],
        event.item_id,
        event.value,
        event.text,
        event.timestamp,
        event.session_id,
    )


@functools.lru_cache(maxsize=8)
def _insert_events_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows)
    return f"INSERT OR IGNORE INTO events ({_INSERT_COLUMNS}) VALUES {values}"


def _chunks(values: Sequence[T], size: int = _IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class SqliteEventLog(SqlEventReads):
    """The ``events`` table."""

    placeholder = "?"
    page_size = PAGE_SIZE
    lookback = 0  # one writer at a time: positions become visible in order

    def __init__(self, db: _Database) -> None:
        self._db = db

    def append(self, events: Sequence[Event]) -> int:
        rows = [_event_row(event) for event in check_events(events)]
        if not rows:
            return 0
        with self._db.transaction(f"appending {len(rows)} events") as conn:
            before = conn.total_changes
            for start in range(0, len(rows), _INSERT_ROWS):
                chunk = rows[start : start + _INSERT_ROWS]
                conn.execute(_insert_events_sql(len(chunk)), list(itertools.chain.from_iterable(chunk)))
            return conn.total_changes - before

    def existing(self, event_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._db.access("looking up event ids") as conn:
            for chunk in _chunks(list(event_ids)):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk)
                found.update(r[0] for r in rows)
        return found

    def get_many(self, event_ids: Iterable[str]) -> dict[str, Event]:
        found: dict[str, Event] = {}
        with self._db.access("reading events by id") as conn:
            for chunk in _chunks(list(dict.fromkeys(event_ids))):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id IN ({marks})", chunk)
                found.update((row[1], _event(row)) for row in rows)
        return found

    def by_user(self, user_id: str) -> list[Event]:
        with self._db.access(f"reading the events of user {user_id!r}") as conn:
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE user_id = ? ORDER BY ts, seq", (user_id,)
            ).fetchall()
        return [_event(row) for row in rows]

    def position(self) -> int:
        # One writer at a time: seq is taken in commit order, so no event below MAX(seq) commits later.
        with self._db.access("reading the log's position") as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def _rows_at(self, conn: Any, seqs: list[int]) -> list[Any]:
        rows: list[Any] = []
        for chunk in _chunks(seqs):
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq IN ({marks}) ORDER BY seq",
                                 chunk).fetchall()
        return rows

    def delete_user(self, user_id: str) -> int:
        with self._db.transaction(f"deleting the events of user {user_id!r}") as conn:
            removed: int = conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            if removed:
                # REPLACE gives a user erased again a new seq: an erasure is "since" every epoch before it.
                conn.execute("INSERT OR REPLACE INTO erasures (digest) VALUES (?)",
                             (erasure_digest(self._db.salt, user_id),))
            return removed

    def erasure_epoch(self) -> int:
        with self._db.access("reading the erasure epoch") as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM erasures").fetchone()[0])

    def erased_since(self, epoch: int, user_ids: Iterable[str]) -> set[str]:
        with self._db.access("reading erasures") as conn:
            digests = {bytes(row[0]) for row in conn.execute("SELECT digest FROM erasures WHERE seq > ?", (epoch,))}
        return erased_among(self._db.salt, digests, user_ids)

    def count(self) -> int:
        with self._db.access("counting events") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def users(self) -> list[str]:
        """User ids with at least one event, sorted."""
        with self._db.access("listing users") as conn:
            return [row[0] for row in conn.execute("SELECT DISTINCT user_id FROM events ORDER BY user_id")]


class SqliteCatalog:
    """The ``items`` table; an upsert keeps an item's first-insertion place."""

    def __init__(self, db: _Database) -> None:
        self._db = db

    def upsert(self, items: Sequence[Item]) -> int:
        rows = [(item.item_id, encode_item(item)) for item in items]
        if not rows:
            return 0
        with self._db.transaction(f"upserting {len(rows)} items") as conn:
            conn.executemany(
                "INSERT INTO items (item_id, data) VALUES (?, ?)"
                " ON CONFLICT (item_id) DO UPDATE SET data = excluded.data",
                rows,
            )
            _changed(conn, list(dict.fromkeys(item_id for item_id, _ in rows)))
        return len(rows)

    def changes_since(self, position: int | None) -> tuple[int, list[str] | None]:
        """See :func:`liverec.storage.sql_changes.changes_since`."""
        with self._db.access("reading catalog changes") as conn:
            return changes_since(conn, "?", position)

    def get(self, item_id: str) -> Item:
        with self._db.access(f"reading item {item_id!r}") as conn:
            row = conn.execute("SELECT data FROM items WHERE item_id = ?", (item_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"item {item_id!r} is not in the catalog", kind="item", key=item_id)
        return decode_item(row[0])

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Item]:
        wanted = list(dict.fromkeys(item_ids))
        found: dict[str, str] = {}
        with self._db.access("reading items") as conn:
            for chunk in _chunks(wanted):
                marks = ", ".join("?" * len(chunk))
                found.update(conn.execute(f"SELECT item_id, data FROM items WHERE item_id IN ({marks})", chunk))
        return {item_id: decode_item(found[item_id]) for item_id in wanted if item_id in found}

    def all(self) -> Iterator[Item]:
        """Every item in insertion order, fetched a page at a time."""
        after = 0
        while True:
            with self._db.access("reading items") as conn:
                rows = conn.execute(
                    "SELECT seq, data FROM items WHERE seq > ? ORDER BY seq LIMIT ?", (after, PAGE_SIZE)
                ).fetchall()
            for _, data in rows:
                yield decode_item(data)
            if len(rows) < PAGE_SIZE:
                return
            after = rows[-1][0]

    def delete(self, item_id: str) -> bool:
        with self._db.transaction(f"deleting item {item_id!r}") as conn:
            existed = conn.execute("DELETE FROM items WHERE item_id = ?", (item_id,)).rowcount > 0
            if existed:
                _changed(conn, [item_id])
            return existed

    def count(self) -> int:
        with self._db.access("counting items") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])


def _changed(conn: sqlite3.Connection, item_ids: list[str]) -> None:
    """Log a change of ``item_ids`` in the writing transaction (SQLite's one writer at a time keeps
    change numbers in commit order)."""
    conn.executemany("INSERT INTO item_changes (item_id) VALUES (?)", [(i,) for i in item_ids])
    newest = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    forget_old_changes(conn, "?", int(newest), len(item_ids))


class SqliteVectorCache:
    """The ``vectors`` table: float32 bytes keyed by (encoder, key)."""

    def __init__(self, db: _Database) -> None:
        self._db = db

    @property
    def key_salt(self) -> bytes:
        return self._db.salt

    def get_many(self, encoder: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(keys))
        rows: list[tuple[str, int, bytes]] = []
        with self._db.access(f"reading vectors of encoder {encoder!r}") as conn:
            for chunk in _chunks(wanted):
                marks = ", ".join("?" * len(chunk))
                rows.extend(
                    conn.execute(
                        f"SELECT key, dim, data FROM vectors WHERE encoder = ? AND key IN ({marks})", (encoder, *chunk)
                    )
                )
        found: dict[str, np.ndarray] = {}
        for key, dim, data in rows:
            if len(data) != 4 * dim:
                raise StorageError(
                    f"sqlite store {self._db.path}: vector {key!r} of encoder {encoder!r} holds {len(data)} bytes,"
                    f" not {dim} float32 values"
                )
            # A copy, because a vector over the fetched bytes would be read-only.
            found[key] = np.frombuffer(data, dtype=np.float32).copy()
        return {key: found[key] for key in wanted if key in found}

    def put_many(self, encoder: str, vectors: dict[str, np.ndarray]) -> None:
        rows = []
        for key, vector in vectors.items():
            array = as_vector(encoder, key, vector)
            rows.append((encoder, key, array.size, array.astype("<f4", copy=False).tobytes()))
        if not rows:
            return
        with self._db.transaction(f"writing {len(rows)} vectors of encoder {encoder!r}") as conn:
            conn.executemany("INSERT OR REPLACE INTO vectors (encoder, key, dim, data) VALUES (?, ?, ?, ?)", rows)

    def delete(self, keys: Sequence[str]) -> int:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return 0
        removed = 0
        with self._db.transaction(f"deleting {len(wanted)} vectors") as conn:
            for chunk in _chunks(wanted):
                marks = ", ".join("?" * len(chunk))
                removed += conn.execute(f"DELETE FROM vectors WHERE key IN ({marks})", chunk).rowcount
        return removed


def _file_of(url: str, rest: str) -> Path:
    """The database file a ``sqlite://`` URL names (``rest`` is what follows ``sqlite://``)."""
    # SQLAlchemy's convention: the path follows a third slash, so four slashes mean an absolute path.
    if not rest.startswith("/") or rest == "/":
        raise InvalidInputError(
            f"store URL {redact(url)!r} has no file path; expected sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db",
            field="url",
            value=redact(url),
        )
    path = rest[1:]
    if "\x00" in path:  # no file system takes it; Path and sqlite3 would raise a bare ValueError
        raise InvalidInputError(f"store URL {redact(url)!r} holds a NUL character", field="url", value=redact(url))
    if path == ":memory:":
        raise InvalidInputError(
            f"store URL {url!r} names no file; use memory:// for a store that is not kept", field="url", value=url
        )
    return Path(path)


def _location(path: Path) -> StoreLocation:
    # Side files share the database file's name as their stem: shop.db.models, shop.db.keys.db.
    return StoreLocation(url=f"sqlite:///{path}", directory=path.resolve().parent, name=path.name, shared=True)


def locate_url(url: str, rest: str) -> StoreLocation:
    """Where the store a ``sqlite://`` URL names lives, without opening (or creating) it."""
    return _location(_file_of(url, rest))


def exists_url(url: str, rest: str) -> bool:
    """Whether the database file a ``sqlite://`` URL names is there, creating nothing.

    Only a definite "no such file" is absence: a path that cannot be opened for another reason (a
    parent that is a file, no permission) counts as present, so opening it names the real problem.
    """
    try:
        _file_of(url, rest).stat()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def open_url(url: str, rest: str) -> SqliteStore:
    """Open (or create) the store a ``sqlite://`` URL names."""
    return SqliteStore(_file_of(url, rest))


class SqliteStore:
    """Events, items and vectors in one SQLite file; thread-safe behind one lock.

    Its feedback log and API keys live in SQLite files of their own beside it:
    ``<db>.feedback.db`` and ``<db>.keys.db``.

    Parameters
    ----------
    path
        The database file; it and its directory are created if missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._location = _location(self.path)
        self.url = self._location.url
        self._db = _Database(self.path)
        self.events: EventLog = SqliteEventLog(self._db)
        self.catalog: Catalog = SqliteCatalog(self._db)
        self.vectors: VectorCache = SqliteVectorCache(self._db)
        self.quarantine: Quarantine = SqlQuarantine(self._db, "?")
        self.snapshots: SnapshotIndex | None = None  # one process or one machine: CURRENT suffices
        try:
            if self._checkpointed() < self.events.erasure_epoch():
                self.checkpoint()  # an erasure was interrupted before its checkpoint
        except BaseException:
            self._db.close()
            raise

    @property
    def location(self) -> StoreLocation:
        return self._location

    def _side(self, suffix: str) -> Path:
        side = self._location.side(suffix)
        assert side is not None  # a file's directory is always known
        return side

    def feedback_log(self, path: Path | None = None) -> FeedbackLog:
        """The feedback log in ``<db>.feedback.db`` beside the store, or in ``path``."""
        from liverec.storage.sqlite_feedback import SqliteFeedbackLog

        return SqliteFeedbackLog(path if path is not None else self._side(".feedback.db"))

    def key_store(self, path: Path | None = None) -> KeyStore:
        """The API keys in ``<db>.keys.db`` beside the store (importing a ``<db>.keys.json`` of
        earlier versions into an empty one), or in ``path``."""
        from liverec.storage.sqlite_keys import SqliteKeyStore

        if path is not None:
            return SqliteKeyStore(path)
        return SqliteKeyStore(self._side(".keys.db"), legacy_json=self._side(".keys.json"))

    def checkpoint(self) -> None:
        """Empty the write-ahead log into the database file (see :meth:`SqliteConnection.checkpoint`).

        The erasure epoch it covers is recorded, so a store opened after a crash that came between
        an erasure and its checkpoint checkpoints at once.
        """
        epoch = self.events.erasure_epoch()
        if self._db.checkpoint() and self._checkpointed() < epoch:
            with self._db.transaction("recording the checkpoint") as conn:
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('checkpointed_epoch', ?)", (epoch,))

    def _checkpointed(self) -> int:
        with self._db.access("reading the last checkpoint") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'checkpointed_epoch'").fetchone()
        return int(row[0]) if row is not None else 0

    def close(self) -> None:
        """Close the connection; any later call raises :class:`StorageError`. Closing twice is harmless."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

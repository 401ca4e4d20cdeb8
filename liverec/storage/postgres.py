"""A store in PostgreSQL: the event log, catalog, vector cache, erasures, feedback log and API keys
of every API worker, on one or many machines, in one database its operators already run.

URL (``postgres://`` is accepted too; libpq's own parameters such as ``sslmode`` or
``connect_timeout`` pass through)::

    postgresql://user:password@host:5432/database?schema=liverec&snapshots=/srv/liverec&pool=8

* ``schema`` — the PostgreSQL schema holding the tables (default ``liverec``), so several stores
  share one database; it is created if missing.
* ``snapshots`` — the directory model snapshots go to (``<directory>/<database>.<schema>.models``),
  which every worker must be able to read: a shared mount when workers run on several machines.
  Default ``~/.local/share/liverec/<host>-<port>-<database>``. The seam for object storage is
  :class:`~liverec.storage.base.StoreLocation`: snapshots are read and written only through its path.
* ``pool`` — connections this process keeps open (default 8).

Writes are acknowledged only after ``COMMIT``; every read and write borrows a pooled connection
checked before use, so a database that went away and came back is reconnected to without a
restart, and while it is away every call fails with :class:`~liverec.core.errors.StorageError`
(HTTP 503). Schema changes are numbered migrations per component (``store``, ``feedback``,
``keys``), applied at open under an advisory lock, so workers starting together migrate once.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import numpy as np

from liverec.core.errors import ConflictError, InvalidInputError, NotFoundError, StorageError
from liverec.core.redact import redact
from liverec.core.types import Event, EventType, Item
from liverec.storage.base import Catalog, EventLog, FeedbackLog, KeyStore, SnapshotIndex, StoreLocation, VectorCache
from liverec.storage.codecs import as_vector, check_events, decode_item, encode_item, erased_among, erasure_digest
from liverec.storage.quarantine import SQL_SCHEMA as QUARANTINE_SCHEMA
from liverec.storage.quarantine import Quarantine, SqlQuarantine
from liverec.storage.sql_changes import changes_since, forget_old_changes
from liverec.storage.sql_events import EVENT_COLUMNS as _EVENT_COLUMNS
from liverec.storage.sql_events import INSERT_COLUMNS as _INSERT_COLUMNS
from liverec.storage.sql_events import SqlEventReads
from liverec.storage.sql_events import event_from_row as _event

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_POOL", "DEFAULT_SCHEMA", "PostgresDatabase", "PostgresStore", "PostgresUrl", "check_storable",
           "database_for", "migrate"]

DEFAULT_SCHEMA = "liverec"
DEFAULT_POOL = 8
# Seconds a call waits for a connection (all busy, or the server unreachable) before it fails with
# StorageError (HTTP 503): long enough to ride out a burst, short enough for a client to hear of an outage.
BORROW_TIMEOUT = 5.0
PAGE_SIZE = 5000
# Log positions read again by PostgresEventLog.since: an insert commits well within this many later ones.
LOOKBACK = 2000  # rows per page when streaming events or items: a few MB, one round trip each
SALT_BYTES = 32
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # an unquoted identifier, so no quoting surprises
_OWN_PARAMETERS = ("schema", "snapshots", "pool")


class PostgresUrl:
    """A ``postgresql://`` store URL taken apart: the libpq connection string and liverec's own parameters.

    >>> url = PostgresUrl("postgresql://ann:pw@db:5433/shop?schema=eu&sslmode=require&pool=4")
    >>> url.conninfo, url.schema, url.pool, url.database
    ('postgresql://ann:pw@db:5433/shop?sslmode=require', 'eu', 4, 'shop')
    >>> PostgresUrl("postgres://127.0.0.1/test").location.side(".models").name
    'test.liverec.models'
    """

    def __init__(self, url: str) -> None:
        shown = redact(url)

        def bad(why: str) -> InvalidInputError:
            return InvalidInputError(f"store URL {shown!r} {why}", field="url", value=shown)

        if "\x00" in url:
            raise bad("holds a NUL character")
        try:
            parts = urlsplit(url)
            port = parts.port or 5432
        except ValueError as exc:
            raise bad(f"is not a PostgreSQL URL: {exc}") from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {key: value for key, value in query if key in _OWN_PARAMETERS}
        passed = [(key, value) for key, value in query if key not in _OWN_PARAMETERS]
        self.url = url
        self.database = unquote(parts.path.lstrip("/")) or os.environ.get("PGDATABASE", "") or (parts.username or "")
        if not self.database:
            raise bad("names no database; expected postgresql://host:5432/database")
        self.schema = own.get("schema", DEFAULT_SCHEMA)
        if _SCHEMA_NAME.fullmatch(self.schema) is None:
            raise bad(f"has schema={self.schema!r}; a schema name is lower-case letters, digits and _ (at most 63)")
        pool = own.get("pool", str(DEFAULT_POOL))
        if not pool.isdigit() or not 1 <= int(pool) <= 1000:
            raise bad(f"has pool={pool!r}; expected the number of connections to keep, 1 to 1000")
        self.pool = int(pool)
        host = parts.hostname or "localhost"
        directory = own.get("snapshots") or str(Path.home() / ".local" / "share" / "liverec" / f"{host}-{port}-"
                                                 f"{self.database}")
        # The scheme libpq knows, with liverec's own parameters left out (libpq refuses unknown ones).
        self.conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(passed), parts.fragment))
        self.location = StoreLocation(url=url, directory=Path(directory).expanduser().resolve(),
                                      name=f"{self.database}.{self.schema}", shared=True)


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:  # an optional extra: say how to get it
        raise StorageError(
            f"the PostgreSQL store needs psycopg 3 and psycopg-pool ({exc}); install liverec[postgres]"
        ) from None
    return psycopg, psycopg_pool


class PostgresDatabase:
    """A pool of connections to one schema, with every driver error turned into a :class:`StorageError`
    naming what was being done. Shared by the store, its feedback log and its key store.

    Parameters
    ----------
    url
        The parsed store URL.
    label
        What the database holds, for messages: ``"postgresql store"``, ``"feedback log"``.
    """

    def __init__(self, url: PostgresUrl, label: str = "postgresql store", *, wait: float = 10.0,
                 max_size: int | None = None) -> None:
        psycopg, psycopg_pool = _driver()
        self.url = url
        self.label = label
        self._psycopg = psycopg
        self.errors: tuple[type[BaseException], ...] = (psycopg.Error, psycopg_pool.PoolTimeout)
        self._data_error = psycopg.DataError
        self._owner = True
        self.where = f"{label} {redact(url.url)}"
        schema = url.schema
        self.channel = f"liverec_{schema}"  # what NOTIFY wakes the workers of this schema on

        def configure(conn: Any) -> None:
            conn.execute(f"SET search_path TO {schema}")  # a checked identifier (_SCHEMA_NAME)

        kwargs: dict[str, Any] = {"autocommit": True}
        if "application_name=" not in url.conninfo:  # what pg_stat_activity shows an operator
            kwargs["application_name"] = f"liverec-{schema}"
        self._create_schema()
        try:
            self._pool = psycopg_pool.ConnectionPool(
                url.conninfo, min_size=1, max_size=min(url.pool, max_size or url.pool), kwargs=kwargs,
                configure=configure,
                check=psycopg_pool.ConnectionPool.check_connection, timeout=BORROW_TIMEOUT, open=True,
                name=f"liverec-{label}",
            )
            self._pool.wait(timeout=wait)
        except self.errors as exc:
            raise StorageError(f"cannot open {self.where}: {_message(exc)}") from None
        self._closed = False

    def _create_schema(self) -> None:
        try:
            with self.connect("creating the schema", prefix="cannot open") as conn:
                exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.url.schema,)).fetchone()
                if exists is None:
                    # IF NOT EXISTS still races another worker's creation (a unique violation): serialise.
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(f"{self.url.schema}/schema"),))
                        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.url.schema}")
        except self.errors as exc:
            raise StorageError(f"cannot open {self.where}: {_message(exc)}") from None

    def connect(self, action: str, timeout: int = 10, prefix: str = "") -> Any:
        """A connection of its own, outside the pool (autocommit), for what must hold one for long:
        a session lock, ``LISTEN``. The caller closes it. :class:`StorageError` naming ``action``."""
        try:
            return self._psycopg.connect(self.url.conninfo, autocommit=True, connect_timeout=timeout)
        except self._psycopg.Error as exc:
            if prefix:
                raise StorageError(f"{prefix} {self.where}: {_message(exc)}") from None
            raise StorageError(f"{self.where}: {action} failed: {_message(exc)}") from None

    def share(self, label: str) -> PostgresDatabase:
        """This pool for another part of the store (the feedback log, the key store), named
        ``label`` in messages: one pool per process, and closing the share leaves the pool open."""
        shared = copy.copy(self)
        shared.label, shared.where, shared._owner = label, f"{label} {redact(self.url.url)}", False
        return shared

    @contextmanager
    def access(self, action: str) -> Iterator[Any]:
        """A pooled connection (autocommit); any driver error becomes a :class:`StorageError` naming ``action``."""
        if self._closed:
            raise StorageError(f"{self.where} is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except self._data_error as exc:
            raise InvalidInputError(f"{self.label}: {action} refused: {_message(exc)}", field="text",
                                    value=None) from None
        except self.errors as exc:
            raise StorageError(f"{self.where}: {action} failed: {_message(exc)}") from None

    @contextmanager
    def transaction(self, action: str) -> Iterator[Any]:
        """One transaction: committed when the block ends (the call returns only after ``COMMIT``),
        rolled back on any exception."""
        with self.access(action) as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        """Close every pooled connection (a share only stops using them); further use raises
        :class:`StorageError`. Safe to call twice."""
        if not self._closed:
            self._closed = True
            if self._owner:
                self._pool.close()


def database_for(where: PostgresUrl | PostgresDatabase, label: str, max_size: int | None = None) -> PostgresDatabase:
    """``where``'s pool shared under ``label`` (the store's own), or a pool of its own for a URL."""
    if isinstance(where, PostgresDatabase):
        return where.share(label)
    return PostgresDatabase(where, label, max_size=max_size)


def _message(exc: BaseException) -> str:
    return redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def migrate(db: PostgresDatabase, component: str, migrations: Sequence[str],
            after: Callable[[Any], None] | None = None) -> int:
    """Apply the ``migrations`` of ``component`` not yet applied (number ``n`` is ``migrations[n-1]``),
    each in the same transaction as its record in ``schema_migrations``; the version now in force.

    An advisory lock serialises workers that start together; a schema newer than this liverec
    knows is refused rather than written to. ``after`` runs in the same transaction (seed rows).
    """
    with db.transaction(f"migrating the {component} schema") as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(f"{db.url.schema}/migrate"),))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL,"
                     " applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (component, version))")
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = %s",
                           (component,)).fetchone()
        version = int(row[0])
        if version > len(migrations):
            raise StorageError(f"{db.where}: the {component} schema is at version {version}; "
                               f"this liverec knows up to {len(migrations)}")
        for number, statements in enumerate(migrations[version:], start=version + 1):
            for statement in statements.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (component, version) VALUES (%s, %s)", (component, number))
        if after is not None:
            after(conn)
    return len(migrations)


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (stable across processes and machines)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


# Version n of the store's schema is _MIGRATIONS[n - 1]; never edit one that has shipped, add one.
_MIGRATIONS = [
    """
    CREATE TABLE events (
        seq BIGSERIAL PRIMARY KEY,
        event_id TEXT UNIQUE NOT NULL,
        user_id TEXT NOT NULL,
        type TEXT NOT NULL,
        item_id TEXT,
        value DOUBLE PRECISION,
        text TEXT,
        ts DOUBLE PRECISION NOT NULL,
        session_id TEXT
    );
    CREATE INDEX events_user_time ON events (user_id, ts, seq);
    CREATE INDEX events_time ON events (ts, seq);
    CREATE TABLE items (seq BIGSERIAL PRIMARY KEY, item_id TEXT UNIQUE NOT NULL, data TEXT NOT NULL);
    CREATE TABLE vectors (encoder TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL, data BYTEA NOT NULL,
                          PRIMARY KEY (encoder, key));
    CREATE INDEX vectors_key ON vectors (key);
    CREATE TABLE erasures (seq BIGSERIAL PRIMARY KEY, digest BYTEA UNIQUE NOT NULL);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL)
    """,
    # Every catalog write is logged, so other workers load what changed (PostgresCatalog.changes_since).
    "CREATE TABLE item_changes (seq BIGSERIAL PRIMARY KEY, item_id TEXT NOT NULL)",
    # Users and events cleaning keeps out of learning (liverec.storage.quarantine).
    QUARANTINE_SCHEMA + "CREATE TABLE quarantine_changes (seq BIGSERIAL PRIMARY KEY)",
]


# One statement per batch, whatever its size: the columns travel as eight arrays (binary), and the
# rows are inserted in array order, so arrival order (seq) is the batch's order.
_APPEND = (f"INSERT INTO events ({_INSERT_COLUMNS}) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[],"
           " %s::text[], %s::float8[], %s::text[], %s::float8[], %s::text[]) ON CONFLICT (event_id) DO NOTHING")
_TYPE_NAMES = {t: t.value for t in EventType}


def check_storable(field: str, values: Iterable[str | None]) -> None:
    """Refuse, naming ``field``, text PostgreSQL cannot hold: a NUL character or a lone surrogate
    (SQLite holds both, so an id valid elsewhere can be refused here, before anything is stored)."""
    for value in values:
        if value is None:
            continue
        if "\x00" in value:
            raise InvalidInputError(f"{field} {value[:40]!r} holds a NUL character, which PostgreSQL text cannot "
                                    "hold", field=field, value=value[:40])
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInputError(f"{field} {value[:40]!r} is not valid Unicode (a lone surrogate)",
                                        field=field, value=value[:40]) from None


class PostgresEventLog(SqlEventReads):
    """The ``events`` table."""

    placeholder = "%s"
    page_size = PAGE_SIZE
    lookback = LOOKBACK  # transactions take seq at insert and commit in any order

    def __init__(self, db: PostgresDatabase, salt: bytes) -> None:
        self._db = db
        self._salt = salt
        self._arrivals = _lock_key(f"{db.url.schema}/arrivals")

    def append(self, events: Sequence[Event]) -> int:
        batch = check_events(events)
        if not batch:
            return 0
        columns: list[list[Any]] = [[e.event_id for e in batch], [e.user_id for e in batch],
                                    [_TYPE_NAMES[e.type] for e in batch], [e.item_id for e in batch],
                                    [e.value for e in batch], [e.text for e in batch],
                                    [e.timestamp for e in batch], [e.session_id for e in batch]]
        for column, field in ((0, "event_id"), (1, "user_id"), (3, "item_id"), (5, "text"), (7, "session_id")):
            check_storable(field, columns[column])
        with self._db.transaction(f"appending {len(batch)} events") as conn:
            # Shared with every other append, exclusive with :meth:`position`: see there.
            conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (self._arrivals,))
            return int(conn.execute(_APPEND, columns).rowcount)

    def existing(self, event_ids: Sequence[str]) -> set[str]:
        wanted = list(event_ids)
        if not wanted:
            return set()
        with self._db.access("looking up event ids") as conn:
            rows = conn.execute("SELECT event_id FROM events WHERE event_id = ANY(%s)", (wanted,)).fetchall()
        return {row[0] for row in rows}

    def get_many(self, event_ids: Iterable[str]) -> dict[str, Event]:
        wanted = list(dict.fromkeys(event_ids))
        if not wanted:
            return {}
        with self._db.access("reading events by id") as conn:
            rows = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ANY(%s)", (wanted,)).fetchall()
        return {row[1]: _event(row) for row in rows}

    def by_user(self, user_id: str) -> list[Event]:
        with self._db.access(f"reading the events of user {user_id!r}") as conn:
            rows = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE user_id = %s ORDER BY ts, seq",
                                (user_id,)).fetchall()
        return [_event(row) for row in rows]

    def position(self) -> int:
        """Transactions take seq at insert and commit in any order, so MAX(seq) alone could stand
        above an event that commits later. Appends hold a shared lock until they commit; this
        takes it exclusively, so it waits for every append in flight, and every later one numbers
        its events above what it reads."""
        with self._db.transaction("reading the log's position") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._arrivals,))
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def delete_user(self, user_id: str) -> int:
        with self._db.transaction(f"deleting the events of user {user_id!r}") as conn:
            # Erasures take their seq in commit order (one at a time), so a reader that saw epoch n
            # can never later find an erasure numbered below n committed after its read.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(f"{self._db.url.schema}/erasures"),))
            removed = int(conn.execute("DELETE FROM events WHERE user_id = %s", (user_id,)).rowcount)
            if removed:
                conn.execute(
                    "INSERT INTO erasures (digest) VALUES (%s) ON CONFLICT (digest)"
                    " DO UPDATE SET seq = nextval(pg_get_serial_sequence('erasures', 'seq'))",
                    (erasure_digest(self._salt, user_id),),
                )
                conn.execute("SELECT pg_notify(%s, 'erasures')", (self._db.channel,))
            return removed

    def _rows_at(self, conn: Any, seqs: list[int]) -> list[Any]:
        return list(conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq = ANY(%s) ORDER BY seq",
                                 (seqs,)).fetchall())

    def erasure_epoch(self) -> int:
        with self._db.access("reading the erasure epoch") as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM erasures").fetchone()[0])

    def erased_since(self, epoch: int, user_ids: Iterable[str]) -> set[str]:
        with self._db.access("reading erasures") as conn:
            digests = {bytes(row[0]) for row in conn.execute("SELECT digest FROM erasures WHERE seq > %s", (epoch,))}
        return erased_among(self._salt, digests, user_ids)

    def count(self) -> int:
        with self._db.access("counting events") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def users(self) -> list[str]:
        """User ids with at least one event, sorted (byte order, as SQLite sorts them)."""
        with self._db.access("listing users") as conn:
            rows = conn.execute('SELECT DISTINCT user_id COLLATE "C" AS u FROM events ORDER BY u').fetchall()
        return [row[0] for row in rows]


class PostgresCatalog:
    """The ``items`` table; an upsert keeps an item's first-insertion place."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    def upsert(self, items: Sequence[Item]) -> int:
        rows = [(item.item_id, encode_item(item)) for item in items]
        if not rows:
            return 0
        # ON CONFLICT may not touch one row twice in a statement: the last version of an id wins,
        # at the place of its first (what SQLite's row-by-row upsert gives).
        latest = dict(rows)
        check_storable("item_id", latest)
        check_storable("item", latest.values())
        with self._db.transaction(f"upserting {len(rows)} items") as conn:
            conn.execute(
                "INSERT INTO items (item_id, data) SELECT * FROM unnest(%s::text[], %s::text[])"
                " ON CONFLICT (item_id) DO UPDATE SET data = excluded.data",
                (list(latest), list(latest.values())),
            )
            self._changed(conn, list(latest))
        return len(rows)

    def _changed(self, conn: Any, item_ids: list[str]) -> None:
        """Log a change of ``item_ids`` in the writing transaction and wake the other workers at its commit.

        Catalog writes take a lock for the rest of their transaction, so change numbers are given
        in commit order and a reader that has seen number n never later finds one below it.
        """
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(f"{self._db.url.schema}/catalog"),))
        seq = conn.execute("INSERT INTO item_changes (item_id) SELECT unnest(%s::text[]) RETURNING seq",
                           (item_ids,)).fetchall()[-1][0]
        forget_old_changes(conn, "%s", seq, len(item_ids))
        conn.execute("SELECT pg_notify(%s, 'items')", (self._db.channel,))

    def changes_since(self, position: int | None) -> tuple[int, list[str] | None]:
        """See :func:`liverec.storage.sql_changes.changes_since`."""
        with self._db.access("reading catalog changes") as conn:
            return changes_since(conn, "%s", position)

    def get(self, item_id: str) -> Item:
        with self._db.access(f"reading item {item_id!r}") as conn:
            row = conn.execute("SELECT data FROM items WHERE item_id = %s", (item_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"item {item_id!r} is not in the catalog", kind="item", key=item_id)
        return decode_item(row[0])

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Item]:
        wanted = list(dict.fromkeys(item_ids))
        if not wanted:
            return {}
        with self._db.access("reading items") as conn:
            found = dict(conn.execute("SELECT item_id, data FROM items WHERE item_id = ANY(%s)", (wanted,)).fetchall())
        return {item_id: decode_item(found[item_id]) for item_id in wanted if item_id in found}

    def all(self) -> Iterator[Item]:
        after = 0
        while True:
            with self._db.access("reading items") as conn:
                rows = conn.execute("SELECT seq, data FROM items WHERE seq > %s ORDER BY seq LIMIT %s",
                                    (after, PAGE_SIZE)).fetchall()
            for _, data in rows:
                yield decode_item(data)
            if len(rows) < PAGE_SIZE:
                return
            after = rows[-1][0]

    def delete(self, item_id: str) -> bool:
        with self._db.transaction(f"deleting item {item_id!r}") as conn:
            existed = int(conn.execute("DELETE FROM items WHERE item_id = %s", (item_id,)).rowcount) > 0
            if existed:
                self._changed(conn, [item_id])
            return existed

    def count(self) -> int:
        with self._db.access("counting items") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])


class PostgresVectorCache:
    """The ``vectors`` table: float32 bytes keyed by (encoder, key)."""

    def __init__(self, db: PostgresDatabase, salt: bytes) -> None:
        self._db = db
        self._salt = salt

    @property
    def key_salt(self) -> bytes:
        return self._salt

    def get_many(self, encoder: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        with self._db.access(f"reading vectors of encoder {encoder!r}") as conn:
            rows = conn.execute("SELECT key, dim, data FROM vectors WHERE encoder = %s AND key = ANY(%s)",
                                (encoder, wanted)).fetchall()
        found: dict[str, np.ndarray] = {}
        for key, dim, data in rows:
            if len(data) != 4 * dim:
                raise StorageError(f"{self._db.where}: vector {key!r} of encoder {encoder!r} holds {len(data)} bytes,"
                                   f" not {dim} float32 values")
            found[key] = np.frombuffer(data, dtype="<f4").astype(np.float32)  # a writable copy
        return {key: found[key] for key in wanted if key in found}

    def put_many(self, encoder: str, vectors: dict[str, np.ndarray]) -> None:
        keys, dims, blobs = [], [], []
        for key, vector in vectors.items():
            array = as_vector(encoder, key, vector)
            keys.append(key)
            dims.append(array.size)
            blobs.append(array.astype("<f4", copy=False).tobytes())
        if not keys:
            return
        with self._db.transaction(f"writing {len(keys)} vectors of encoder {encoder!r}") as conn:
            conn.execute(
                "INSERT INTO vectors (encoder, key, dim, data) SELECT %s, * FROM unnest(%s::text[], %s::int[],"
                " %s::bytea[]) ON CONFLICT (encoder, key) DO UPDATE SET dim = excluded.dim, data = excluded.data",
                (encoder, keys, dims, blobs),
            )

    def delete(self, keys: Sequence[str]) -> int:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return 0
        with self._db.transaction(f"deleting {len(wanted)} vectors") as conn:
            return int(conn.execute("DELETE FROM vectors WHERE key = ANY(%s)", (wanted,)).rowcount)


def _seed_salt(conn: Any) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES ('salt', %s) ON CONFLICT (key) DO NOTHING",
                 (os.urandom(SALT_BYTES),))


def locate_url(url: str, rest: str) -> StoreLocation:
    """Where a ``postgresql://`` store keeps its side files, without connecting."""
    return PostgresUrl(url).location


def open_url(url: str, rest: str) -> PostgresStore:
    """Open (creating the schema and tables if missing) the store a ``postgresql://`` URL names."""
    return PostgresStore(url)


class PostgresStore:
    """Events, items, vectors, erasures, the feedback log, API keys and the model snapshots' manifests
    in one PostgreSQL schema.

    Safe to share between threads and processes: every call borrows a pooled connection, and
    every write is one transaction.
    """

    def __init__(self, url: str) -> None:
        self._url = PostgresUrl(url)
        self.url = url
        self._db = PostgresDatabase(self._url)
        try:
            migrate(self._db, "store", _MIGRATIONS, after=_seed_salt)
            with self._db.access("reading the store's salt") as conn:
                salt = bytes(conn.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()[0])
            from liverec.storage.postgres_snapshots import PostgresSnapshotIndex  # it imports this module

            snapshots = PostgresSnapshotIndex(self._db)
        except BaseException:
            self._db.close()
            raise
        self._listening = threading.Lock()
        self._listener: threading.Thread | None = None
        self._announced = threading.Event()
        self._stopping = threading.Event()
        self.events: EventLog = PostgresEventLog(self._db, salt)
        self.catalog: Catalog = PostgresCatalog(self._db)
        self.vectors: VectorCache = PostgresVectorCache(self._db, salt)
        self.quarantine: Quarantine = SqlQuarantine(self._db, "%s")
        self.snapshots: SnapshotIndex | None = snapshots

    @property
    def location(self) -> StoreLocation:
        return self._url.location

    @property
    def database(self) -> PostgresDatabase:
        """The connection pool (the store's feedback log and key store use it too)."""
        return self._db

    def feedback_log(self, path: Path | None = None) -> FeedbackLog:
        """The feedback log in this database, or in the SQLite file ``path``."""
        if path is not None:
            from liverec.storage.sqlite_feedback import SqliteFeedbackLog

            return SqliteFeedbackLog(path)
        from liverec.storage.postgres_feedback import PostgresFeedbackLog

        return PostgresFeedbackLog(self._db)

    def key_store(self, path: Path | None = None) -> KeyStore:
        """The API keys in this database, or in the SQLite file ``path``."""
        if path is not None:
            from liverec.storage.sqlite_keys import SqliteKeyStore

            return SqliteKeyStore(path)
        from liverec.storage.postgres_keys import PostgresKeyStore

        return PostgresKeyStore(self._db)

    def notify(self, what: str) -> None:
        """Wake every worker of this store (:meth:`wait_for_change`): ``what`` changed (``snapshot``)."""
        with self._db.access(f"announcing a {what} change") as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (self._db.channel, what))

    def wait_for_change(self, timeout: float) -> bool:
        """Block until a worker of this store changes the catalog, erases a user or announces a
        snapshot (``NOTIFY``), or ``timeout`` seconds pass; whether something was announced.

        A thread of this store listens on a connection of its own, reconnecting when the server
        goes away; after each (re)connection it reports a change, since one may have been missed.
        Callers still check versions themselves: a notification is a hint to look now.
        """
        with self._listening:
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="liverec-listen", daemon=True)
                self._listener.start()
        woke = self._announced.wait(timeout)
        self._announced.clear()
        return woke

    def _listen(self) -> None:
        failures: tuple[type[BaseException], ...] = (StorageError, *self._db.errors)
        while not self._stopping.is_set():
            try:
                with self._db.connect("listening for changes", timeout=5) as conn:
                    conn.execute(f"LISTEN {self._db.channel}")
                    self._announced.set()
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self._announced.set()
            except failures as exc:
                logger.warning("%s: listening for changes failed (%s); retrying", self._db.where, _message(exc))
                self._stopping.wait(1.0)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the store-wide lock ``name`` (every process and machine of this store) for the block:
        a session advisory lock on a connection of its own, released when the block ends or the
        process dies. :class:`ConflictError` at once when another process holds it."""
        key = _lock_key(f"{self._url.schema}/{name}")
        conn = self._db.connect(f"taking the {name} lock")
        try:
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                raise ConflictError(f"another process of this store holds the {name} lock (is a {name} running?)")
            yield
        finally:
            conn.close()  # ends the session, so the lock goes with it

    def checkpoint(self) -> None:
        """After an erasure: ``VACUUM`` the tables rows were deleted from, so the dead rows' space is
        reclaimed for reuse rather than left as it was (PostgreSQL's own WAL and backups are the
        operator's to rotate: docs/deployment.md)."""
        with self._db.access("vacuuming after an erasure") as conn:
            conn.execute("VACUUM events")
            conn.execute("VACUUM vectors")

    def close(self) -> None:
        """Close the pool; any later call raises :class:`StorageError`. Closing twice is harmless."""
        self._stopping.set()
        self._db.close()

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

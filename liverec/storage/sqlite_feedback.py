"""The feedback log in a SQLite file of its own, beside the store (``<db>.feedback.db``).

Served lists are written in the background, in batches (:meth:`SqliteFeedbackLog.serve_later`):
a recommendation request only queues its list, and a writer thread commits the queue every
:data:`FLUSH_SECONDS` in one transaction. Every read and every feedback report flushes the
queue first, so nothing queued is ever missing from an answer; a crash loses at most the lists
of the last flush interval (their counts of served requests, never a reported click).

Schema (created if missing)::

    served(seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT UNIQUE, variant, user_id, ts)
    served_items(seq, position, item_id)        feedback(seq, item_id, kind)
    variants(name PRIMARY KEY, first_seen, requests, impressions, clicks)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from liverec.storage.feedback import (
    DEFAULT_CAPACITY,
    FLUSH_ROWS,
    FLUSH_SECONDS,
    BatchedLog,
    FeedbackResult,
    ServedList,
    ServedQueue,
    VariantCounts,
    check_capacity,
    check_feedback,
    check_text,
    conflicting_list,
    reported_items,
    served_list,
    unknown_request,
)
from liverec.storage.sqlite import SqliteConnection

__all__ = ["FLUSH_ROWS", "FLUSH_SECONDS", "SqliteFeedbackLog"]

# ``served`` holds the newest ``capacity`` lists, keyed by an ever-growing seq so eviction is a
# range delete on every table. ``variants`` holds running totals, so evicting a list forgets
# only its item ids, never what it contributed to the stats.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS served (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT UNIQUE NOT NULL,
    variant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS served_user ON served (user_id);
CREATE TABLE IF NOT EXISTS served_items (
    seq INTEGER NOT NULL,
    position INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (seq, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (seq, item_id, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS variants (
    name TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    impressions INTEGER NOT NULL DEFAULT 0,
    clicks INTEGER NOT NULL DEFAULT 0
);
"""


class SqliteFeedbackLog(BatchedLog):
    """Which variant served which list, and the impressions and clicks reported on those lists,
    in a SQLite file so counts and served lists survive a restart.

    Parameters
    ----------
    path
        The database file; it and its directory are created if missing.
    capacity
        How many served lists are remembered for feedback. Past it the oldest are forgotten and
        feedback on them is :class:`NotFoundError`; their counts stay in the totals. Reopening
        with a smaller capacity evicts at once.

    Safe to share between threads: one connection behind one lock, as in ``liverec.storage.sqlite``.
    Every sqlite3 failure surfaces as :class:`StorageError`, and a failed call counts nothing.
    """

    _db: SqliteConnection

    def __init__(self, path: str | Path, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = check_capacity(capacity)
        self.path = Path(path)
        self._served = 0  # rows in ``served``, kept here so eviction needs no COUNT(*) per request
        # NORMAL in WAL mode survives a crash of this process and loses at most the last few
        # commits on power loss: fine for counters, and a click costs no fsync.
        self._db = SqliteConnection(self.path, "feedback log", synchronous="NORMAL")
        self._queue = ServedQueue(self._write_batch)
        try:
            with self._transaction("creating the schema") as c:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
                self._served = c.execute("SELECT COUNT(*) FROM served").fetchone()[0]
                self._evict(c)  # reopened with a smaller capacity
        except BaseException:
            self.close()
            raise

    # -- plumbing

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; on rollback the count of ``served`` rows rolls back with them."""
        saved: list[int] = []

        def restore() -> None:
            if saved:
                self._served = saved[0]

        with self._db.transaction(action, on_rollback=restore) as conn:
            saved.append(self._served)  # read under the lock, as restore runs
            yield conn

    def _evict(self, conn: sqlite3.Connection) -> None:
        excess = self._served - self.capacity
        if excess <= 0:
            return
        keep_from = conn.execute("SELECT seq FROM served ORDER BY seq LIMIT 1 OFFSET ?", (excess,)).fetchone()[0]
        for table in ("served", "served_items", "feedback"):
            conn.execute(f"DELETE FROM {table} WHERE seq < ?", (keep_from,))
        self._served -= excess

    # -- writes

    def record_served(
        self, request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None = None
    ) -> None:
        """Remember that ``variant`` served ``item_ids`` to ``user_id`` as request ``request_id``, now.

        Recording the same request again with the same content is a no-op (a retried write);
        with other content it is a :class:`ConflictError`, since feedback already counted against
        the first list would no longer match.
        """
        row = served_list(request_id, variant, user_id, item_ids, ts)
        self.flush()
        with self._transaction(f"recording request {request_id!r}") as conn:
            self._write(conn, row, strict=True)

    def serve_later(
        self, request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None = None
    ) -> None:
        """:meth:`record_served` in the background: checked now, written with the next batch.

        For the request path, where a list is recorded on every recommendation. A request id
        recorded twice with other content is dropped at the write (ids are the service's own
        uuids, so that only happens on a bug), never failing the batch it is in.
        """
        self._queue.put(served_list(request_id, variant, user_id, item_ids, ts))

    def _write_batch(self, rows: list[ServedList]) -> None:
        with self._transaction(f"recording {len(rows)} served lists") as conn:
            for row in rows:
                self._write(conn, row, strict=False)

    def _write(self, conn: sqlite3.Connection, row: ServedList, strict: bool) -> None:
        request_id, variant, user_id, items, when = row
        found = conn.execute("SELECT seq, variant, user_id FROM served WHERE request_id = ?",
                             (request_id,)).fetchone()
        if found is not None:
            if strict and (found[1], found[2], self._items(conn, found[0])) != (variant, user_id, items):
                raise conflicting_list(request_id)
            return
        seq = conn.execute("INSERT INTO served (request_id, variant, user_id, ts) VALUES (?, ?, ?, ?)",
                           (request_id, variant, user_id, when)).lastrowid
        conn.executemany("INSERT INTO served_items (seq, position, item_id) VALUES (?, ?, ?)",
                         [(seq, pos, item) for pos, item in enumerate(items)])
        conn.execute(
            "INSERT INTO variants (name, first_seen, requests) VALUES (?, ?, 1)"
            " ON CONFLICT (name) DO UPDATE SET requests = requests + 1",
            (variant, seq),
        )
        self._served += 1
        self._evict(conn)

    @staticmethod
    def _items(conn: sqlite3.Connection, seq: int) -> list[str]:
        return [r[0] for r in conn.execute("SELECT item_id FROM served_items WHERE seq = ? ORDER BY position", (seq,))]

    def record(self, request_id: str, kind: str, item_ids: Sequence[str] | None = None) -> FeedbackResult:
        """Count impressions or clicks on items of a served list.

        Parameters
        ----------
        kind
            ``impression`` (the items were shown) or ``click``. A click also counts its item's
            impression, since a client may report only the click.
        item_ids
            The items concerned, all from the served list. ``None`` with an impression means
            the whole list was shown; a click must name its items.

        Each (request, item, kind) counts once, so a retried report changes nothing and returns
        zeros. Nothing is counted unless the whole report is valid.

        Raises
        ------
        NotFoundError
            ``kind='request'``: the request was never recorded, or has been evicted.
        InvalidInputError
            ``field='type'`` for an unknown kind, ``field='item_ids'`` for items not served.
        """
        wanted = check_feedback(request_id, kind, item_ids)
        self.flush()
        with self._transaction(f"recording {kind} on request {request_id!r}") as conn:
            row = conn.execute("SELECT seq, variant, user_id FROM served WHERE request_id = ?",
                               (request_id,)).fetchone()
            if row is None:
                raise unknown_request(request_id)
            seq, variant, user_id = row
            items = reported_items(request_id, self._items(conn, seq), wanted)
            impressions = self._insert(conn, seq, items, "impression")
            clicks = self._insert(conn, seq, items, "click") if kind == "click" else 0
            if impressions or clicks:
                conn.execute("UPDATE variants SET impressions = impressions + ?, clicks = clicks + ? WHERE name = ?",
                             (impressions, clicks, variant))
        return FeedbackResult(request_id, variant, impressions, clicks, user_id, tuple(items))

    @staticmethod
    def _insert(conn: sqlite3.Connection, seq: int, item_ids: list[str], kind: str) -> int:
        """Insert the feedback rows not yet present; how many were new."""
        before = conn.total_changes
        conn.executemany("INSERT OR IGNORE INTO feedback (seq, item_id, kind) VALUES (?, ?, ?)",
                         [(seq, item, kind) for item in item_ids])
        return conn.total_changes - before

    def forget_user(self, user_id: str) -> int:
        """Erase the lists served to ``user_id`` and the feedback on them; how many lists were erased.

        The variants' running totals keep what those lists contributed: they are anonymous
        counts, and taking them back would change an experiment's results after the fact.
        Feedback on an erased list is then :class:`NotFoundError`, as for an evicted one. The rows
        are overwritten with zeros and the write-ahead log emptied, so no file keeps them.
        """
        check_text(user_id, "user_id")
        self.flush()
        with self._transaction(f"forgetting the lists served to user {user_id!r}") as conn:
            seqs = [(r[0],) for r in conn.execute("SELECT seq FROM served WHERE user_id = ?", (user_id,))]
            for table in ("served", "served_items", "feedback"):
                conn.executemany(f"DELETE FROM {table} WHERE seq = ?", seqs)
            self._served -= len(seqs)
        self._db.checkpoint()
        return len(seqs)

    # -- reads

    def counts(self) -> list[VariantCounts]:
        """Every variant that has served a list, in the order variants were first served."""
        self.flush()
        with self._db.access("reading the counts") as conn:
            rows = conn.execute(
                "SELECT name, requests, impressions, clicks FROM variants ORDER BY first_seen, name"
            ).fetchall()
        return [VariantCounts(*row) for row in rows]

    def __repr__(self) -> str:
        return f"SqliteFeedbackLog({str(self.path)!r}, capacity={self.capacity})"

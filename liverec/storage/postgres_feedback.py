"""The feedback log in PostgreSQL, shared by every API worker of one store.

A list served through one worker takes impressions and clicks reported through any other, and
the per-variant totals are rows of the database, so the counts of all workers add up. As in
:mod:`liverec.storage.sqlite_feedback`, a recommendation request only queues its list
(:meth:`PostgresFeedbackLog.serve_later`); a writer thread commits the queue every
:data:`~liverec.storage.feedback.FLUSH_SECONDS` in one transaction of a few statements, whatever
its size (the lists travel as arrays). Every read and report flushes this worker's queue first;
a list queued in another worker is seen once that worker's next batch commits (within
``FLUSH_SECONDS``). A batch whose commit fails stays queued (up to :data:`RETAIN_FAILED` lists)
and is written when the database answers again.

Schema (component ``feedback`` of :func:`~liverec.storage.postgres.migrate`, version 1)::

    feedback_served(seq BIGSERIAL PRIMARY KEY, request_id TEXT UNIQUE, variant, user_id,
                    item_ids TEXT[], ts)                          -- index (user_id)
    feedback_reports(seq REFERENCES feedback_served ON DELETE CASCADE, item_id, kind,
                     PRIMARY KEY (seq, item_id, kind))
    feedback_variants(name PRIMARY KEY, first_seen, requests, impressions, clicks)
    feedback_size(served)                                         -- one row: rows in feedback_served

Every transaction that adds or removes served lists locks the ``feedback_size`` row first, so
those transactions run one at a time across workers and eviction past the capacity is exact: the
count is read under the lock, and the oldest lists (lowest ``seq``) are deleted in the same
transaction. A report locks its served list (``FOR KEY SHARE``), so eviction or erasure waits for
it, and then its variant's row; a writer takes the variant rows last. Locks are always taken in
that order (size, served lists, variants), so transactions never wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from liverec.core.redact import redact
from liverec.storage.feedback import (
    DEFAULT_CAPACITY,
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
from liverec.storage.postgres import PostgresDatabase, PostgresUrl, check_storable, database_for, migrate

__all__ = ["RETAIN_FAILED", "PostgresFeedbackLog"]

#: Lists a worker keeps queued while the database does not answer: some 170 MB for lists of 20
#: items (1.7 KB each, measured), minutes of a busy worker's requests. Past it the oldest are
#: dropped, with a warning.
RETAIN_FAILED = 100_000

# Version n is _MIGRATIONS[n - 1]; never edit one that has shipped, add one.
_MIGRATIONS = [
    """
    CREATE TABLE feedback_served (
        seq BIGSERIAL PRIMARY KEY,
        request_id TEXT UNIQUE NOT NULL,
        variant TEXT NOT NULL,
        user_id TEXT NOT NULL,
        item_ids TEXT[] NOT NULL,
        ts DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX feedback_served_user ON feedback_served (user_id);
    CREATE TABLE feedback_reports (
        seq BIGINT NOT NULL REFERENCES feedback_served (seq) ON DELETE CASCADE,
        item_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('impression', 'click')),
        PRIMARY KEY (seq, item_id, kind)
    );
    CREATE TABLE feedback_variants (
        name TEXT PRIMARY KEY,
        first_seen BIGINT NOT NULL,
        requests BIGINT NOT NULL DEFAULT 0,
        impressions BIGINT NOT NULL DEFAULT 0,
        clicks BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE feedback_size (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        served BIGINT NOT NULL
    );
    INSERT INTO feedback_size (served) VALUES (0)
    """,
]

# A batch in one statement: the lists' fields as arrays, their items as one flat array that each
# row slices ([lo:hi], 1-based) since PostgreSQL arrays cannot be ragged. RETURNING names only
# the rows inserted, so a request id already recorded counts nothing twice.
_INSERT_SERVED = """
WITH inserted AS (
    INSERT INTO feedback_served (request_id, variant, user_id, item_ids, ts)
    SELECT b.request_id, b.variant, b.user_id, (%s::text[])[b.lo:b.hi], b.ts
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::int[], %s::float8[])
         WITH ORDINALITY AS b(request_id, variant, user_id, lo, hi, ts, n)
    ORDER BY b.n
    ON CONFLICT (request_id) DO NOTHING
    RETURNING seq, variant
)
SELECT variant, MIN(seq), COUNT(*) FROM inserted GROUP BY variant ORDER BY variant
"""
_COUNT_REQUESTS = """
INSERT INTO feedback_variants (name, first_seen, requests)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[])
ON CONFLICT (name) DO UPDATE SET requests = feedback_variants.requests + excluded.requests
"""
_EVICT = "DELETE FROM feedback_served WHERE seq IN (SELECT seq FROM feedback_served ORDER BY seq LIMIT %s)"
_INSERT_REPORTS = """
INSERT INTO feedback_reports (seq, item_id, kind)
SELECT %s, item, kind FROM unnest(%s::text[]) AS item, unnest(%s::text[]) AS kind
ON CONFLICT DO NOTHING RETURNING kind
"""


def _checked(request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None) -> ServedList:
    """The arguments of ``record_served``, checked (:func:`served_list`) and storable."""
    row = served_list(request_id, variant, user_id, item_ids, ts)
    check_storable("request_id", (row.request_id,))
    check_storable("variant", (row.variant,))
    check_storable("user_id", (row.user_id,))
    check_storable("item_ids", row.item_ids)
    return row


class PostgresFeedbackLog(BatchedLog):
    """Which variant served which list, and the impressions and clicks reported on those lists,
    in the store's PostgreSQL schema, shared by every worker that opens it.

    Parameters
    ----------
    url
        The store's connection pool (the log shares it), or its parsed URL (the log opens a pool
        of its own, ``pool`` of the URL at most); the log migrates its tables.
    capacity
        How many served lists the database remembers for feedback, over all workers. Past it the
        oldest are forgotten and feedback on them is :class:`NotFoundError`; their counts stay in
        the totals. Opening with a smaller capacity evicts at once; workers should agree on it.

    Safe to share between threads. Every driver failure surfaces as :class:`StorageError`, and a
    failed call counts nothing. Text PostgreSQL cannot hold (a NUL character) is refused with
    :class:`InvalidInputError` naming the field.
    """

    _db: PostgresDatabase

    def __init__(self, url: PostgresUrl | PostgresDatabase, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = check_capacity(capacity)
        self._db = database_for(url, "feedback log")
        self.url = self._db.url
        self._queue = ServedQueue(self._write_batch, retain_failed=RETAIN_FAILED)
        try:
            migrate(self._db, "feedback", _MIGRATIONS)
            with self._db.transaction("evicting past the capacity") as conn:
                self._resize(conn, self._lock_size(conn))
        except BaseException:
            self._queue.close()
            self._db.close()
            raise

    # -- writes

    def record_served(
        self, request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None = None
    ) -> None:
        """Remember the list now, in its own transaction; the same request again with the same
        content is a no-op, with other content a :class:`ConflictError` (whichever worker wrote it)."""
        row = _checked(request_id, variant, user_id, item_ids, ts)
        self.flush()
        with self._db.transaction(f"recording request {request_id!r}") as conn:
            served = self._lock_size(conn)
            found = conn.execute("SELECT variant, user_id, item_ids FROM feedback_served WHERE request_id = %s",
                                 (row.request_id,)).fetchone()
            if found is None:
                self._write(conn, served, [row])
            elif tuple(found) != (row.variant, row.user_id, row.item_ids):
                raise conflicting_list(request_id)

    def serve_later(
        self, request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None = None
    ) -> None:
        """Check the list now and queue it for this worker's next batch (the request path). A request
        id already recorded, by any worker, is dropped at the write, never failing the batch."""
        self._queue.put(_checked(request_id, variant, user_id, item_ids, ts))

    def _write_batch(self, rows: list[ServedList]) -> None:
        first: dict[str, ServedList] = {}  # an id queued twice: the first list wins, as it would one by one
        for row in rows:
            first.setdefault(row.request_id, row)
        with self._db.transaction(f"recording {len(rows)} served lists") as conn:
            self._write(conn, self._lock_size(conn), list(first.values()))

    @staticmethod
    def _lock_size(conn: Any) -> int:
        """Lock the count of served lists (until the transaction ends) and read it."""
        return int(conn.execute("SELECT served FROM feedback_size FOR UPDATE").fetchone()[0])

    def _write(self, conn: Any, served: int, rows: list[ServedList]) -> None:
        """Insert ``rows`` (distinct request ids), skipping ids already recorded; evict past the
        capacity; add the new lists to their variants' totals. Holds the size lock."""
        items: list[str] = []
        bounds: list[tuple[int, int]] = []
        for row in rows:
            bounds.append((len(items) + 1, len(items) + len(row.item_ids)))
            items.extend(row.item_ids)
        inserted = conn.execute(_INSERT_SERVED, (
            items, [r.request_id for r in rows], [r.variant for r in rows], [r.user_id for r in rows],
            [lo for lo, _ in bounds], [hi for _, hi in bounds], [r.ts for r in rows],
        )).fetchall()
        self._resize(conn, served + sum(int(count) for _, _, count in inserted))
        if inserted:  # after eviction: a writer takes the variant rows last (see the module docstring)
            names, first_seen, counts = (list(column) for column in zip(*inserted, strict=True))
            conn.execute(_COUNT_REQUESTS, (names, first_seen, counts))

    def _resize(self, conn: Any, served: int) -> None:
        """Evict the oldest lists past the capacity and store the count. Holds the size lock."""
        if served > self.capacity:
            served -= int(conn.execute(_EVICT, (served - self.capacity,)).rowcount)
        conn.execute("UPDATE feedback_size SET served = %s", (served,))

    def record(self, request_id: str, kind: str, item_ids: Sequence[str] | None = None) -> FeedbackResult:
        """Count impressions or clicks on a served list (as :meth:`FeedbackLog.record
        <liverec.storage.base.FeedbackLog.record>` says), whichever worker served it: each
        (request, item, kind) counts once over all workers, since the reports are rows keyed so."""
        wanted = check_feedback(request_id, kind, item_ids)
        check_storable("request_id", (request_id,))
        check_storable("item_ids", wanted or ())
        self.flush()
        with self._db.transaction(f"recording {kind} on request {request_id!r}") as conn:
            row = conn.execute("SELECT seq, variant, user_id, item_ids FROM feedback_served WHERE request_id = %s"
                               " FOR KEY SHARE", (request_id,)).fetchone()
            if row is None:
                raise unknown_request(request_id)
            seq, variant, user_id, served_items = row
            items = reported_items(request_id, served_items, wanted)
            kinds = ["impression", "click"] if kind == "click" else ["impression"]
            counted = [k for (k,) in conn.execute(_INSERT_REPORTS, (seq, items, kinds)).fetchall()]
            impressions, clicks = counted.count("impression"), counted.count("click")
            if counted:
                conn.execute("UPDATE feedback_variants SET impressions = impressions + %s, clicks = clicks + %s"
                             " WHERE name = %s", (impressions, clicks, variant))
        return FeedbackResult(request_id, variant, impressions, clicks, user_id, tuple(items))

    def forget_user(self, user_id: str) -> int:
        """Erase the lists served to ``user_id`` by any worker, and the feedback on them; how many
        lists were erased. The variants' totals keep what they contributed (anonymous counts).

        When any were erased the tables are vacuumed, so the space of the dead rows is reused
        rather than kept (the server's WAL and backups are the operator's to rotate).
        """
        check_text(user_id, "user_id")
        check_storable("user_id", (user_id,))
        self.flush()
        with self._db.transaction(f"forgetting the lists served to user {user_id!r}") as conn:
            served = self._lock_size(conn)
            erased = int(conn.execute("DELETE FROM feedback_served WHERE user_id = %s", (user_id,)).rowcount)
            self._resize(conn, served - erased)
        if erased:
            with self._db.access("vacuuming after an erasure") as conn:
                conn.execute("VACUUM feedback_served, feedback_reports")
        return erased

    # -- reads

    def counts(self) -> list[VariantCounts]:
        """Every variant that has served a list, through any worker, in the order variants were
        first served."""
        self.flush()
        with self._db.access("reading the counts") as conn:
            rows = conn.execute(
                "SELECT name, requests, impressions, clicks FROM feedback_variants ORDER BY first_seen, name"
            ).fetchall()
        return [VariantCounts(*row) for row in rows]

    def __repr__(self) -> str:
        return f"PostgresFeedbackLog({redact(self.url.url)!r}, capacity={self.capacity})"

"""The event log's reads both SQL backends share: an ``events`` table of ``seq`` (arrival, taken in
commit order) and the event's fields, read a page per query by keyset, so nothing is held between
pages and the store may be used while a caller iterates."""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

from liverec.core.types import Event, parse_event_type

INSERT_COLUMNS = "event_id, user_id, type, item_id, value, text, ts, session_id"
EVENT_COLUMNS = f"seq, {INSERT_COLUMNS}"
MAX_SEQ = 2**63 - 1  # the largest SQLite integer and BIGSERIAL: "no bound" on seq

K = TypeVar("K")


def event_from_row(row: Sequence[Any]) -> Event:
    """The event of a row read as :data:`EVENT_COLUMNS`."""
    # Every field was validated before it was stored: skip re-validation (4x faster reads).
    _, event_id, user_id, type_, item_id, value, text, ts, session_id = row
    return Event.trusted(event_id, user_id, parse_event_type(type_), item_id, value, text, ts, session_id)


def keyset_pages(read: Callable[[K], Sequence[Any]], after: K, key: Callable[[Any], K],
                 page_size: int) -> Iterator[Any]:
    """Rows a page per ``read(after)`` (at most ``page_size`` rows, ordered, past ``after``) until a
    short page; ``key(row)`` is where the next page starts.

    >>> rows = list(range(7))
    >>> list(keyset_pages(lambda a: [r for r in rows if r > a][:3], -1, lambda r: r, 3))
    [0, 1, 2, 3, 4, 5, 6]
    """
    while True:
        rows = read(after)
        yield from rows
        if len(rows) < page_size:
            return
        after = key(rows[-1])


class SqlEventReads:
    """``between``, ``all`` and ``arrived_after`` of ``EventLog`` over ``self._db.access(what)``
    (a context giving a connection), with the driver's ``placeholder`` and ``page_size``."""

    placeholder: ClassVar[str]
    page_size: ClassVar[int]
    lookback: ClassVar[int]  # positions :meth:`since` reads again (commits out of position order)
    _db: Any

    def _rows_at(self, conn: Any, seqs: list[int]) -> list[Any]:
        """The rows (:data:`EVENT_COLUMNS`) at positions ``seqs``, in position order."""
        raise NotImplementedError

    def since(self, position: int | None, known: Container[str], limit: int | None = None) -> tuple[int, list[Event]]:
        """The log's position now, and the events stored after ``position`` not in ``known``, in
        arrival order, from at most ``limit`` positions (default: a page; None: just the position):
        how a process sees what others serving the same store ingest.

        Where positions are given at insert and transactions commit in any order (PostgreSQL), an
        event may become visible below a position already read: the last ``lookback`` positions
        are read again, by id only, and only the events ``known`` does not hold are read whole.
        """
        p = self.placeholder
        with self._db.access("reading new events") as conn:
            if position is None:
                return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]), []
            ids = conn.execute(f"SELECT seq, event_id FROM events WHERE seq > {p} ORDER BY seq LIMIT {p}",
                               (max(0, position - self.lookback), limit or self.page_size)).fetchall()
            wanted = [seq for seq, event_id in ids if event_id not in known]
            rows = self._rows_at(conn, wanted) if wanted else []
        return max(position, ids[-1][0]) if ids else position, [event_from_row(row) for row in rows]

    def _pages(self, what: str, where: str, order: str, params: Callable[[K], tuple[Any, ...]], after: K,
               key: Callable[[Any], K]) -> Iterator[Event]:
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} ORDER BY {order} LIMIT {self.placeholder}"

        def page(at: K) -> list[Any]:
            with self._db.access(what) as conn:
                return list(conn.execute(sql, (*params(at), self.page_size)).fetchall())

        return map(event_from_row, keyset_pages(page, after, key, self.page_size))

    def between(self, start: float, end: float, through: int | None = None) -> Iterator[Event]:
        """Events with ``start <= timestamp < end`` (stored by ``through``) in time order; events
        appended while a caller iterates may or may not appear (none past ``through``)."""
        p = self.placeholder
        last = MAX_SEQ if through is None else through
        # seq starts at 1, so (start, 0) admits ts == start
        return self._pages("reading events by time", f"(ts, seq) > ({p}, {p}) AND ts < {p} AND seq <= {p}",
                           "ts, seq", lambda at: (*at, end, last), (start, 0), lambda row: (row[7], row[0]))

    def all(self, through: int | None = None) -> Iterator[Event]:
        """Every event (stored by ``through``) in time order (see :meth:`between`)."""
        return self.between(-math.inf, math.inf, through)

    def arrived_after(self, position: int, until: float = math.inf) -> Iterator[Event]:
        p = self.placeholder
        return self._pages("reading events stored since a position", f"seq > {p} AND ts <= {p}", "seq",
                           lambda at: (at, until), position, lambda row: int(row[0]))

"""What every feedback log shares: its records and the checks of what it is given.

A feedback log remembers which variant served which list, and counts the impressions and clicks
reported on those lists. It returns raw counts (:class:`VariantCounts`); the statistics over them
(CTR, intervals, lift) are the experiments code's business. Implementations:
:class:`~liverec.storage.memory_feedback.MemoryFeedbackLog`,
:class:`~liverec.storage.sqlite_feedback.SqliteFeedbackLog` and
:class:`~liverec.storage.postgres_feedback.PostgresFeedbackLog`; the durable two write served
lists in batches through a :class:`ServedQueue`.

Every check here runs before anything is stored, so a bad call counts nothing, in every backend.

>>> served_list("r1", "control", "u1", ["a", "b"], ts=1.0)
ServedList(request_id='r1', variant='control', user_id='u1', item_ids=['a', 'b'], ts=1.0)
>>> check_feedback("r1", "click", ["b", "b"])
['b']
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, Self

from liverec.core.errors import ConflictError, InvalidInputError, LiveRecError, NotFoundError, StorageError

__all__ = [
    "DEFAULT_CAPACITY",
    "FEEDBACK_KINDS",
    "FLUSH_ROWS",
    "FLUSH_SECONDS",
    "BatchedLog",
    "FeedbackResult",
    "ServedList",
    "ServedQueue",
    "VariantCounts",
    "check_capacity",
    "check_feedback",
    "check_text",
    "conflicting_list",
    "reported_items",
    "served_list",
    "unknown_request",
]

FEEDBACK_KINDS = ("impression", "click")

#: Served lists a log remembers for feedback unless told otherwise.
DEFAULT_CAPACITY = 1_000_000

# Measured on the demo world under 200 req/s: a synchronous write cost 0.16-0.3 ms of every
# recommendation behind one lock; batched, a few hundred lists share one commit.
FLUSH_SECONDS = 0.05
FLUSH_ROWS = 512

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedbackResult:
    """What one :meth:`FeedbackLog.record` call newly counted (0 and 0 for a retried report)."""

    request_id: str
    variant: str
    impressions: int
    clicks: int
    user_id: str = field(default="", repr=False, compare=False)  # whom the list was served to
    # the items reported (a retry reports them again)
    items: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "variant": self.variant, "impressions": self.impressions,
                "clicks": self.clicks}


@dataclass(frozen=True)
class VariantCounts:
    """A variant's running totals: lists served, items impressed, items clicked.

    Each (request, item) pair counts at most once as an impression and once as a click.
    """

    name: str
    requests: int
    impressions: int
    clicks: int


class ServedList(NamedTuple):
    """A checked served list, as :func:`served_list` returns it."""

    request_id: str
    variant: str
    user_id: str
    item_ids: list[str]
    ts: float


def check_capacity(capacity: object) -> int:
    """``capacity`` if it is a positive integer (how many served lists a log remembers)."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise InvalidInputError(f"capacity {capacity!r} must be a positive integer", field="capacity", value=capacity)
    return capacity


def check_text(value: object, field: str) -> str:
    """``value`` if it is a non-empty string; else :class:`InvalidInputError` naming ``field``."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{field} {value!r} must be a non-empty string", field=field, value=value)
    return value


def _check_items(item_ids: object) -> list[str]:
    # A bare string is a sequence of characters: almost certainly one id passed without a list.
    if isinstance(item_ids, str | bytes) or not isinstance(item_ids, Sequence):
        raise InvalidInputError("item_ids must be a list of item ids", field="item_ids", value=item_ids)
    for item_id in item_ids:
        check_text(item_id, "item_ids")
    return list(item_ids)


def served_list(
    request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None
) -> ServedList:
    """The arguments of ``record_served``, checked; ``ts`` defaults to now.

    A list holds each item once, and ``ts`` must be a finite number of seconds.
    """
    check_text(request_id, "request_id")
    check_text(variant, "variant")
    check_text(user_id, "user_id")
    items = _check_items(item_ids)
    if len(set(items)) != len(items):
        dupes = sorted({i for i in items if items.count(i) > 1})
        raise InvalidInputError(f"item_ids repeat {dupes!r}; a served list has each item once",
                                field="item_ids", value=dupes)
    when = time.time() if ts is None else ts
    # bool is an int subclass, and True seconds is a mistake rather than 1.0.
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise InvalidInputError(f"ts {ts!r} must be a finite number of seconds", field="ts", value=ts)
    return ServedList(request_id, variant, user_id, items, float(when))


def check_feedback(request_id: str, kind: str, item_ids: Sequence[str] | None) -> list[str] | None:
    """The arguments of ``record``, checked: the reported items without repeats, or None for all.

    Raises :class:`InvalidInputError` with ``field='type'`` for a kind not in :data:`FEEDBACK_KINDS`
    and ``field='item_ids'`` for a click that names no items or ids that are not strings.
    """
    check_text(request_id, "request_id")
    if kind not in FEEDBACK_KINDS:
        raise InvalidInputError(f"feedback type {kind!r} is not one of {', '.join(FEEDBACK_KINDS)}",
                                field="type", value=kind)
    if item_ids is None and kind == "click":
        raise InvalidInputError("a click must name the clicked item_ids", field="item_ids")
    return None if item_ids is None else list(dict.fromkeys(_check_items(item_ids)))


def reported_items(request_id: str, served: Sequence[str], wanted: list[str] | None) -> list[str]:
    """The items a report concerns: ``wanted``, all of which must be in ``served``; None means all."""
    if wanted is None:
        return list(served)
    known = set(served)
    unserved = [i for i in wanted if i not in known]
    if unserved:
        raise InvalidInputError(f"items {unserved!r} were not served in request {request_id!r}",
                                field="item_ids", value=unserved)
    return wanted


def unknown_request(request_id: str) -> NotFoundError:
    """The error for feedback on a request never recorded, evicted or erased."""
    return NotFoundError(f"request {request_id!r} is unknown or too old to take feedback",
                         kind="request", key=request_id)


def conflicting_list(request_id: str) -> ConflictError:
    """The error for a request recorded again with another variant, user or item list."""
    return ConflictError(f"request {request_id!r} was already recorded with another variant, user or item list")


class ServedQueue:
    """Served lists checked by ``serve_later`` and written in batches by a background thread.

    A recommendation request only appends its list; a writer thread, started with the first,
    hands everything queued to ``write`` every :data:`FLUSH_SECONDS` (sooner once
    :data:`FLUSH_ROWS` wait), so one transaction commits a few hundred lists. A log calls
    :meth:`flush` before every read and report, so nothing queued is ever missing from an answer.

    Parameters
    ----------
    write
        Writes a batch in one transaction; it drops a request id already recorded, without raising.
    retain_failed
        How many lists (the newest) stay queued when a write fails with :class:`StorageError`, to
        be written by a later flush (a database server that went away and came back); with 0 a
        failed batch is dropped.
    """

    def __init__(self, write: Callable[[list[ServedList]], object], *, retain_failed: int = 0) -> None:
        self._write = write
        self._retain_failed = retain_failed
        self._queue: list[ServedList] = []
        self._queue_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self.closed = False
        self._writer: threading.Thread | None = None

    def put(self, row: ServedList) -> None:
        """Queue ``row``; :class:`StorageError` once the queue is closed."""
        with self._queue_lock:
            if self.closed:
                raise StorageError("the feedback log is closed")
            self._queue.append(row)
            full = len(self._queue) >= FLUSH_ROWS
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_batches, name="liverec-feedback", daemon=True)
                self._writer.start()
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write every queued list now; how many were written.

        One flush at a time, from taking the queue to the commit: a reader that flushes while the
        writer thread holds lists it took must wait for that commit, or it would miss them.
        """
        with self._flush_lock:
            with self._queue_lock:
                rows, self._queue = self._queue, []
            if rows:
                try:
                    self._write(rows)
                except StorageError:
                    self._put_back(rows)
                    raise
        return len(rows)

    def _put_back(self, rows: list[ServedList]) -> None:
        if not self._retain_failed:
            return
        with self._queue_lock:
            waiting = rows + self._queue
            self._queue = waiting[-self._retain_failed:]
        if len(waiting) > self._retain_failed:
            logger.warning("feedback log: dropped the %d oldest served lists waiting to be written",
                           len(waiting) - self._retain_failed)

    def _write_batches(self) -> None:
        while not self.closed:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except LiveRecError:  # the log was closed under us, or the disk failed: retried next round
                time.sleep(FLUSH_SECONDS)

    def close(self) -> bool:
        """Refuse further lists and stop the writer thread; whether the queue was open until now
        (the caller then flushes what is left and closes its database). Safe to call twice."""
        with self._queue_lock:
            already, self.closed = self.closed, True
        self._wake.set()
        if self._writer is not None:
            self._writer.join()
        return not already


class _Closable(Protocol):
    def close(self) -> None: ...


class BatchedLog:
    """The lifetime of a feedback log that writes its served lists through a :class:`ServedQueue`
    (``_queue``) into a database it closes last (``_db``): flushing, closing, the context manager."""

    _queue: ServedQueue
    _db: _Closable

    def flush(self) -> int:
        """Write every queued list now; how many were written."""
        return self._queue.flush()

    def close(self) -> None:
        """Write what is queued and close; further calls raise :class:`StorageError`. Safe to call twice."""
        if self._queue.close():
            try:
                self.flush()
            finally:
                self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A feedback log held in this process: the reference implementation, and what ``memory://`` opens.

It keeps the contract of every other feedback log (:mod:`liverec.testing.feedback_contract`
runs against it). Writes are cheap dict updates behind one lock, so :meth:`serve_later` writes at
once and :meth:`flush` has nothing to do.

>>> with MemoryFeedbackLog() as log:
...     log.record_served("r1", "control", "u1", ["a", "b"])
...     log.record("r1", "click", ["b"])
...     log.counts()
FeedbackResult(request_id='r1', variant='control', impressions=1, clicks=1)
[VariantCounts(name='control', requests=1, impressions=1, clicks=1)]
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from liverec.core.errors import StorageError
from liverec.storage.feedback import (
    DEFAULT_CAPACITY,
    FeedbackResult,
    ServedList,
    VariantCounts,
    check_capacity,
    check_feedback,
    check_text,
    conflicting_list,
    reported_items,
    served_list,
    unknown_request,
)

__all__ = ["MemoryFeedbackLog"]


@dataclass
class _Served:
    variant: str
    user_id: str
    item_ids: list[str]
    impressed: set[str] = field(default_factory=set)
    clicked: set[str] = field(default_factory=set)


@dataclass
class _Totals:
    requests: int = 0
    impressions: int = 0
    clicks: int = 0


class MemoryFeedbackLog:
    """Served lists and feedback in dicts; gone when the process ends.

    Parameters
    ----------
    capacity
        How many served lists are remembered for feedback. Past it the oldest are forgotten and
        feedback on them is :class:`NotFoundError`; their counts stay in the totals.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = check_capacity(capacity)
        self._lock = threading.Lock()
        self._closed = False
        self._served: dict[str, _Served] = {}  # oldest first, so eviction pops from the front
        self._by_user: dict[str, dict[str, None]] = {}  # user -> their request ids, as an ordered set
        self._totals: dict[str, _Totals] = {}  # in the order variants were first served

    @contextmanager
    def _open(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise StorageError("the feedback log is closed")
            yield

    def _write(self, row: ServedList, strict: bool) -> None:
        request_id, variant, user_id, item_ids, _ = row
        found = self._served.get(request_id)
        if found is not None:
            if strict and (found.variant, found.user_id, found.item_ids) != (variant, user_id, item_ids):
                raise conflicting_list(request_id)
            return
        self._served[request_id] = _Served(variant, user_id, item_ids)
        self._by_user.setdefault(user_id, {})[request_id] = None
        self._totals.setdefault(variant, _Totals()).requests += 1
        while len(self._served) > self.capacity:
            oldest = next(iter(self._served))
            self._drop(oldest, self._served.pop(oldest).user_id)

    def _drop(self, request_id: str, user_id: str) -> None:
        requests = self._by_user[user_id]
        del requests[request_id]
        if not requests:
            del self._by_user[user_id]

    def record_served(
        self, request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None = None
    ) -> None:
        row = served_list(request_id, variant, user_id, item_ids, ts)
        with self._open():
            self._write(row, strict=True)

    def serve_later(
        self, request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None = None
    ) -> None:
        row = served_list(request_id, variant, user_id, item_ids, ts)
        with self._open():
            self._write(row, strict=False)

    def flush(self) -> int:
        """Nothing is ever queued here: always 0."""
        return 0

    def record(self, request_id: str, kind: str, item_ids: Sequence[str] | None = None) -> FeedbackResult:
        wanted = check_feedback(request_id, kind, item_ids)
        with self._open():
            served = self._served.get(request_id)
            if served is None:
                raise unknown_request(request_id)
            items = reported_items(request_id, served.item_ids, wanted)
            impressions = [i for i in items if i not in served.impressed]
            clicks = [i for i in items if i not in served.clicked] if kind == "click" else []
            served.impressed.update(impressions)
            served.clicked.update(clicks)
            totals = self._totals[served.variant]
            totals.impressions += len(impressions)
            totals.clicks += len(clicks)
        return FeedbackResult(request_id, served.variant, len(impressions), len(clicks), served.user_id,
                              tuple(items))

    def forget_user(self, user_id: str) -> int:
        check_text(user_id, "user_id")
        with self._open():
            requests = self._by_user.pop(user_id, {})
            for request_id in requests:
                del self._served[request_id]
        return len(requests)

    def counts(self) -> list[VariantCounts]:
        with self._open():
            return [VariantCounts(name, t.requests, t.impressions, t.clicks) for name, t in self._totals.items()]

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __enter__(self) -> MemoryFeedbackLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryFeedbackLog(capacity={self.capacity})"

"""Group commit: concurrent ``POST /events`` requests share one durable transaction.

Each request validates its own events (in its own thread), then hands them to one committer
thread and waits on a future. The committer takes every batch queued since its last commit,
writes them in one transaction (one fsync), applies them to user states, and only then answers
each request — so an acknowledgement always means "on disk and visible to the next
recommendation", and under load many requests share each fsync (PostgreSQL's commit_delay idea,
without the delay: whatever queued during the previous fsync goes in the next).

The queue is bounded in events: when it is full, ``submit`` refuses at once (the route answers
503) rather than letting latency grow without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from liverec.core.errors import ConflictError, InvalidInputError
from liverec.core.types import Event
from liverec.engine import Engine, IngestResult

MAX_GROUP_EVENTS = 50_000  # one transaction's worth; larger groups only add latency to the first request


class Overloaded(Exception):
    """The commit queue is full; the caller should answer 503 and the client retry later."""


@dataclass
class _Job:
    events: list[Event]
    stamped: frozenset[str] = frozenset()  # ids stamped on arrival (see Engine.ingest_events)
    future: Future[IngestResult] = field(default_factory=Future)


@dataclass(frozen=True)
class CommitStats:
    """One group commit, for metrics."""

    requests: int
    events: int
    stored: int
    seconds: float


class Committer:
    """Owns the write path of events: one thread, one transaction per group of requests."""

    def __init__(
        self,
        engine: Engine,
        max_pending_events: int,
        on_commit: Callable[[CommitStats], None] | None = None,
    ) -> None:
        self.engine = engine
        self.max_pending = max_pending_events
        self.on_commit = on_commit
        self._queue: deque[_Job] = deque()
        self._pending = 0
        self._cond = threading.Condition()
        self._closed = False
        self.last_submit = -math.inf  # time.monotonic() of the last submit: are writes flowing?
        self._thread = threading.Thread(target=self._run, name="liverec-committer", daemon=True)
        self._thread.start()

    @property
    def pending_events(self) -> int:
        return self._pending

    def submit(self, events: Sequence[Event], stamped: Collection[str] = ()) -> Future[IngestResult]:
        """Queue validated events; the future resolves once they are durable and applied.

        ``stamped`` names the events that came without a timestamp (their retries are matched
        without one); the future raises ConflictError for an id reused with other content.
        """
        job = _Job(list(events), frozenset(stamped))
        self.last_submit = time.monotonic()
        with self._cond:
            if self._closed:
                raise Overloaded("the service is shutting down")
            if self._pending and self._pending + len(job.events) > self.max_pending:
                raise Overloaded(f"{self._pending} events are waiting to be committed")
            self._queue.append(job)
            self._pending += len(job.events)
            self._cond.notify()
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take(self) -> list[_Job] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            jobs = [self._queue.popleft()]
            size = len(jobs[0].events)
            while self._queue and size + len(self._queue[0].events) <= MAX_GROUP_EVENTS:
                job = self._queue.popleft()
                jobs.append(job)
                size += len(job.events)
            self._pending -= size
            return jobs

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            self._commit(jobs)

    def _commit(self, jobs: list[_Job]) -> None:
        t0 = time.perf_counter()
        events = [e for job in jobs for e in job.events]
        stamped = frozenset().union(*(job.stamped for job in jobs))
        try:
            result = self.engine.ingest_events(events, stamped=stamped)
        except (InvalidInputError, ConflictError) as exc:
            # Valid when queued, invalid now (an item deleted meanwhile), or two requests of the
            # group that reuse one id with other content: commit each request alone so only the
            # one at fault fails.
            if len(jobs) > 1:
                for job in jobs:
                    self._commit([job])
            else:
                jobs[0].future.set_exception(exc)
            return
        except Exception as exc:  # a storage failure: nobody in the group is acknowledged
            for job in jobs:
                job.future.set_exception(exc)
            return
        claimed: set[str] = set()
        for job in jobs:
            # Each newly stored id belongs to the first request in the group that sent it.
            mine = {e.event_id for e in job.events if e.event_id in result.stored_ids} - claimed
            claimed |= mine
            job.future.set_result(IngestResult(len(job.events), len(mine), frozenset(mine)))
        if self.on_commit is not None:
            self.on_commit(CommitStats(len(jobs), len(events), result.stored, time.perf_counter() - t0))


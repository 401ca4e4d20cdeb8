"""The last hour of traffic in windows of a few seconds: what the operator view plots.

Prometheus counters say how much since the start; a person watching the service wants *now*
and *over the last minutes*: events per second, requests, errors and 503s, and latency
percentiles per window. Each window keeps counts and a latency histogram with log-spaced buckets
(each 25% wider than the last, so a percentile is within about 12% of the exact one) — a few
hundred bytes per window, one lock and a bisect per request.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Timeline"]

_GROWTH = 1.25
# Upper bounds in seconds: 0.1 ms … ~30 s; a slower request falls in the last, open bucket.
BOUNDS = tuple(1e-4 * _GROWTH ** n for n in range(int(math.log(30 / 1e-4, _GROWTH)) + 1))
PERCENTILES = (50, 95, 99)


@dataclass
class _Window:
    start: float
    requests: int = 0
    errors: int = 0  # 5xx and 4xx
    shed: int = 0  # 503s: refused under load
    events: int = 0  # events durably stored
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))

    def percentile(self, q: float) -> float | None:
        """The bucket's upper bound (ms) below which ``q``% of this window's requests finished."""
        if not self.requests:
            return None
        rank = math.ceil(self.requests * q / 100)
        seen = 0
        for n, count in enumerate(self.buckets):
            seen += count
            if seen >= rank:
                return round(1000 * BOUNDS[min(n, len(BOUNDS) - 1)], 2)
        return None  # not reached: the buckets hold every request


class Timeline:
    """Windows of ``interval`` seconds, the newest ``keep`` of them; thread-safe."""

    def __init__(self, interval: float = 5.0, keep: int = 720) -> None:
        self.interval = interval
        self._windows: deque[_Window] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def _current(self, now: float) -> _Window:
        start = now - now % self.interval
        if not self._windows or self._windows[-1].start < start:
            self._windows.append(_Window(start))
        return self._windows[-1]

    def request(self, seconds: float, status: int, now: float | None = None) -> None:
        with self._lock:
            window = self._current(now or time.time())
            window.requests += 1
            window.errors += status >= 400
            window.shed += status == 503
            window.buckets[bisect_left(BOUNDS, seconds)] += 1

    def events(self, stored: int, now: float | None = None) -> None:
        with self._lock:
            self._current(now or time.time()).events += stored

    def windows(self, since: float = 0.0) -> list[dict[str, Any]]:
        """The windows that started at or after ``since``, oldest first; a window without traffic
        is left out (the reader knows the interval and draws the gap as zero)."""
        with self._lock:
            kept = [w for w in self._windows if w.start >= since]
            return [{"start": w.start, "requests": w.requests, "errors": w.errors, "shed": w.shed,
                     "events": w.events, **{f"p{q}_ms": w.percentile(q) for q in PERCENTILES}} for w in kept]

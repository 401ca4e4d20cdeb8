"""The rules on event streams: duplicates, and robotic users.

Both read events in time order and keep bounded state, so the same object serves a live ingest
(event by event, as they arrive) and a pass over the whole log (training, a rebuild).
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field

from liverec.cleaning.settings import CleaningSettings
from liverec.core.types import Event, EventType

__all__ = ["UNDEDUPLICATED", "BotDetector", "Duplicates", "duplicate_key"]

# An impression records one showing: the same list shown twice is shown twice (fatigue counts the
# showings), and a retried report keeps its event id, which the store already refuses twice.
UNDEDUPLICATED = frozenset({EventType.IMPRESSION})


def duplicate_key(event: Event) -> Hashable:
    """What makes two events the same signal: user, type, item, value and text (not id, not time)."""
    return (event.user_id, event.type, event.item_id, event.value, event.text)


class Duplicates:
    """An event is a duplicate when its key (:func:`duplicate_key`) was seen less than ``window``
    seconds before it (the previous event of the key, duplicate or not: the rule a SQL ``lag``
    over the key states, so Spark training drops exactly the same events).

    Memory is bounded by the keys seen within ``window`` of the newest event (older ones are
    dropped as time moves on) and by ``capacity``.
    """

    def __init__(self, window: float, capacity: int = 1_000_000) -> None:
        self.window = window
        self.capacity = capacity
        self._last: dict[Hashable, float] = {}
        self._order: deque[tuple[float, Hashable]] = deque()
        self._newest = -math.inf

    def seen(self, event: Event) -> bool:
        """Whether ``event`` duplicates an earlier one; remembers it either way (impressions are
        never duplicates: :data:`UNDEDUPLICATED`)."""
        if event.type in UNDEDUPLICATED:
            return False
        key, ts = duplicate_key(event), event.timestamp
        last = self._last.get(key)
        self._last[key] = ts if last is None else max(last, ts)
        self._order.append((ts, key))
        if ts > self._newest:
            self._newest = ts
        self._prune()
        return last is not None and abs(ts - last) < self.window

    def _prune(self) -> None:
        order, last = self._order, self._last
        horizon = self._newest - self.window
        while order and (order[0][0] < horizon or len(order) > self.capacity):
            ts, key = order.popleft()
            if last.get(key, math.inf) <= ts:
                del last[key]


@dataclass
class _UserWindow:
    times: deque[float]
    on_item: dict[str, int] = field(default_factory=dict)  # events per item since repeat_start
    repeat_start: float = -math.inf
    events: int = 0  # since repeat_start
    breadth: set[str] = field(default_factory=set)
    breadth_start: float = -math.inf


class BotDetector:
    """Per-user and per-item rate, repetition, breadth and regularity limits
    (:class:`~liverec.cleaning.settings.CleaningSettings`).

    :meth:`observe` takes one event and returns why its user looks robotic (a reason naming the
    rule and the figure), or None. Windows over days are tumbling (restart when exceeded), the
    rest sliding. At most ``capacity`` users and items are followed, least recently active
    dropped first.
    """

    def __init__(self, settings: CleaningSettings, capacity: int = 200_000) -> None:
        self.s = settings
        self.capacity = capacity
        self._users: OrderedDict[str, _UserWindow] = OrderedDict()
        self._items: OrderedDict[str, deque[float]] = OrderedDict()
        self._keep = max(settings.burst_events, settings.regular_events) + 1

    def _user(self, user_id: str) -> _UserWindow:
        window = self._users.get(user_id)
        if window is None:
            window = self._users[user_id] = _UserWindow(deque(maxlen=self._keep))
            if len(self._users) > self.capacity:
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(user_id)
        return window

    def forget(self, user_id: str) -> None:
        self._users.pop(user_id, None)

    def observe(self, event: Event) -> str | None:
        s, ts = self.s, event.timestamp
        w = self._user(event.user_id)
        times = w.times
        if times and ts < times[-1]:  # out of order: keep the window sorted
            ordered = sorted([*times, ts])[-self._keep:]
            times.clear()
            times.extend(ordered)
        else:
            times.append(ts)
        if len(times) > s.burst_events and times[-1] - times[-1 - s.burst_events] < s.burst_seconds:
            span = times[-1] - times[-1 - s.burst_events]
            return (f"burst: {s.burst_events + 1} events within {span:.1f} s "
                    f"(limit {s.burst_events} per {s.burst_seconds:g} s)")
        # The mean gap is the span over the count: past the limit (with a second to spare for the
        # rounding of a sum of gaps), no gap need be computed — most users, on most events.
        if len(times) > s.regular_events and \
                times[-1] - times[-1 - s.regular_events] <= s.regular_events * s.regular_max_gap + 1.0:
            last = list(times)[-1 - s.regular_events:]
            gaps = [b - a for a, b in itertools.pairwise(last)]
            mean = sum(gaps) / len(gaps)
            if min(gaps) >= 1.0 and mean <= s.regular_max_gap:
                cv = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps)) / mean
                if cv < s.regular_cv:
                    return (f"regularity: {len(gaps)} gaps of {mean:.1f} s varying by {cv:.2%} "
                            f"(limit {s.regular_cv:.0%})")
        item = event.item_id
        if item is None:
            return None
        if ts - w.repeat_start > s.repeat_seconds:
            w.on_item, w.repeat_start, w.events = {}, ts, 0
        count = w.on_item[item] = w.on_item.get(item, 0) + 1
        w.events += 1
        if count > s.repeat_events:
            return (f"repeats: {count} events on item {item!r} within {s.repeat_seconds:g} s "
                    f"(limit {s.repeat_events})")
        if ts - w.breadth_start > s.breadth_seconds:
            w.breadth, w.breadth_start = set(), ts
        w.breadth.add(item)
        if len(w.breadth) > s.breadth_items:
            return f"breadth: {len(w.breadth)} items within {s.breadth_seconds:g} s (limit {s.breadth_items})"
        return self._item_burst(item, ts, count, w)

    def _item_burst(self, item: str, ts: float, count: int, w: _UserWindow) -> str | None:
        s = self.s
        recent = self._items.get(item)
        if recent is None:
            recent = self._items[item] = deque(maxlen=s.item_burst_events + 1)
            if len(self._items) > self.capacity:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(item)
        recent.append(ts)
        bursting = len(recent) > s.item_burst_events and recent[-1] - recent[0] < s.item_burst_seconds
        if bursting and count >= 5 and count / w.events >= s.item_burst_focus:
            return (f"item burst: item {item!r} took {len(recent)} events within {recent[-1] - recent[0]:.1f} s, "
                    f"and {count} of this user's {w.events} are on it")
        return None

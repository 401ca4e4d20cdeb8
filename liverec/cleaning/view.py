"""The event log as learning sees it: without quarantined users and events, duplicates collapsed.

Training, the replay of events into the online models and the rebuild of a user's state read the
log through :class:`CleanLog`; ingest and erasure use the raw log. The quarantine is read from the
store (every process agrees) and duplicates by their rule (:class:`~liverec.cleaning.rules.Duplicates`),
so a state rebuilt here, a model trained on Spark and the live process drop the same events.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from liverec.cleaning.rules import Duplicates
from liverec.cleaning.settings import CleaningSettings
from liverec.core.types import Event
from liverec.storage.base import EventLog
from liverec.storage.quarantine import Quarantine

__all__ = ["CleanLog", "QuarantineView"]


class QuarantineView:
    """The quarantined user and event ids, reloaded from the store only when its version moved."""

    def __init__(self, quarantine: Quarantine) -> None:
        self.store = quarantine
        self.users: frozenset[str] = frozenset()
        self.events: frozenset[str] = frozenset()
        self.version = -1
        self.refresh()

    def refresh(self) -> bool:
        """Reload if another process (or this one) changed the quarantine; whether it had."""
        version = self.store.version()
        if version == self.version:
            return False
        self.users, self.events = frozenset(self.store.keys("user")), frozenset(self.store.keys("event"))
        self.version = version
        return True

    def holds(self, event: Event) -> bool:
        return event.user_id in self.users or event.event_id in self.events


class CleanLog:
    """An :class:`~liverec.storage.base.EventLog` whose reads (``all``, ``between``, ``by_user``,
    ``users``) leave out what cleaning keeps from learning; every other call goes to ``log``."""

    def __init__(self, log: EventLog, quarantine: QuarantineView, settings: CleaningSettings) -> None:
        self.raw = log
        self.quarantine = quarantine
        self.settings = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def clean(self, events: Iterable[Event], start: float | None = None) -> Iterator[Event]:
        """``events`` (time-ordered) without quarantined ones and duplicates; with ``start``, also
        without those before it (read only to tell whether the first ones after it repeat them)."""
        if not self.settings.enabled:
            yield from events if start is None else (e for e in events if e.timestamp >= start)
            return
        holds = self.quarantine.holds
        duplicates = Duplicates(self.settings.duplicate_seconds)
        for event in events:
            if holds(event) or duplicates.seen(event):
                continue
            if start is None or event.timestamp >= start:
                yield event

    def all(self, through: int | None = None) -> Iterator[Event]:
        return self.clean(self.raw.all(through))

    def arrived_after(self, position: int, until: float = math.inf) -> Iterator[Event]:
        """Late events (see ``EventLog.arrived_after``) as learning reads them. Whether one repeats
        another is judged on its user's whole log in time order, as training judges it: its
        duplicates may lie anywhere in time. Late events are few, so a read per user is cheap."""
        late = list(self.raw.arrived_after(position, until))
        if not self.settings.enabled or not late:
            return iter(late)
        kept = {e.event_id for user_id in dict.fromkeys(e.user_id for e in late) for e in self.by_user(user_id)}
        return iter([e for e in late if e.event_id in kept])

    def between(self, start: float, end: float) -> Iterator[Event]:
        lead = self.settings.duplicate_seconds if self.settings.enabled else 0.0
        return self.clean(self.raw.between(start - lead, end), start)

    def by_user(self, user_id: str) -> list[Event]:
        if self.settings.enabled and user_id in self.quarantine.users:
            return []
        return list(self.clean(self.raw.by_user(user_id)))

    def users(self) -> list[str]:
        quarantined = self.quarantine.users if self.settings.enabled else frozenset()
        return [u for u in self.raw.users() if u not in quarantined]

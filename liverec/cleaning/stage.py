"""The cleaning stage of ingest: which new events are learned from, and who is quarantined.

Every event is stored whatever cleaning says (nothing acknowledged is lost); :meth:`Cleaner.screen`
decides which of them states and models learn from:

* an event of a quarantined user, or itself quarantined, is not (``quarantined``);
* an event that trips a robotic-traffic rule quarantines its user: it and every later event of
  theirs are kept from learning, and what their earlier events taught is taken back (``robotic``);
* a duplicate (:class:`~liverec.cleaning.rules.Duplicates`) is not learned again (``duplicate``);
* a review whose text is spam, abuse or off-topic is quarantined on its own (:mod:`.reviews`),
  and a user whose ``spam_reviews``-th review is spam is quarantined whole (a spam account).

Counts per rule are kept for ``/metrics`` (``liverec_cleaning_events_total``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from liverec.cleaning.rules import BotDetector, Duplicates
from liverec.cleaning.settings import CleaningSettings
from liverec.cleaning.view import QuarantineView
from liverec.core.types import Event, EventType
from liverec.storage.quarantine import Quarantine, Quarantined

__all__ = ["RULES", "Cleaner", "Screened"]

# Every rule an event can be counted under; ``learned`` are the events that passed.
RULES = ("learned", "duplicate", "robotic", "quarantined", "spam", "abuse", "off_topic")

SPAM_USERS = 1_000_000  # users whose spam reviews are counted at most

# Reviews to screen -> for each, the rule it breaks (spam, abuse, off_topic) and why, or None.
ReviewCheck = Callable[[Sequence[Event]], list[tuple[str, str] | None]]


@dataclass(frozen=True)
class Screened:
    """What :meth:`Cleaner.screen` decided for a batch: the events to learn from (time order), and
    the users and events to quarantine (not yet stored: the engine stores them with the events)."""

    learn: list[Event]
    quarantine: list[Quarantined]

    @property
    def users(self) -> set[str]:
        return {q.key for q in self.quarantine if q.kind == "user"}


class Cleaner:
    """The rules of :class:`CleaningSettings` applied to events as they arrive. Call :meth:`screen`
    with the engine's write lock held (its windows are not shared between threads)."""

    def __init__(self, settings: CleaningSettings, quarantine: Quarantine, reviews: ReviewCheck | None = None) -> None:
        self.settings = settings
        self.view = QuarantineView(quarantine)
        self.reviews = reviews if settings.reviews else None
        self.duplicates = Duplicates(settings.duplicate_seconds)
        self.bots = BotDetector(settings)
        self.counts: Counter[str] = Counter(dict.fromkeys(RULES, 0))
        self._counting = threading.Lock()
        # Spam reviews per user: those the store holds, then this process's (another worker's
        # reach this one at its next start).
        self.spam: Counter[str] = Counter(q.user_id for q in quarantine.entries("event")
                                          if q.reason.startswith("spam:"))

    def screen(self, events: Sequence[Event], now: float | None = None) -> Screened:
        """Which of ``events`` (new, about to be stored) to learn from, and what to quarantine."""
        ordered = sorted(events, key=lambda e: e.timestamp)
        if not self.settings.enabled:
            self._count(Counter(learned=len(ordered)))
            return Screened(ordered, [])
        now = time.time() if now is None else now
        counts: Counter[str] = Counter()
        robotic: dict[str, Quarantined] = {}
        learn: list[Event] = []
        holds = self.view.holds
        for e in ordered:
            if holds(e) or e.user_id in robotic:
                counts["quarantined"] += 1
                continue
            reason = self.bots.observe(e)
            if reason is not None:
                robotic[e.user_id] = Quarantined("user", e.user_id, e.user_id, reason, now)
                counts["robotic"] += 1
                continue
            if self.duplicates.seen(e):
                counts["duplicate"] += 1
                continue
            learn.append(e)
        if robotic:  # what they did earlier in this batch is kept from learning too
            kept = [e for e in learn if e.user_id not in robotic]
            counts["quarantined"] += len(learn) - len(kept)
            learn = kept
        entries = list(robotic.values())
        reviews = [e for e in learn if e.type is EventType.REVIEW and e.text]
        if reviews and self.reviews is not None:
            flagged: set[str] = set()
            spammers: set[str] = set()
            for e, verdict in zip(reviews, self.reviews(reviews), strict=True):
                if verdict is not None:
                    rule, why = verdict
                    counts[rule] += 1
                    flagged.add(e.event_id)
                    entries.append(Quarantined("event", e.event_id, e.user_id, f"{rule}: {why}", now))
                    if rule == "spam" and self._spam_review(e.user_id):
                        spammers.add(e.user_id)
            for user_id in sorted(spammers):
                entries.append(Quarantined("user", user_id, user_id, f"spam account: {self.spam[user_id]} reviews "
                                           f"screened as spam (limit {self.settings.spam_reviews - 1})", now))
            kept = [e for e in learn if e.event_id not in flagged and e.user_id not in spammers]
            counts["quarantined"] += len(learn) - len(kept) - len(flagged)
            learn = kept
        counts["learned"] += len(learn)
        self._count(counts)
        return Screened(learn, entries)

    def _spam_review(self, user_id: str) -> bool:
        """Count one more spam review of the user; whether that makes them a spam account."""
        count = self.spam.pop(user_id, 0) + 1
        self.spam[user_id] = count  # last: the least recently counted users go first
        if len(self.spam) > SPAM_USERS:
            del self.spam[next(iter(self.spam))]
        return count >= self.settings.spam_reviews

    def learnable(self, events: Sequence[Event]) -> list[Event]:
        """Those of ``events`` (stored by another process, which screened them) to learn from: not
        quarantined, not duplicates. Refreshes the quarantine first."""
        self.view.refresh()
        if not self.settings.enabled:
            return list(events)
        holds = self.view.holds
        return [e for e in sorted(events, key=lambda e: e.timestamp)
                if not holds(e) and not self.duplicates.seen(e)]

    def released(self, user_id: str) -> None:
        """Start the user's windows and spam count afresh (after an admin released them, or an erasure)."""
        self.bots.forget(user_id)
        self.spam.pop(user_id, None)

    def _count(self, counts: Counter[str]) -> None:
        with self._counting:
            self.counts.update(counts)

    def snapshot_counts(self) -> dict[str, int]:
        with self._counting:
            return dict(self.counts)

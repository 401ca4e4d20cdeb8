"""Each cleaning rule on its own: what it catches, and the human (or coarse-clocked) traffic it leaves alone."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from liverec.cleaning import BotDetector, Cleaner, CleaningSettings, Duplicates, cleaning_settings
from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, EventType
from liverec.storage import open_store

T0 = 1_700_000_000.0
DAY = 86400.0


def _events(user: str, times: Sequence[float], items: Sequence[str] | None = None,
            kind: EventType = EventType.VIEW) -> list[Event]:
    items = items or [f"i{n}" for n in range(len(times))]
    return [Event(f"{user}-{n}", user, kind, items[n % len(items)], timestamp=t) for n, t in enumerate(times)]


def _first_reason(events: Sequence[Event], settings: CleaningSettings | None = None) -> str | None:
    bots = BotDetector(settings or CleaningSettings())
    for e in events:
        reason = bots.observe(e)
        if reason is not None:
            return reason
    return None


def _human(n: int, seed: int = 0, mean_gap: float = 40.0) -> list[float]:
    rng = random.Random(seed)
    t, out = T0, []
    for _ in range(n):
        t += rng.expovariate(1 / mean_gap) + 1.0
        out.append(t)
    return out


def test_a_person_browsing_for_hours_trips_no_rule() -> None:
    assert _first_reason(_events("person", _human(2000))) is None


@pytest.mark.parametrize(("times", "items", "rule"), [
    ([T0 + 0.1 * n for n in range(61)], None, "burst"),
    ([T0 + 30.0 * n for n in range(41)], None, "regularity"),
    (_human(51, mean_gap=60), ["one"], "repeats"),
    ([T0 + 20.0 * n + (n * 7 % 11) for n in range(3001)], None, "breadth"),
], ids=["burst", "timer", "repeats", "breadth"])
def test_each_robotic_pattern_is_caught_by_its_rule(times: list[float], items: list[str] | None, rule: str) -> None:
    reason = _first_reason(_events("bot", times, items))
    assert reason is not None and reason.startswith(f"{rule}:"), reason


def test_a_timer_slower_than_an_hour_is_not_told_from_a_coarse_clock() -> None:
    """A log stamped by the day (Amazon's reviews, UniSRec's synthetic clock) spaces a daily
    reviewer's events exactly a day apart: a person, not a timer."""
    daily = _events("reviewer", [T0 + DAY * n for n in range(200)])
    assert _first_reason(daily) is None
    hourly = _events("cron", [T0 + 3000.0 * n for n in range(60)])
    assert (_first_reason(hourly) or "").startswith("regularity:")
    assert _first_reason(hourly, cleaning_settings({"regular_max_gap": 600})) is None


def test_a_farmed_account_on_a_bursting_item_is_caught_and_the_crowd_is_not() -> None:
    s = cleaning_settings({"item_burst_events": 100, "item_burst_seconds": 60})
    bots = BotDetector(s)
    crowd = [Event(f"c{n}", f"fan-{n}", EventType.VIEW, "hit", timestamp=T0 + n * 0.3) for n in range(150)]
    assert all(bots.observe(e) is None for e in crowd)  # a flash crowd: many people, once each
    farmed = [Event(f"f{n}", "farmed", EventType.CLICK, "hit", timestamp=T0 + 45 + n * 2.5) for n in range(6)]
    reasons = [bots.observe(e) for e in farmed]
    assert any((r or "").startswith("item burst:") for r in reasons), reasons


def test_duplicates_collapse_within_the_window_but_impressions_count_every_showing() -> None:
    dup = Duplicates(window=5.0)
    click = Event("a", "u", EventType.CLICK, "i", timestamp=T0)
    assert not dup.seen(click)
    assert dup.seen(Event("b", "u", EventType.CLICK, "i", timestamp=T0 + 2))  # a double submit
    assert not dup.seen(Event("c", "u", EventType.CLICK, "i", timestamp=T0 + 20))  # a click again, later
    assert not dup.seen(Event("d", "u", EventType.RATE, "i", value=4.0, timestamp=T0 + 21))
    assert not dup.seen(Event("e", "u", EventType.RATE, "i", value=5.0, timestamp=T0 + 22))  # a changed mind
    shown = [Event(f"s{n}", "u", EventType.IMPRESSION, "i", timestamp=T0 + 30 + n) for n in range(3)]
    assert not any(dup.seen(e) for e in shown)


def test_a_spam_account_is_quarantined_whole_and_a_rude_person_is_not() -> None:
    verdicts = {"buy now at spam.biz": ("spam", "a link"), "you idiots": ("abuse", "an insult")}

    def screen(reviews: Sequence[Event]) -> list[tuple[str, str] | None]:
        return [verdicts.get(e.text or "") for e in reviews]

    cleaner = Cleaner(CleaningSettings(), open_store("memory://").quarantine, screen)

    def batch(user: str, text: str, n: int, at: float) -> list[Event]:
        return [Event(f"{user}-{n}-view", user, EventType.VIEW, f"i{n}", timestamp=at),
                Event(f"{user}-{n}-review", user, EventType.REVIEW, f"i{n}", text=text, timestamp=at + 60)]

    first = cleaner.screen(batch("spammer", "buy now at spam.biz", 1, T0), now=T0)
    assert [e.event_id for e in first.learn] == ["spammer-1-view"]  # one spam review: the review alone
    assert first.users == set()
    second = cleaner.screen(batch("spammer", "buy now at spam.biz", 2, T0 + 600), now=T0)
    assert second.learn == [] and second.users == {"spammer"}  # the second: a spam account
    assert "spam account: 2 reviews" in next(q.reason for q in second.quarantine if q.kind == "user")
    for n in range(3):
        rude = cleaner.screen(batch("rude", "you idiots", n, T0 + 1000 * n), now=T0)
        assert [e.event_id for e in rude.learn] == [f"rude-{n}-view"] and rude.users == set()
    cleaner.released("spammer")  # an admin vouched: counted afresh
    assert cleaner.screen(batch("spammer", "buy now at spam.biz", 3, T0 + 9000), now=T0).users == set()


@pytest.mark.parametrize(("table", "field"), [
    ({"burst_events": 0}, "cleaning.burst_events"),
    ({"regular_max_gap": -1}, "cleaning.regular_max_gap"),
    ({"item_burst_focus": 1.5}, "cleaning.item_burst_focus"),
    ({"spam_reviews": 1.5}, "cleaning.spam_reviews"),
    ({"reviews": "yes"}, "cleaning.reviews"),
    ({"burst_event": 10}, "burst_event"),
])
def test_a_bad_setting_is_refused_naming_it(table: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        cleaning_settings(table)
    assert field in str(caught.value)


def test_late_events_are_read_as_learning_reads_the_whole_log() -> None:
    from liverec.cleaning.view import CleanLog, QuarantineView
    from liverec.storage.quarantine import Quarantined

    store = open_store("memory://")
    store.events.append(_events("u", [T0, T0 + 100.0], ["a", "b"], EventType.CLICK))
    read = store.events.position()
    # stored after the read, dated before its newest event: a repeat of "a" within the window (a
    # duplicate however late it comes), a new click, and a quarantined user's click
    store.events.append([Event("late-dup", "u", EventType.CLICK, "a", timestamp=T0 + 2.0),
                         Event("late-new", "u", EventType.CLICK, "c", timestamp=T0 + 50.0),
                         Event("late-bot", "bot", EventType.CLICK, "a", timestamp=T0 + 60.0)])
    store.quarantine.add([Quarantined("user", "bot", "bot", "robotic: test", T0)])
    log = CleanLog(store.events, QuarantineView(store.quarantine), CleaningSettings())
    assert [e.event_id for e in log.arrived_after(read, T0 + 100.0)] == ["late-new"]
    assert [e.event_id for e in log.all(read)] == ["u-0", "u-1"]
    off = CleanLog(store.events, QuarantineView(store.quarantine), CleaningSettings(enabled=False))
    assert [e.event_id for e in off.arrived_after(read, T0 + 60.0)] == ["late-dup", "late-new", "late-bot"]

"""Several interests per user, and what was shown without an action: kept by the state, the same
whether applied one event at a time, in a batch, or rebuilt; and through bytes."""

from __future__ import annotations

import numpy as np
import pytest

from liverec.core.settings import Settings
from liverec.core.types import Event, EventType
from liverec.realtime.codec import decode_state, encode_state
from liverec.realtime.state import EventSignal, StateUpdater, UserState

DIM = 8
DAY = 86400.0


def direction(i: int, wobble: float = 0.0) -> np.ndarray:
    """A unit vector near axis ``i`` (``wobble`` of it leaks into the next axis)."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    v[(i + 1) % DIM] = wobble
    return v / np.linalg.norm(v)


def history() -> list[tuple[Event, EventSignal]]:
    """Cameras, then hiking, then baby things, then cameras again: four actions each."""
    out = []
    topics = [(0, "cameras"), (2, "hiking"), (4, "baby"), (0, "cameras")]
    for block, (axis, tag) in enumerate(topics):
        for n in range(4):
            ts = 1000.0 + 100.0 * (4 * block + n)
            event = Event.create("u1", EventType.VIEW, f"{tag}-{n}", timestamp=ts)
            out.append((event, EventSignal(direction(axis, 0.1 * n), tags=(tag,))))
    return out


@pytest.fixture
def updater() -> StateUpdater:
    return StateUpdater(Settings(interests=4, interest_similarity=0.5, interest_half_life=7 * DAY))


def test_distinct_topics_become_distinct_interests_each_with_its_tags(updater: StateUpdater) -> None:
    state = UserState.empty("u1")
    for event, signal in history():
        updater.apply(state, event, signal)
    assert [i.top_tags(1) for i in state.interests] == [["cameras"], ["hiking"], ["baby"]]
    assert state.interests[0].tags == {"cameras": 8.0}  # both camera blocks joined the first interest
    for interest, axis in zip(state.interests, (0, 2, 4), strict=True):
        assert int(np.argmax(interest.vector)) == axis


def test_a_batch_and_a_rebuild_give_the_interests_one_event_at_a_time_gives(updater: StateUpdater) -> None:
    pairs = history()
    one = UserState.empty("u1")
    for event, signal in pairs:
        updater.apply(one, event, signal)
    shuffled = pairs[::-1]  # a batch in any order is applied in time order
    batch = updater.apply_many(UserState.empty("u1"), [e for e, _ in shuffled], [s for _, s in shuffled])
    assert len(batch.interests) == len(one.interests)
    for a, b in zip(batch.interests, one.interests, strict=True):
        assert a.tags == b.tags and a.ts == b.ts
        np.testing.assert_allclose(a.vector, b.vector, rtol=1e-5)
    assert decode_state(encode_state(one)) == one


def test_past_the_limit_the_weakest_interest_gives_way() -> None:
    updater = StateUpdater(Settings(interests=2, interest_similarity=0.5, interest_half_life=DAY))
    state = UserState.empty("u1")
    for n, (axis, tag, ts) in enumerate([(0, "old", 0.0), (2, "middle", 5 * DAY), (4, "new", 6 * DAY)]):
        event = Event.create("u1", "view", f"i{n}", timestamp=ts)
        updater.apply(state, event, EventSignal(direction(axis), tags=(tag,)))
    assert [i.top_tags(1)[0] for i in state.interests] == ["middle", "new"]  # "old" had decayed the most


def test_no_interests_when_turned_off_and_none_from_rejections() -> None:
    off = StateUpdater(Settings(interests=0))
    state = off.apply(UserState.empty("u1"), Event.create("u1", "view", "i1", timestamp=1.0), EventSignal(direction(0)))
    assert state.interests == []
    on = StateUpdater(Settings())
    dismissal = Event.create("u1", "dismiss", "i1", timestamp=1.0)
    state = on.apply(UserState.empty("u1"), dismissal, EventSignal(direction(0)))
    assert state.interests == []


def test_impressions_count_until_the_user_acts_and_move_nothing_else(updater: StateUpdater) -> None:
    state = UserState.empty("u1")
    updater.apply(state, Event.create("u1", "view", "a", timestamp=1.0), EventSignal(direction(0)))
    before = state.copy()
    events = [Event.create("u1", "impression", item, timestamp=2.0 + n) for n, item in enumerate("bbbc")]
    for event in events:
        updater.apply(state, event, EventSignal(direction(3)))
    assert state.shown == {"b": 3, "c": 1}
    assert list(state.recent) == list(before.recent) and state.seen == before.seen == {"a"}
    np.testing.assert_array_equal(state.short_vec, before.short_vec)
    assert state.last_ts == before.last_ts and state.version == before.version + 4
    updater.apply(state, Event.create("u1", "click", "b", timestamp=10.0), EventSignal(direction(3)))
    assert state.shown == {"c": 1}  # acting on it clears its count
    batch = updater.apply_many(
        UserState.empty("u1"),
        [Event.create("u1", "view", "a", timestamp=1.0), *events, Event.create("u1", "click", "b", timestamp=10.0)],
        [EventSignal(direction(0)), *[EventSignal(direction(3))] * 4, EventSignal(direction(3))],
    )
    assert batch.shown == state.shown and batch.version == state.version
    assert decode_state(encode_state(state)).shown == {"c": 1}
    only = updater.apply_many(UserState.empty("u2"), [Event.create("u2", "impression", "x", timestamp=1.0)],
                              [EventSignal(direction(1))])
    assert only.shown == {"x": 1} and not only.recent

"""StateUpdater.apply_many: a batch gives the state that applying its events one at a time gives.

implicit's rule (batch results equal one-at-a-time results), checked on random histories and
batches: any order within a batch, ties, events older than the state's clock, tag rebases and
prunes, the recent sequence overflowing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liverec.core.errors import InvalidInputError
from liverec.core.settings import Settings
from liverec.core.types import Event, EventType
from liverec.realtime.state import EventSignal, StateUpdater, UserState

H = 100.0  # short-term half-life, seconds
DIM = 3
TAGS = ("tents", "stoves", "boots", "camping", "maps")

Pair = tuple[Event, EventSignal]


@st.composite
def events_with_signals(draw: st.DrawFn, prefix: str) -> list[Pair]:
    out = []
    for n in range(draw(st.integers(0, 12))):
        type_ = draw(st.sampled_from(list(EventType)))
        item_id = None if type_ is EventType.SEARCH else draw(st.sampled_from(["i1", "i2", "i3", "i4"]))
        text = "tent" if type_ in (EventType.SEARCH, EventType.REVIEW) else None
        value = float(draw(st.integers(1, 5))) if type_ is EventType.RATE else None
        ts = 10.0 * draw(st.integers(0, 60))  # coarse, so ties are common
        event = Event.create("u1", type_, item_id, value=value, text=text, timestamp=ts, event_id=f"{prefix}{n}")
        vector = draw(st.none() | st.lists(st.integers(-3, 3), min_size=DIM, max_size=DIM))
        signal = EventSignal(
            None if vector is None else np.asarray(vector, np.float32),
            draw(st.sampled_from([1.0, 0.5, 0.0, -1.0])),
            tuple(draw(st.lists(st.sampled_from(TAGS), max_size=3, unique=True))),
        )
        out.append((event, signal))
    return out


def _assert_equal_states(batched: UserState, single: UserState, scale: float) -> None:
    for a, b in ((batched.short_vec, single.short_vec), (batched.neg_vec, single.neg_vec)):
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * scale)
    assert (batched.short_ts, batched.neg_ts, batched.tags_ts, batched.last_ts) == (
        single.short_ts, single.neg_ts, single.tags_ts, single.last_ts
    )
    assert batched.tags == single.tags
    assert list(batched.tags) == list(single.tags)
    assert list(batched.recent) == list(single.recent)
    assert batched.recent.maxlen == single.recent.maxlen
    assert (batched.interactions, batched.seen, batched.dismissed) == (
        single.interactions, single.seen, single.dismissed
    )
    assert (batched.n_events, batched.version) == (single.n_events, single.version)


@pytest.mark.parametrize("tag_half_life", [1000.0, 5.0])  # 5 s: tag rebases happen within a batch
@settings(max_examples=100, deadline=None)
@given(history=events_with_signals("h"), batches=st.lists(events_with_signals("b"), max_size=3), data=st.data())
def test_apply_many_equals_applying_one_at_a_time_in_time_order(
    tag_half_life: float, history: list[Pair], batches: list[list[Pair]], data: st.DataObject
) -> None:
    updater = StateUpdater(Settings(short_term_half_life=H, tag_half_life=tag_half_life, max_tags=2, recent_length=4))
    single, batched = UserState.empty("u1", recent_length=4), UserState.empty("u1", recent_length=4)
    for event, signal in history:
        updater.apply(single, event, signal)
        updater.apply(batched, event, signal)
    for batch in batches:
        arrived = data.draw(st.permutations(batch))
        for event, signal in sorted(arrived, key=lambda es: es[0].timestamp):
            updater.apply(single, event, signal)
        returned = updater.apply_many(batched, [e for e, _ in arrived], [s for _, s in arrived])
        assert returned is batched
    everything = history + [es for batch in batches for es in batch]
    scale = 1.0 + sum(5.0 * 3.0 * DIM for _ in everything)
    _assert_equal_states(batched, single, scale)


def _event(type_: str, item_id: str, ts: float, event_id: str) -> Event:
    return Event.create("u1", type_, item_id, timestamp=ts, event_id=event_id)


def test_apply_many_folds_late_events_into_a_live_state_by_hand() -> None:
    updater = StateUpdater(Settings(short_term_half_life=H, recent_length=3))
    x1, x2 = np.array([1, 0], np.float32), np.array([0, 1], np.float32)
    state = updater.apply(UserState.empty("u1", 3), _event("view", "i1", 200.0, "e1"), EventSignal(x1))
    # A purchase one half-life later and a dismissal two half-lives before the state's clock.
    updater.apply_many(
        state,
        [_event("purchase", "i2", 300.0, "e2"), _event("dismiss", "i3", 0.0, "e3")],
        [EventSignal(x2), EventSignal(x1)],
    )
    np.testing.assert_allclose(state.short_vec, 0.5 * x1 + 5.0 * x2 - 3.0 / 8.0 * x1, rtol=1e-6)
    np.testing.assert_allclose(state.neg_vec, 3.0 * x1, rtol=1e-6)
    assert (state.short_ts, state.neg_ts, state.last_ts) == (300.0, 0.0, 300.0)
    assert [a.event_id for a in state.recent] == ["e3", "e1", "e2"]
    assert (state.n_events, state.version) == (3, 3)
    assert state.dismissed == {"i3"} and state.seen == {"i1", "i2", "i3"}


def test_apply_many_of_nothing_changes_nothing() -> None:
    updater = StateUpdater(Settings())
    state = UserState.empty("u1")
    assert updater.apply_many(state, [], []) is state
    assert (state.n_events, state.version, state.short_vec) == (0, 0, None)


def test_apply_many_refuses_signals_that_do_not_match_the_events() -> None:
    updater = StateUpdater(Settings())
    with pytest.raises(InvalidInputError, match="apply_many got 1 events but 0 signals") as caught:
        updater.apply_many(UserState.empty("u1"), [_event("view", "i1", 1.0, "e1")], [])
    assert caught.value.field == "signals"

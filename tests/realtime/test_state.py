"""UserState and StateUpdater: the O(d + L) update, checked against sums worked out by hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from liverec.core.settings import Settings
from liverec.core.types import Event, EventType
from liverec.realtime.state import EventSignal, StateUpdater, UserState, decayed_norm, unit

H = 100.0  # short-term half-life of these tests, seconds
TAG_H = 1000.0  # tag half-life, seconds


def axis(i: int, dim: int = 4) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


X1, X2, X3 = axis(0), axis(1), axis(2)


def close(
    actual: np.ndarray | None, expected: np.ndarray | list[float] | None, *, rtol: float = 1e-6, atol: float = 0.0
) -> None:
    """``actual`` is a vector equal to ``expected`` within tolerance."""
    assert actual is not None and expected is not None
    np.testing.assert_allclose(actual, np.asarray(expected), rtol=rtol, atol=atol)


def known(vec: np.ndarray | None) -> np.ndarray:
    assert vec is not None
    return vec


@pytest.fixture
def updater() -> StateUpdater:
    return StateUpdater(Settings(short_term_half_life=H, tag_half_life=TAG_H, max_tags=3, recent_length=4))


def ev(
    type_: EventType | str, item_id: str | None, ts: float, *, text: str | None = None, value: float | None = None
) -> Event:
    return Event.create("u1", type_, item_id, timestamp=ts, text=text, value=value)


def fresh() -> UserState:
    return UserState.empty("u1", recent_length=4)


def test_first_event_sets_short_vec_to_weighted_vector(updater: StateUpdater) -> None:
    state = updater.apply(fresh(), ev("click", "i1", 50.0), EventSignal(X1, tags=("tents",)))
    close(state.short_vec, 1.5 * X1)  # click weighs 1.5
    assert state.short_ts == 50.0
    assert state.neg_vec is None
    assert state.interactions == {"i1": 1.5}
    assert state.seen == {"i1"}
    assert state.dismissed == set()
    assert (state.last_ts, state.n_events, state.version) == (50.0, 1, 1)
    assert [(a.item_id, a.type, a.weight) for a in state.recent] == [("i1", EventType.CLICK, 1.5)]


def test_second_event_one_half_life_later_halves_the_first(updater: StateUpdater) -> None:
    state = fresh()
    updater.apply(state, ev("view", "i1", 0.0), EventSignal(X1))  # w1 = 1
    updater.apply(state, ev("purchase", "i2", H), EventSignal(X2))  # w2 = 5
    close(state.short_vec, 0.5 * 1.0 * X1 + 5.0 * X2, rtol=1e-6)
    assert state.short_ts == H
    assert state.interactions == {"i1": 1.0, "i2": 5.0}


def test_older_event_adds_its_decayed_contribution_without_moving_the_clock(updater: StateUpdater) -> None:
    state = fresh()
    updater.apply(state, ev("view", "i1", 2 * H), EventSignal(X1))
    updater.apply(state, ev("add_to_cart", "i2", 0.0), EventSignal(X2))  # two half-lives older: 3 / 4
    close(state.short_vec, 1.0 * X1 + 0.75 * X2, rtol=1e-6)
    assert state.short_ts == 2 * H
    assert state.last_ts == 2 * H


def test_dismiss_adds_to_neg_vec_and_dismissed_only(updater: StateUpdater) -> None:
    state = fresh()
    updater.apply(state, ev("view", "i1", 0.0), EventSignal(X1, tags=("tents",)))
    updater.apply(state, ev("dismiss", "i2", 0.0), EventSignal(X2, tags=("stoves",)))
    close(state.neg_vec, 3.0 * X2)  # dismiss weighs -3: +3 in the negative sum
    assert state.neg_ts == 0.0
    close(state.short_vec, X1 - 3.0 * X2)
    assert state.dismissed == {"i2"}
    assert state.seen == {"i1", "i2"}
    assert state.interactions == {"i1": 1.0}  # nothing positive recorded for the dismissed item
    assert state.top_tags() == [("tents", 1.0)]  # a negative tag weight is dropped, never shown
    assert state.recent_items() == ["i1"]
    assert state.recent_items(positive_only=False) == ["i1", "i2"]


def test_dismissing_a_seen_item_keeps_its_earlier_interactions(updater: StateUpdater) -> None:
    state = fresh()
    updater.apply(state, ev("view", "i1", 0.0), EventSignal(X1))
    updater.apply(state, ev("dismiss", "i1", 10.0), EventSignal(X1))
    assert state.interactions == {"i1": 1.0}
    assert state.seen == {"i1"}
    assert state.dismissed == {"i1"}
    # a later positive action takes the dismissal back
    updater.apply(state, ev("click", "i1", 20.0), EventSignal(X1))
    assert state.dismissed == set()
    assert state.interactions == {"i1": 2.5}


def test_rating_of_one_is_a_negative_action(updater: StateUpdater) -> None:
    rating = ev("rate", "i3", 0.0, value=1.0)
    polarity = (1.0 - 3.0) / 2.0  # how the engine maps a 1-star rating: -1
    assert updater.weight(rating, polarity) == -3.0
    assert updater.weight(ev("rate", "i3", 0.0, value=5.0), 1.0) == 3.0
    assert updater.weight(ev("view", "i3", 0.0), -1.0) == 1.0  # polarity scales only rate and review
    state = updater.apply(fresh(), rating, EventSignal(X3, polarity=polarity))
    close(state.short_vec, -3.0 * X3)
    close(state.neg_vec, 3.0 * X3)
    assert state.dismissed == {"i3"}
    assert state.interactions == {}


def test_neutral_rating_changes_no_vector(updater: StateUpdater) -> None:
    state = updater.apply(fresh(), ev("rate", "i3", 5.0, value=3.0), EventSignal(X3, polarity=0.0, tags=("x",)))
    assert state.short_vec is None and state.neg_vec is None
    assert state.tags == {}
    assert state.n_events == 1 and state.last_ts == 5.0


def test_search_moves_interest_without_touching_items(updater: StateUpdater) -> None:
    state = updater.apply(fresh(), ev("search", None, 0.0, text="tent"), EventSignal(X2, tags=("tent",)))
    close(state.short_vec, 2.0 * X2)  # search weighs 2
    assert state.seen == set() and state.interactions == {}
    assert state.top_tags() == [("tent", 2.0)]
    assert state.recent[-1].text == "tent"


def test_tag_weight_halves_after_one_tag_half_life(updater: StateUpdater) -> None:
    state = fresh()
    updater.apply(state, ev("view", "i1", 0.0), EventSignal(X1, tags=("tents", "camping")))
    assert state.top_tags(5, TAG_H) == [("camping", 1.0), ("tents", 1.0)]  # equal weights: by name
    updater.apply(state, ev("view", "i2", TAG_H), EventSignal(X2))  # no tags: only the clock moves
    assert state.top_tags(5, TAG_H) == [("camping", 0.5), ("tents", 0.5)]
    updater.apply(state, ev("click", "i3", TAG_H), EventSignal(X3, tags=("tents",)))
    assert state.top_tags(5, TAG_H) == [("tents", pytest.approx(2.0)), ("camping", pytest.approx(0.5))]
    assert state.top_tags(1, TAG_H) == [("tents", pytest.approx(2.0))]
    # without a half-life the internal units come back (reference time 0): same order
    assert [t for t, _ in state.top_tags(5)] == ["tents", "camping"]


def test_tags_are_pruned_to_max_tags_only_past_twice_the_cap(updater: StateUpdater) -> None:
    state = fresh()  # max_tags = 3: prune when there are more than 6
    for n, (type_, tag) in enumerate(
        [("view", "t1"), ("click", "t2"), ("add_to_cart", "t3"), ("purchase", "t4"), ("view", "t5"), ("click", "t6")]
    ):
        updater.apply(state, ev(type_, f"i{n}", 0.0), EventSignal(X1, tags=(tag,)))
    assert len(state.tags) == 6  # exactly 2 · max_tags: no prune yet
    updater.apply(state, ev("search", None, 0.0, text="q"), EventSignal(X1, tags=("t7",)))  # weight 2
    assert state.tags == {"t4": 5.0, "t3": 3.0, "t7": 2.0}


def test_recent_keeps_the_last_l_actions(updater: StateUpdater) -> None:
    state = fresh()  # L = 4
    for n in range(6):
        updater.apply(state, ev("view", f"i{n}", float(n)), EventSignal(X1))
    assert [a.item_id for a in state.recent] == ["i2", "i3", "i4", "i5"]
    assert state.n_events == 6
    assert state.interactions == {f"i{n}": 1.0 for n in range(6)}  # L bounds the sequence only


def _history() -> list[tuple[Event, EventSignal]]:
    """Seven events of one user in time order, with their signals."""
    return [
        (ev("view", "i1", 0.0), EventSignal(X1, tags=("tents",))),
        (ev("search", None, 30.0, text="stove"), EventSignal(X2, tags=("stove",))),
        (ev("click", "i2", 60.0), EventSignal(X2, tags=("stove", "camping"))),
        (ev("dismiss", "i3", 150.0), EventSignal(X3, tags=("boots",))),
        (ev("add_to_cart", "i2", 200.0), EventSignal(X2, tags=("stove",))),
        (ev("rate", "i1", 420.0, value=2.0), EventSignal(X1, polarity=-0.5, tags=("tents",))),
        (ev("purchase", "i4", 1500.0), EventSignal(known(unit(X1 + X3)), tags=("boots", "camping"))),
    ]


def _assert_same_state(a: UserState, b: UserState) -> None:
    close(a.short_vec, b.short_vec, rtol=1e-6, atol=1e-7)
    close(a.neg_vec, b.neg_vec, rtol=1e-6, atol=1e-7)
    assert (a.short_ts, a.neg_ts, a.tags_ts, a.last_ts) == (b.short_ts, b.neg_ts, b.tags_ts, b.last_ts)
    assert a.tags.keys() == b.tags.keys()
    for tag in a.tags:
        assert a.tags[tag] == pytest.approx(b.tags[tag], rel=1e-9)
    assert list(a.recent) == list(b.recent)
    assert (a.interactions, a.seen, a.dismissed) == (b.interactions, b.seen, b.dismissed)
    assert (a.n_events, a.version) == (b.n_events, b.version)


@pytest.mark.parametrize("batches", [(7,), (1, 1, 1, 1, 1, 1, 1), (2, 5), (3, 1, 3), (6, 1)])
def test_any_batching_equals_a_fresh_rebuild(updater: StateUpdater, batches: Sequence[int]) -> None:
    history = _history()
    rebuilt = fresh()
    for event, signal in history:
        updater.apply(rebuilt, event, signal)
    live = fresh()
    start = 0
    for size in batches:
        batch = history[start : start + size][::-1]  # a batch may arrive in any order ...
        for event, signal in sorted(batch, key=lambda es: es[0].timestamp):  # ... the engine sorts it
            updater.apply(live, event, signal)
        start += size
    _assert_same_state(live, rebuilt)


def test_rebuild_matches_hand_computed_totals(updater: StateUpdater) -> None:
    state = fresh()
    for event, signal in _history():
        updater.apply(state, event, signal)
    at = 1500.0

    def d(t: float, h: float = H) -> float:
        return 2.0 ** (-(at - t) / h)

    expected = (
        1.0 * d(0) * X1
        + 2.0 * d(30) * X2
        + 1.5 * d(60) * X2
        - 3.0 * d(150) * X3
        + 3.0 * d(200) * X2
        - 1.5 * d(420) * X1
        + 5.0 * known(unit(X1 + X3))
    )
    close(state.short_vec, expected, rtol=1e-5, atol=1e-7)
    assert state.neg_ts == 420.0  # the negative sum is kept at its own (last negative) reference time
    neg_at_420 = 3.0 * 2.0 ** (-(420.0 - 150.0) / H) * X3 + 1.5 * X1
    close(state.neg_vec, neg_at_420, rtol=1e-5, atol=1e-9)
    assert decayed_norm(state.neg_vec, state.neg_ts, 420.0 + H, H) == pytest.approx(
        0.5 * float(np.linalg.norm(known(state.neg_vec)))
    )
    tags = dict(state.top_tags(10, TAG_H))
    assert tags["camping"] == pytest.approx(1.5 * d(60, TAG_H) + 5.0)
    # tags are plain signed sums (independent of arrival order): the earlier dismissal still counts
    assert tags["boots"] == pytest.approx(5.0 - 3.0 * d(150, TAG_H))
    assert tags["stove"] == pytest.approx(2.0 * d(30, TAG_H) + 1.5 * d(60, TAG_H) + 3.0 * d(200, TAG_H))
    assert "tents" not in tags  # 1 · d(0) − 1.5 · d(420) < 0: the bad rating wiped the interest out
    assert state.tags.keys() == {"stove", "camping", "boots", "tents"}  # kept, negative, never shown
    assert state.dismissed == {"i3", "i1"}
    assert state.interactions == {"i1": 1.0, "i2": 4.5, "i4": 5.0}


def test_late_older_event_decays_vectors_like_a_rebuild(updater: StateUpdater) -> None:
    history = _history()
    rebuilt = fresh()
    for event, signal in history:
        updater.apply(rebuilt, event, signal)
    live = fresh()
    for event, signal in history[:3] + history[4:] + history[3:4]:  # the dismissal arrives last
        updater.apply(live, event, signal)
    close(live.short_vec, rebuilt.short_vec, rtol=1e-5, atol=1e-7)
    close(live.neg_vec, rebuilt.neg_vec, rtol=1e-5, atol=1e-7)
    assert (live.short_ts, live.last_ts) == (rebuilt.short_ts, rebuilt.last_ts)
    assert (live.interactions, live.seen, live.dismissed) == (rebuilt.interactions, rebuilt.seen, rebuilt.dismissed)


def test_late_older_event_keeps_recent_in_time_order() -> None:
    updater = StateUpdater(Settings(short_term_half_life=H, tag_half_life=TAG_H, recent_length=2))
    events = [ev("view", "i1", 0.0), ev("view", "i2", 10.0), ev("view", "i3", 20.0)]
    rebuilt = UserState.empty("u1", recent_length=2)
    for event in events:
        updater.apply(rebuilt, event, EventSignal(X1))
    assert rebuilt.recent_items() == ["i2", "i3"]
    live = UserState.empty("u1", recent_length=2)
    for event in (events[1], events[2], events[0]):  # i1 (the oldest) arrives last
        updater.apply(live, event, EventSignal(X1))
    assert live.recent_items() == ["i2", "i3"]  # actual: ["i3", "i1"]


def test_late_older_dismissal_gives_the_same_tags_as_a_rebuild(updater: StateUpdater) -> None:
    dismissal = (ev("dismiss", "i3", 50.0), EventSignal(X3, tags=("boots",)))
    purchase = (ev("purchase", "i4", 100.0), EventSignal(X3, tags=("boots",)))
    rebuilt = fresh()
    for event, signal in (dismissal, purchase):
        updater.apply(rebuilt, event, signal)
    expected = 5.0 - 3.0 * 2.0 ** (-50.0 / TAG_H)  # signed sums: the dismissal counts whatever the order
    assert rebuilt.top_tags(5, TAG_H) == [("boots", pytest.approx(expected))]
    live = fresh()
    for event, signal in (purchase, dismissal):
        updater.apply(live, event, signal)
    assert live.top_tags(5, TAG_H) == [("boots", pytest.approx(expected))]


def test_tag_rebase_past_2_to_the_30_keeps_decayed_values() -> None:
    updater = StateUpdater(Settings(short_term_half_life=H, tag_half_life=1.0))
    state = UserState.empty("u1")
    updater.apply(state, ev("view", "i1", 0.0), EventSignal(X1, tags=("a",)))
    updater.apply(state, ev("view", "i1", 20.0), EventSignal(X1, tags=("a",)))
    assert state.tags_ts == 0.0
    assert state.tags == {"a": pytest.approx(1.0 + 2.0**20)}  # stored in units of tags_ts
    updater.apply(state, ev("view", "i2", 35.0), EventSignal(X2, tags=("b",)))  # exponent 35 > 30: rebase
    assert state.tags_ts == 35.0
    assert state.tags["b"] == 1.0
    assert state.tags["a"] == pytest.approx(2.0**-35 + 2.0**-15, rel=1e-12)
    assert state.top_tags(5, 1.0) == [("b", 1.0), ("a", pytest.approx(2.0**-35 + 2.0**-15, rel=1e-12))]


def test_tag_rebase_drops_tags_that_decayed_to_nothing() -> None:
    updater = StateUpdater(Settings(short_term_half_life=H, tag_half_life=1.0))
    state = UserState.empty("u1")
    updater.apply(state, ev("view", "i1", 0.0), EventSignal(X1, tags=("old",)))
    updater.apply(state, ev("view", "i2", 40.0), EventSignal(X2, tags=("new",)))  # 2^-40 < 1e-9
    assert state.tags == {"new": 1.0}
    assert state.tags_ts == 40.0


def test_unit_and_decayed_norm() -> None:
    close(unit(np.array([3.0, 4.0], np.float32)), [0.6, 0.8])
    assert unit(None) is None
    assert unit(np.zeros(3, np.float32)) is None
    assert decayed_norm(None, 0.0, 10.0, H) == 0.0
    assert decayed_norm(np.array([3.0, 4.0]), 0.0, 2 * H, H) == pytest.approx(1.25)
    assert decayed_norm(np.array([3.0, 4.0]), 50.0, 0.0, H) == pytest.approx(5.0)  # never grows backwards

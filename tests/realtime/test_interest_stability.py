"""One click adds an interest, it does not replace a long history (issue 13, point 6).

The state keeps a new interest's clicks together even when its interests are full, and merges
alike interests rather than forget one; on the demo world, the list after one off-profile click
still matches the user's profile, and after three actions in the new interest it follows them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import pytest

from liverec.core.params import DEFAULT_DIVERSITY
from liverec.core.settings import Settings
from liverec.core.types import Event, EventType
from liverec.datasets.demo import CATEGORY_IDS, DemoWorld
from liverec.engine import Engine
from liverec.ranking.filters import Filters
from liverec.ranking.ranker import RUN_WINDOW, interest_slots
from liverec.realtime.state import ALIKE, EventSignal, StateUpdater, UserState

DIM = 16
DAY = 86400.0


def blend(axis: int, other: int, cos: float) -> np.ndarray:
    """A unit vector at cosine ``cos`` to axis ``axis``, leaning toward axis ``other``."""
    v = np.zeros(DIM, dtype=np.float32)
    v[axis], v[other] = cos, np.sqrt(1.0 - cos * cos)
    return v


def view(state: UserState, updater: StateUpdater, item_id: str, vector: np.ndarray, ts: float, tag: str,
         type_: str = "view") -> None:
    updater.apply(state, Event.create("u1", type_, item_id, timestamp=ts), EventSignal(vector, tags=(tag,)))


def established(updater: StateUpdater, topics: Sequence[tuple[int, str]], n: int = 6) -> UserState:
    """``n`` views in each topic (an axis and a tag), an hour apart, a week before day 30."""
    state = UserState.empty("u1")
    for t, (axis, tag) in enumerate(topics):
        for k in range(n):
            view(state, updater, f"{tag}-{k}", blend(axis, 15, 0.99), 23 * DAY + 3600.0 * (n * t + k), tag)
    return state


def test_clicks_in_a_new_interest_add_up_when_the_interests_are_full() -> None:
    """Three clicks in a new topic, each only ALIKE the one before (below ``interest_similarity``):
    the first takes the weakest interest's place, the next two join it instead of replacing it."""
    updater = StateUpdater(Settings(interests=3, interest_similarity=0.5))
    state = established(updater, [(4, "gaming"), (0, "running"), (2, "camping")])
    new = [blend(8, 9, 1.0), blend(8, 9, 0.4), blend(8, 10, 0.4)]
    assert ALIKE <= float(new[0] @ new[1]) < 0.5
    for k, vector in enumerate(new):
        view(state, updater, f"mixer-{k}", vector, 30 * DAY + 10.0 * k, "kitchen", "click")
    tags = [interest.top_tags(1)[0] for interest in state.interests]
    assert sorted(tags) == ["camping", "kitchen", "running"]  # gaming, the weakest (oldest), made room once
    kitchen = next(i for i in state.interests if i.top_tags(1) == ["kitchen"])
    assert kitchen.tags == {"kitchen": 4.5}  # all three clicks


def test_full_interests_merge_the_two_most_alike_rather_than_drop_one() -> None:
    updater = StateUpdater(Settings(interests=3, interest_similarity=0.5))
    state = established(updater, [(0, "trail running"), (2, "camping")])
    for k in range(6):  # a second running interest, ALIKE the first but apart from it
        view(state, updater, f"shoe-{k}", blend(0, 1, 0.3), 29 * DAY + 60.0 * k, "running shoes")
    assert len(state.interests) == 3
    view(state, updater, "mixer", blend(8, 9, 1.0), 30 * DAY, "kitchen", "click")
    labels = sorted(sorted(i.tags) for i in state.interests)
    assert labels == [["camping"], ["kitchen"], ["running shoes", "trail running"]]


def test_a_faded_interest_is_dropped_and_batches_agree() -> None:
    updater = StateUpdater(Settings(interests=2, interest_similarity=0.5, interest_half_life=DAY))
    events, signals = [], []
    for k, (axis, tag, ts) in enumerate([(0, "old", 0.0), (2, "recent", 9 * DAY), (4, "new", 10 * DAY)]):
        events.append(Event.create("u1", "view", f"i{k}", timestamp=ts))
        signals.append(EventSignal(blend(axis, 15, 1.0), tags=(tag,)))
    one = UserState.empty("u1")
    for event, signal in zip(events, signals, strict=True):
        updater.apply(one, event, signal)
    assert [i.top_tags(1)[0] for i in one.interests] == ["recent", "new"]  # "old" weighs 2^-10 by then
    batch = updater.apply_many(UserState.empty("u1"), events[::-1], signals[::-1])
    assert batch.interests == one.interests


def test_a_run_whose_new_interest_split_in_two_leaves_the_profile_its_slots() -> None:
    """Six clicks in a new topic whose texts split it into two interests (each built by the
    session alone) are one run: the established interests keep their slots of the list. The
    ranker once took the second part for an established interest, ended the run at one click and
    kept nothing, so a user's older interests fell off their list."""
    updater = StateUpdater(Settings(interests=5, interest_similarity=0.5))
    state = established(updater, [(0, "running"), (2, "camping")])
    grinder, server = blend(8, 9, 0.6), blend(8, 10, 0.6)
    assert ALIKE <= float(grinder @ server) < 0.5
    clicks = [(f"coffee-{k}", server if k % 2 else grinder) for k in range(6)]  # as a shop visit goes
    for k, (item_id, vector) in enumerate(clicks):
        view(state, updater, item_id, vector, 30 * DAY + 10.0 * k, "coffee", "click")
    assert [sorted(i.tags) for i in state.interests].count(["coffee"]) == 2
    vectors = {**{f"{tag}-{k}": blend(axis, 15, 0.99) for axis, tag in [(0, "running"), (2, "camping")]
                  for k in range(6)}, **dict(clicks)}
    recent = [(a, vectors[a.item_id or ""]) for a in state.positive_actions()[::-1][:RUN_WINDOW]]
    half_life = updater.settings.interest_half_life
    ordered = sorted(state.interests, key=lambda i: -i.strength(state.last_ts, half_life))  # as RecallContext's
    context = SimpleNamespace(state=state, interest_half_life=half_life, interests=lambda: ordered)
    slots = interest_slots(context, recent, 10)  # type: ignore[arg-type]
    assert slots is not None and slots.run == 6
    served = {ordered[row].top_tags(1)[0] for row in slots.others}
    assert served and served <= {"running", "camping"}


# ---------------------------------------------------------------- on the demo world

POSITIVE = (EventType.VIEW, EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE)
WINDOW = 30  # a profile is what the user's last WINDOW item actions were about
USERS = 40


def related(engine: Engine, world: DemoWorld) -> dict[str, dict[str, float]]:
    """Mean cosine between the items of two categories (about 0.3 within one, -0.1 to 0.14 across)."""
    ids = [item.item_id for item in world.items]
    vectors = engine.items.vectors_of(ids)
    category = np.array([world.category_of(i) for i in ids])
    mean = {c: vectors[category == c].mean(axis=0) for c in CATEGORY_IDS}
    return {a: {b: float(mean[a] @ mean[b]) for b in CATEGORY_IDS} for a in CATEGORY_IDS}


def established_users(engine: Engine, world: DemoWorld) -> list[tuple[str, list[Event], set[str], str]]:
    """Users with an established profile: 15+ item actions among their last WINDOW, 80% of them in
    categories holding 20% each (the profile), their last five in it too. Each gets a category of
    the catalog they never touched and that is unrelated to every profile category (mean item
    cosine below 0.05: no hiking for a runner), chosen at random with a fixed seed."""
    relatedness = related(engine, world)
    rng = np.random.default_rng(13)
    by_user: dict[str, list[Event]] = {}
    for event in world.events:
        by_user.setdefault(event.user_id, []).append(event)
    out = []
    for user in world.users:
        events = by_user.get(user.user_id, [])
        items = [e for e in events if e.item_id is not None and e.type in POSITIVE]
        last = Counter(world.category_of(e.item_id or "") for e in items[-WINDOW:])
        profile = {c for c, n in last.items() if n >= 0.2 * sum(last.values())}
        if len(items[-WINDOW:]) < 15 or sum(last[c] for c in profile) < 0.8 * sum(last.values()):
            continue
        if any(world.category_of(e.item_id or "") not in profile for e in items[-5:]):
            continue
        touched = {world.category_of(e.item_id or "") for e in items}
        unrelated = [c for c in CATEGORY_IDS if c not in touched and all(relatedness[c][p] < 0.05 for p in profile)]
        if unrelated:
            out.append((user.user_id, events, profile, unrelated[int(rng.integers(len(unrelated)))]))
        if len(out) == USERS:
            break
    return out


@pytest.mark.parametrize("gap", [60.0, DAY], ids=["same-session", "next-day"])
def test_one_off_profile_click_keeps_the_profile_and_three_make_a_new_interest(
    engine: Engine, world: DemoWorld, gap: float
) -> None:
    """After one click in an unrelated category, at least half of the next 10 still match the
    profile; after three clicks there, at least half are of the new interest — for most users.

    States are built from each user's events plus the clicks (nothing is ingested, so other
    tests' users are untouched) and ranked by the trained demo engine. Measured over all 175 such
    users (same session / next day), before issue 13: after one click 0.60 / 0.21 of the list
    matched the profile (75% / 13% of users at least half), after three 0.72 / 0.91 was the new
    interest (90% / 99%); after: 0.66 / 0.59 (96% / 94%) and 0.59 / 0.62 (90% / 97%). With the
    tag filter (issue 13, point 8) fusion alone gave the new interest 0.54 (75% of users) in the
    same session; since the run's own items take their part of the list and each established
    interest keeps its own slots: 0.64 / 0.58 (92% / 92%) after one click, 0.59 / 0.59 (88% / 92%)
    after three.
    """
    users = established_users(engine, world)
    assert len(users) == USERS
    ranker = engine.serving.ranker
    after_one, after_three = [], []
    for user_id, events, profile, new in users:
        clicks = world.burst(user_id, new, n=3, start=events[-1].timestamp + gap, types=("click",))

        def share(extra: list[Event], categories: set[str], user_id: str = user_id,
                  events: list[Event] = events) -> float:
            state = engine.states.build(user_id, [*events, *extra])
            recs = ranker.recommend(state, 10, Filters(), DEFAULT_DIVERSITY, extra[-1].timestamp + 30.0)
            # The engine's catalog, not the world's: other tests add items of their own to it.
            return sum(engine.items.get(r.item_id).categories[0] in categories for r in recs) / len(recs)

        after_one.append(share(clicks[:1], profile))
        after_three.append(share(clicks, {new}))
    one, three = np.array(after_one), np.array(after_three)
    rates = f"profile after one click {one.mean():.2f} ({(one >= 0.5).mean():.0%} of users at least half), " \
            f"new interest after three {three.mean():.2f} ({(three >= 0.5).mean():.0%})"
    print(rates)  # the figures the docstring quotes (pytest -s)
    assert one.mean() >= 0.5 and (one >= 0.5).mean() >= 0.8, rates
    assert three.mean() >= 0.5 and (three >= 0.5).mean() >= 0.8, rates

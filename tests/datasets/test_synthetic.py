"""The seeded scale generator (issue 16): sizes, order, determinism and the shape of the stream."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.types import EventType
from liverec.datasets.synthetic import LEAVES, ScaleSpec, SyntheticWorld, load_world
from liverec.engine import Engine

SPEC = ScaleSpec(items=3_000, events=20_000, seed=5)


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(SPEC)


@pytest.fixture(scope="module")
def events(world: SyntheticWorld) -> list:
    return [e for batch in world.event_batches(4_096) for e in batch]


def test_the_catalog_has_every_item_once_in_two_languages_over_two_levels_of_category(world: SyntheticWorld) -> None:
    items = [i for batch in world.item_batches(1_000) for i in batch]
    assert len(items) == 3_000 and len({i.item_id for i in items}) == 3_000
    assert {i.language for i in items} == {"en", "zh"}
    for item in items[:200]:
        top, leaf = item.categories
        assert leaf.startswith(top + "/") and item.title and item.description
    assert len({i.categories[1] for i in items}) > 60  # the leaves, not just the 14 top categories
    assert all(i.created_at is not None and i.created_at < SPEC.start for i in items)


def test_items_do_not_depend_on_the_batch_size(world: SyntheticWorld) -> None:
    small = [i for batch in world.item_batches(7) for i in batch][:50]
    large = next(iter(world.item_batches(50)))
    assert small == large


def test_items_from_a_starting_point_are_the_ones_a_full_pass_gives_there(world: SyntheticWorld) -> None:
    full = [i for batch in world.item_batches(1_000) for i in batch]
    resumed = [i for batch in world.item_batches(1_000, first=2_345) for i in batch]
    assert resumed == full[2_345:]


def test_the_stream_has_the_asked_length_in_time_order_with_unique_ids(events: list) -> None:
    assert len(events) == SPEC.events
    assert len({e.event_id for e in events}) == SPEC.events
    times = np.array([e.timestamp for e in events])
    assert np.all(np.diff(times) >= 0)
    assert SPEC.start <= times[0] and times[-1] < SPEC.end + 3 * 86_400


def test_the_same_seed_gives_the_same_stream_and_another_seed_another(events: list) -> None:
    again = [e for batch in SyntheticWorld(SPEC).event_batches(10_000) for e in batch]
    assert again == events  # and the batch size changes nothing
    other = next(SyntheticWorld(ScaleSpec(items=3_000, events=20_000, seed=6)).event_batches(500))
    assert [e.item_id for e in other] != [e.item_id for e in events[:500]]


def test_popularity_is_heavy_tailed_and_users_activity_too(events: list) -> None:
    items = Counter(e.item_id for e in events if e.item_id is not None)
    counts = sorted(items.values(), reverse=True)
    top = sum(counts[: len(counts) // 100 or 1]) / sum(counts)
    assert top > 0.10  # the top 1% of items take far more than 1% of the traffic
    users = sorted(Counter(e.user_id for e in events).values(), reverse=True)
    assert users[0] > 10 * np.median(users)


def test_sessions_keep_to_a_subtype_and_open_with_searches_in_the_users_language(
        events: list, world: SyntheticWorld) -> None:
    by_session: dict[str, list] = {}
    for e in events:
        by_session.setdefault(e.session_id, []).append(e)
    leaf_of = {world.item_id(k): int(world.leaf[k]) for k in range(SPEC.items)}
    same = total = 0
    for session in by_session.values():
        leaves = [leaf_of[e.item_id] for e in session if e.item_id is not None]
        if len(leaves) >= 2:
            total += len(leaves)
            same += Counter(leaves).most_common(1)[0][1]
    assert same / total > 0.7  # chance would give ~1/len(LEAVES)
    searches = [e for e in events if e.type is EventType.SEARCH]
    assert searches and all(e.text and e.item_id is None for e in searches)
    assert all(by_session[e.session_id][0] is e for e in searches)
    kinds = Counter(e.type for e in events)
    assert kinds[EventType.VIEW] > kinds[EventType.CLICK] > kinds[EventType.PURCHASE] > 0
    assert all(1 <= e.value <= 5 for e in events if e.type is EventType.RATE)
    assert len(LEAVES) > 60


def _late_novelty(drift: float) -> float:
    """Share of users' second-half item events in subtypes they had not visited twice in their first half."""
    spec = ScaleSpec(items=2_000, events=30_000, users=200, drift=drift, seed=3)
    world = SyntheticWorld(spec)
    leaf_of = {world.item_id(k): int(world.leaf[k]) for k in range(spec.items)}
    by_user: dict[str, list[int]] = {}
    for batch in world.event_batches():
        for e in batch:
            if e.item_id is not None:
                by_user.setdefault(e.user_id, []).append(leaf_of[e.item_id])
    new = total = 0
    for own in by_user.values():
        if len(own) >= 20:
            half = len(own) // 2
            early = {leaf for leaf, n in Counter(own[:half]).items() if n >= 2}
            new += sum(leaf not in early for leaf in own[half:])
            total += len(own) - half
    return new / total


def test_drifting_users_change_what_they_look_at() -> None:
    """Strays alone put ~11% of late events in new subtypes; drift doubles that (the same seed otherwise)."""
    steady, drifting = _late_novelty(0.0), _late_novelty(1.0)
    assert drifting > 1.5 * steady


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"items": 0}, "items"), ({"events": -1}, "events"), ({"users": 0}, "users"), ({"drift": 1.5}, "drift"),
     ({"days": 0}, "days"), ({"session_length": 0.5}, "session_length"), ({"items": True}, "items")],
)
def test_a_bad_spec_is_refused_naming_the_field(kwargs: dict, field: str) -> None:
    values = {"items": 10, "events": 10, **kwargs}
    with pytest.raises(InvalidInputError) as caught:
        ScaleSpec(**values)
    assert caught.value.field == field


def test_load_world_streams_a_small_world_into_an_engine() -> None:
    spec = ScaleSpec(items=400, events=3_000, seed=2)
    seen: list[tuple[str, int]] = []
    engine = Engine.open("memory://")
    try:
        load_world(engine, spec, item_batch=150, event_batch=1_000, progress=lambda s, d, t: seen.append((s, d)))
        assert len(engine.items) == 400 and engine.store.events.count() == 3_000
        assert seen[-1] == ("events", 3_000) and ("items", 400) in seen
        user = next(iter(engine.store.events.users()))
        assert engine.recommend(user, k=5)
    finally:
        engine.close()

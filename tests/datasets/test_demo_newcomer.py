"""What a newcomer saw in the demo (issue 13, point 7): its clock, and its cross-lingual search.

The demo world ends at the ``now`` it is given (by default the wall clock), so what the demo's
user "just" did is not dated a year ago; another ``now`` only shifts the timestamps. A Chinese
query whose English matches say the same thing shows both languages at the top, without letting
a clearly worse match or another category in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from liverec.core.errors import InvalidInputError
from liverec.datasets.demo import REFERENCE_TIME, DemoWorld, build_demo_world
from liverec.demo_story import BURST_LEAD
from liverec.engine import Engine
from liverec.ranking.lookup import LANGUAGE_MARGIN, mix_languages
from tests._worlds import world_engine

DAY = 86_400.0
NOW = REFERENCE_TIME + 337 * DAY + 0.75  # a "now" with a fraction: the world cuts it to whole seconds


# ------------------------------------------------------------------------------------------ clock


def test_the_world_ends_at_the_now_it_is_given() -> None:
    world = build_demo_world(seed=3, n_items=280, n_users=30, now=NOW)
    end = math.floor(NOW)
    assert world.reference_time == end
    assert all(end - 90 * DAY <= item.created_at < end for item in world.items)
    times = [e.timestamp for e in world.events]
    assert end - 60 * DAY <= min(times) and max(times) < end
    assert all(u.drift is None or end - 60 * DAY < u.drift.time < end for u in world.users)


def test_another_now_only_shifts_the_clock() -> None:
    a = build_demo_world(seed=3, n_items=280, n_users=30, now=REFERENCE_TIME)
    b = build_demo_world(seed=3, n_items=280, n_users=30, now=NOW)
    shift = math.floor(NOW) - REFERENCE_TIME
    assert [(i.item_id, i.title, i.description, i.tags) for i in a.items] == [
        (i.item_id, i.title, i.description, i.tags) for i in b.items
    ]
    assert all(y.created_at - x.created_at == shift for x, y in zip(a.items, b.items, strict=True))
    assert len(a.events) == len(b.events)
    for x, y in zip(a.events, b.events, strict=True):
        assert (x.event_id, x.user_id, x.type, x.item_id, x.value, x.text) == (
            y.event_id, y.user_id, y.type, y.item_id, y.value, y.text
        )
        assert y.timestamp - x.timestamp == shift
    assert [u.preferences for u in a.users] == [u.preferences for u in b.users]
    assert [u.drift.time + shift if u.drift else None for u in a.users] == [
        u.drift.time if u.drift else None for u in b.users
    ]


def test_by_default_the_world_ends_now_and_fresh_events_are_recent_past() -> None:
    before = time.time()
    world = build_demo_world(seed=3, n_items=280, n_users=30)
    assert math.floor(before) <= world.reference_time <= time.time()
    assert max(e.timestamp for e in world.events) < world.reference_time
    # What tests and the demo add by default lies in the hour before the world's "now", never ahead.
    history = world.new_user_history("newcomer", "cameras", 12)
    burst = world.burst("stranger", "hiking", n=3)
    for event in history + burst:
        assert world.reference_time - 3600 <= event.timestamp < world.reference_time


@pytest.mark.parametrize("now", [float("nan"), float("inf"), "2026-12-02", True, 5.0])
def test_a_bad_now_is_refused(now: object) -> None:
    with pytest.raises(InvalidInputError, match="now"):
        build_demo_world(seed=3, n_items=280, n_users=5, now=now)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ engine


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(seed=7, n_items=420, n_users=30)  # at the wall clock, as the demo builds it


@pytest.fixture(scope="module")
def engine(world: DemoWorld) -> Iterator[Engine]:
    eng = world_engine(world)
    yield eng
    eng.close()


def test_what_the_user_just_did_is_dated_minutes_ago(world: DemoWorld, engine: Engine) -> None:
    user = world.users[0].user_id
    last = max(e.timestamp for e in world.events_of(user))
    burst = world.burst(user, "hiking", n=3, start=max(last + 60.0, time.time() - BURST_LEAD))
    assert max(e.timestamp for e in burst) <= time.time()  # the demo's burst is never in the future
    engine.ingest_events(burst)
    texts = [reason.text for rec in engine.recommend(user, k=10) for reason in rec.reasons]
    recent = [t for t in texts if "you added to your cart" in t or "you clicked" in t or "you viewed" in t]
    assert recent, texts
    assert not [t for t in recent if " on 20" in t], recent  # a date means "over a month ago"


@pytest.mark.parametrize(("query", "category"), [("轻薄笔记本电脑", "laptops"), ("登山鞋", "hiking")])
def test_a_chinese_query_with_english_matches_shows_both_languages(
    world: DemoWorld, engine: Engine, query: str, category: str
) -> None:
    top = engine.search(query, k=5)
    assert len(top) == 5
    assert {engine.items.get(r.item_id).language for r in top} == {"en", "zh"}
    assert {world.category_of(r.item_id) for r in top} == {category}


@pytest.mark.parametrize("query", ["轻薄笔记本电脑", "hiking boots", "降噪耳机", "espresso machine"])
def test_no_result_sits_above_one_that_matches_clearly_better(engine: Engine, query: str) -> None:
    scores = [r.score for r in engine.search(query, k=10)]
    assert len(scores) == 10
    assert all(later - earlier <= LANGUAGE_MARGIN + 1e-6 for n, earlier in enumerate(scores) for later in scores[n:])


def test_languages_take_turns_only_while_they_match_about_equally() -> None:
    ranked = [("z1", 0.90), ("z2", 0.85), ("z3", 0.80), ("e1", 0.78), ("e2", 0.50)]
    language = {i: i[0] for i, _ in ranked}
    # e1 is 0.12 below z1 (not yet), 0.07 below z2 (its turn); e2 is far below z2 and z3.
    assert [i for i, _ in mix_languages(ranked, language, 5, margin=0.1)] == ["z1", "e1", "z2", "z3", "e2"]
    assert mix_languages(ranked, language, 5, margin=0.0) == ranked
    assert mix_languages(ranked, language, 2, margin=0.1) == [("z1", 0.90), ("e1", 0.78)]
    alone = [("z1", 0.9), ("z2", 0.2)]
    assert mix_languages(alone, {"z1": "zh", "z2": "zh"}, 5) == alone

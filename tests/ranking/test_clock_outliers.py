"""Clock outliers and empty lists (issue 12, finding 1; issue 13, point 1).

One event dated far in the future (``timestamp: 1e12``, a millisecond timestamp or a broken
client clock) must not become everyone's "now": trending counts it as one event made now, no
more. And whatever fusion learned, a user with no history gets ``k`` items while ``k`` available
items pass the request's filters: popular now, then new items, then anything available.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

import numpy as np
import pytest

from liverec.core.types import DEFAULT_EVENT_WEIGHTS, Event, EventType
from liverec.datasets.demo import DemoWorld, build_demo_world
from liverec.engine import Engine
from liverec.models.base import Ranked, TrainingData
from liverec.models.popularity import TrendingPopularity
from liverec.ranking.features import Features, build_features
from liverec.ranking.fusion import WEIGHT_GRID, LinearFusion
from liverec.ranking.recalls import recall_names
from tests._worlds import paced

HOUR = 3600.0
FAR_FUTURE = 1e12  # year 33658: what a millisecond timestamp looks like as seconds
TRENDING_ZERO = {"kind": "linear", "weights": {"content": 1.0}}  # a scorer that never lists trending's items


def _data(events: list[Event], items: list[str]) -> TrainingData:
    return TrainingData.from_events(events, items, np.eye(len(items), dtype=np.float32), DEFAULT_EVENT_WEIGHTS)


def _recent_views() -> tuple[list[Event], list[str]]:
    """Views in the last hours: a×5, b×4, c×3, d×2, e×1, and one view of z dated 1e12."""
    now = time.time()
    events = [Event.create(f"u{n}", EventType.VIEW, item, timestamp=now - HOUR * (n + 1))
              for item, count in zip("abcde", range(5, 0, -1), strict=True) for n in range(count)]
    events.append(Event.create("u9", EventType.VIEW, "z", timestamp=FAR_FUTURE))
    return sorted(events, key=lambda e: e.timestamp), list("abcdez")


def test_training_data_reference_time_is_never_past_the_wall_clock() -> None:
    events, items = _recent_views()
    before = time.time()
    data = _data(events, items)
    assert before <= data.now <= time.time()
    past = [e for e in events if e.timestamp < FAR_FUTURE]
    assert _data(past, items).now == max(e.timestamp for e in past)  # a log in the past keeps its own "now"


def test_trending_counts_a_far_future_event_as_one_event_made_now() -> None:
    events, items = _recent_views()
    model = TrendingPopularity(half_life=3 * 86400.0).fit(_data(events, items))
    ids, scores = model.recommend_ranked(10)
    assert ids == list("abcdze") or ids == list("abcdez")  # every item, by its recent views
    assert model.now_ <= time.time()
    z = float(model.score_of(["z"])[0])
    assert 0 < z <= DEFAULT_EVENT_WEIGHTS[EventType.VIEW]  # no more than one view made now
    assert float(scores[0]) > 4.0  # a's five recent views were not decayed to nothing


def _features(recalls: Mapping[str, Mapping[str, float]]) -> Features:
    ranked: dict[str, Ranked] = {name: (list(recalls.get(name, {})),
                                        np.array(list(recalls.get(name, {}).values()), dtype=np.float64))
                                 for name in recall_names()}
    return build_features(ranked)


def _trending_hurts(n: int) -> tuple[Features, str]:
    """content ranks the target first and a decoy close behind; trending ranks the decoy first
    and not the target: any trending weight of 0.25 or more puts the decoy above the target."""
    t, d, y = f"t{n}", f"d{n}", f"y{n}"
    return _features({"content": {t: 1.0, d: 0.9, y: 0.0}, "trending": {d: 1.0, t: 0.0}}), t


@pytest.mark.parametrize("start", [None, {"content": 1.0, "trending": 0.0}])
def test_fusion_tuning_never_zeroes_the_recall_that_serves_users_without_history(
    start: dict[str, float] | None,
) -> None:
    tuned = LinearFusion(weights=start).fit([_trending_hurts(n) for n in range(4)])
    assert tuned.weights_["trending"] >= min(w for w in WEIGHT_GRID if w > 0)
    cold = _features({"trending": {"p1": 3.0, "p2": 2.0, "p3": 1.0}})  # what a user with no events gets
    assert (tuned.score(cold)[:2] > 0).all()


# ---------------------------------------------------------------------------- the list is never empty


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(seed=3, n_items=150, n_users=30)


@pytest.fixture(scope="module")
def untrained(world: DemoWorld) -> Iterator[Engine]:
    eng = Engine.open("memory://")
    eng.ingest_items(world.items)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def trained(world: DemoWorld) -> Iterator[Engine]:
    eng = Engine.open("memory://")
    eng.ingest_items(world.items)
    eng.ingest_events(world.events)
    eng.train()
    yield eng
    eng.close()


def test_before_any_training_a_new_user_gets_k_new_items(untrained: Engine, world: DemoWorld) -> None:
    recs = untrained.recommend("nobody", k=10)
    assert len(recs) == 10
    created = {i.item_id: i.created_at for i in world.items}
    listed = [created[r.item_id] for r in recs]
    assert listed == sorted(listed, reverse=True)  # newest first
    assert min(listed) >= sorted(created.values(), reverse=True)[9]
    assert all(r.reasons[0].kind == "fresh" and r.reasons[0].text == "new in the catalog" for r in recs)


def test_a_scorer_that_weighs_trending_zero_still_lists_what_is_popular_for_a_new_user(trained: Engine) -> None:
    recs = trained.recommend("nobody", k=10, scorer=TRENDING_ZERO)
    assert len(recs) == 10
    trending = trained.snapshot.models["trending"]  # type: ignore[union-attr]
    assert [r.item_id for r in recs] == trending.recommend_ranked(10)[0]
    assert all(r.reasons[0].text == "popular now" for r in recs)
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)


def test_the_fallback_honours_the_request_filters(trained: Engine, world: DemoWorld) -> None:
    category = world.items[0].categories[0]
    in_category = {i.item_id for i in world.items if category in i.categories}
    excluded = sorted(in_category)[:3]
    recs = trained.recommend("nobody", k=len(in_category), scorer=TRENDING_ZERO,
                             filters={"include_categories": [category], "exclude_items": excluded})
    ids = [r.item_id for r in recs]
    assert len(ids) == len(set(ids)) == len(in_category) - 3  # every allowed item, none twice, no more
    assert set(ids) == in_category - set(excluded)


def test_an_unavailable_item_never_fills_a_list(world: DemoWorld) -> None:
    with Engine.open("memory://") as eng:
        items = [i.to_dict() for i in world.items[:12]]
        for row in items[:4]:
            row["available"] = False
        eng.ingest_items(items)
        recs = eng.recommend("nobody", k=10)
        assert sorted(r.item_id for r in recs) == sorted(i["item_id"] for i in items[4:])  # 8: all there are


def test_a_user_who_saw_most_of_the_catalog_gets_only_unseen_items_to_fill(trained: Engine, world: DemoWorld) -> None:
    seen = [i.item_id for i in world.items[:-12]]
    times = paced(len(seen))  # a person's pace: a view a second for 40 minutes is a timer, quarantined
    trained.ingest_events([Event.create("glutton", EventType.VIEW, item, timestamp=ts)
                           for ts, item in zip(times, seen, strict=True)])
    recs = trained.recommend("glutton", k=10, scorer=TRENDING_ZERO)
    assert len(recs) == 10
    assert not {r.item_id for r in recs} & set(seen)
    allowed = trained.recommend("glutton", k=20, filters={"exclude_seen": True})
    assert len(allowed) == 12  # only twelve are unseen: the list holds them all, no seen one


def test_an_event_ahead_of_the_clock_counts_the_same_live_and_in_a_rebuild(trained: Engine, world: DemoWorld) -> None:
    """A client whose clock runs minutes ahead (within ``timestamp_future_skew``): trending and
    click-through count its events at their own time whenever they are folded in, so the refold
    after an erasure gives what live gave. Against the wall clock they counted as made at ingest
    live and at the refold's moment in the rebuild (the full suite: a click-through rate 1.6e-8 apart)."""
    item, other = world.items[0].item_id, world.items[1].item_id
    ahead = time.time() + 600.0
    trained.ingest_events([Event.create("skewed-client", EventType.IMPRESSION, item, timestamp=ahead),
                           Event.create("skewed-client", EventType.CLICK, item, timestamp=ahead + 7.0),
                           Event.create("skewed-client", EventType.VIEW, other, timestamp=ahead + 19.0)])
    at = ahead + HOUR
    models = trained.snapshot.models  # type: ignore[union-attr]
    live = (models["trending"].score_of([item, other], at), *models["ctr"].rates([item, other], at))
    time.sleep(0.5)  # the refold comes later than the ingest, as it always does
    trained.ingest_events([Event.create("erased-soon", EventType.VIEW, other)])
    assert trained.forget_user("erased-soon").events_removed == 1  # the online models are rebuilt from the log
    models = trained.snapshot.models  # type: ignore[union-attr]
    rebuilt = (models["trending"].score_of([item, other], at), *models["ctr"].rates([item, other], at))
    for a, b in zip(rebuilt, live, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)

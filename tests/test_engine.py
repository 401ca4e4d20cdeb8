"""The engine's acceptance behaviour on the demo world, with the real encoder and real SQLite."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.core.types import Event, EventType, Recommendation
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from liverec.ranking.diversity import intra_list_similarity
from liverec.ranking.fusion import WEIGHT_GRID
from liverec.ranking.recalls import RECALLS
from liverec.ranking.snapshot import current_version


def categories(engine: Engine, recs: list[Recommendation]) -> Counter[str]:
    """Main category of each recommended item, as the engine's catalog has it (items added by
    other tests included)."""
    return Counter(engine.items.get(r.item_id).categories[0] for r in recs)


def camera_fan(engine: Engine, world: DemoWorld, user_id: str, n: int = 12) -> list[Event]:
    history = world.new_user_history(user_id, "cameras", n)
    engine.ingest_events(history)
    return history


def burst_after(world: DemoWorld, history: list[Event], user_id: str, category: str, n: int = 3) -> list[Event]:
    start = max(e.timestamp for e in history) + 60.0
    return world.burst(user_id, category, n=n, start=start, types=("click",))


# ---------------------------------------------------------------- real time


def test_camera_history_gives_camera_dominated_recommendations(engine: Engine, world: DemoWorld) -> None:
    camera_fan(engine, world, "rt-camera")
    recs = engine.recommend("rt-camera", k=10)
    assert len(recs) == 10
    assert categories(engine, recs)["cameras"] >= 8


def test_three_hiking_events_show_in_the_very_next_recommend_with_cited_evidence(
    engine: Engine, world: DemoWorld
) -> None:
    history = camera_fan(engine, world, "rt-hiker")
    before = engine.recommend("rt-hiker", k=10)
    assert categories(engine, before)["hiking"] == 0
    burst = burst_after(world, history, "rt-hiker", "hiking")
    assert len(burst) == 3 and {world.category_of(e.item_id or "") for e in burst} == {"hiking"}
    engine.ingest_events(burst)

    after = engine.recommend("rt-hiker", k=10)
    burst_items = {e.item_id for e in burst}
    hiking = [r for r in after if world.category_of(r.item_id) == "hiking"]
    citing = [r for r in hiking if any(reason.evidence in burst_items for reason in r.reasons)]
    assert len(citing) >= 2, [r.reasons for r in hiking]  # others may be there as "popular now" + the tag
    assert not {r.item_id for r in after} & burst_items  # what they just clicked is not re-sold
    assert "hiking" in dict(engine.interests("rt-hiker", k=10))


def test_state_is_rebuilt_from_the_log_after_a_restart(engine: Engine, world: DemoWorld, engine_path: Path) -> None:
    camera_fan(engine, world, "rt-restart")
    live = engine.state("rt-restart")
    reopened = Engine.open(f"sqlite:///{engine_path}")
    try:
        rebuilt = reopened.state("rt-restart")
        assert rebuilt.short_vec is not None and live.short_vec is not None
        np.testing.assert_allclose(rebuilt.short_vec, live.short_vec, rtol=1e-5, atol=1e-6)
        assert rebuilt.tags.keys() == live.tags.keys()
        assert rebuilt.seen == live.seen
        assert [r.item_id for r in reopened.recommend("rt-restart")] == [
            r.item_id for r in engine.recommend("rt-restart")
        ]
    finally:
        reopened.close()


def test_a_retried_batch_stores_and_applies_nothing_twice(engine: Engine, world: DemoWorld) -> None:
    history = world.new_user_history("rt-retry", "laptops", 6)
    first = engine.ingest_events(history)
    n_events = engine.state("rt-retry").n_events
    again = engine.ingest_events(history)
    assert (first.stored, again.stored, again.duplicates) == (len(history), 0, len(history))
    assert engine.state("rt-retry").n_events == n_events
    assert len(engine.store.events.by_user("rt-retry")) == len(history)


# ---------------------------------------------------------------- language


def test_chinese_query_finds_english_laptops(engine: Engine, world: DemoWorld) -> None:
    hits = engine.search("轻薄笔记本电脑", k=20)
    assert all(world.category_of(h.item_id) == "laptops" for h in hits)
    english = [h for h in hits if engine.items.get(h.item_id).language == "en"]
    assert len(english) >= 2


def test_english_query_finds_chinese_laptops(engine: Engine, world: DemoWorld) -> None:
    hits = engine.search("lightweight thin laptop", k=20)
    assert all(world.category_of(h.item_id) == "laptops" for h in hits)
    chinese = [h for h in hits if engine.items.get(h.item_id).language == "zh"]
    assert len(chinese) >= 2


def test_a_search_with_a_user_is_an_event_that_moves_their_interest(engine: Engine, world: DemoWorld) -> None:
    history = camera_fan(engine, world, "rt-search")
    engine.search("防水登山鞋", k=5, user_id="rt-search")
    events = engine.store.events.by_user("rt-search")
    assert len(events) == len(history) + 1 and events[-1].type is EventType.SEARCH
    recs = engine.recommend("rt-search", k=10)
    assert categories(engine, recs)["hiking"] >= 1
    assert any(r.evidence == "防水登山鞋" for rec in recs for r in rec.reasons)


# ---------------------------------------------------------------- cold start


def test_an_item_added_after_training_is_searchable_and_recommended_at_once(engine: Engine, world: DemoWorld) -> None:
    version = engine.snapshot.version if engine.snapshot else None
    new = world.make_item("cameras", "en", seed=4242)
    engine.ingest_items([new])
    assert engine.search(new.title, k=3)[0].item_id == new.item_id
    fan = world.new_user_history("rt-cold", "cameras", 12)
    engine.ingest_events(fan)
    recs = engine.recommend("rt-cold", k=10)
    assert new.item_id in [r.item_id for r in recs]
    reasons = next(r.reasons for r in recs if r.item_id == new.item_id)
    assert {r.kind for r in reasons} & {"fresh", "content"}
    assert any(r.evidence in {e.item_id for e in fan} for r in reasons)
    assert (engine.snapshot.version if engine.snapshot else None) == version  # no retraining happened


# ---------------------------------------------------------------- negative feedback


def _closest_in_list(engine: Engine, recs: list[Recommendation], target: str, n: int = 5) -> set[str]:
    """The ``n`` items of ``recs`` whose text is closest to ``target``'s."""
    others = [r.item_id for r in recs if r.item_id != target]
    sims = engine.items.vectors_of(others) @ engine.items.vectors_of([target])[0]
    return {others[i] for i in np.argsort(-sims)[:n]}


def _mean_rank(recs: list[Recommendation], items: set[str], k: int) -> float:
    ranks = [n for n, r in enumerate(recs) if r.item_id in items]
    return float(np.mean(ranks + [k] * (len(items) - len(ranks))))


def test_dismiss_pushes_similar_items_down(engine: Engine, world: DemoWorld) -> None:
    history = camera_fan(engine, world, "rt-dismiss")
    before = engine.recommend("rt-dismiss", k=30, diversity=0.0)
    target = before[0].item_id
    neighbours = _closest_in_list(engine, before, target)
    engine.ingest_events(
        [Event.create("rt-dismiss", "dismiss", target, timestamp=max(e.timestamp for e in history) + 30)]
    )
    after = engine.recommend("rt-dismiss", k=30, diversity=0.0)
    assert target not in [r.item_id for r in after]
    assert _mean_rank(after, neighbours, 30) > _mean_rank(before, neighbours, 30)


def test_a_negative_review_pushes_similar_items_down(engine: Engine, world: DemoWorld) -> None:
    history = camera_fan(engine, world, "rt-review")
    before = engine.recommend("rt-review", k=30, diversity=0.0)
    target = before[0].item_id
    neighbours = _closest_in_list(engine, before, target)
    review = Event.create(
        "rt-review", "review", target, text="Broke after one day, a total waste of money.",
        timestamp=max(e.timestamp for e in history) + 30,
    )
    engine.ingest_events([review])
    state = engine.state("rt-review")
    assert state.recent[-1].weight < 0  # the text alone (no rating) made it negative
    after = engine.recommend("rt-review", k=30, diversity=0.0)
    assert _mean_rank(after, neighbours, 30) > _mean_rank(before, neighbours, 30)


# ---------------------------------------------------------------- erasure


def test_forget_user_leaves_no_event_or_state(engine: Engine, world: DemoWorld) -> None:
    history = camera_fan(engine, world, "rt-forget")
    engine.recommend("rt-forget")
    result = engine.forget_user("rt-forget")
    assert (result.events_removed, result.state_removed) == (len(history), True)
    assert engine.store.events.by_user("rt-forget") == []
    assert engine.states.get("rt-forget") is None
    assert "rt-forget" not in engine.store.events.users()
    with pytest.raises(NotFoundError, match="rt-forget"):
        engine.interests("rt-forget")
    # Recommending now treats them as a stranger: nothing of theirs is left to personalise with.
    assert all(r.reasons[0].kind == "trending" for r in engine.recommend("rt-forget", k=5))


def test_what_an_erased_user_added_since_training_goes_at_once_as_a_restart_would(
    engine: Engine, world: DemoWorld, engine_path: Path
) -> None:
    # Before: the live process kept the erased user's trending and co-visitation counts until the
    # next training while a restart rebuilt the models from the log without them, so the same user
    # got another list from a restarted server (the restart test failed after the service tests' erasures).
    probe = camera_fan(engine, world, "rt-erase-probe")
    bought = [i.item_id for i in world.items if world.category_of(i.item_id) == "cameras"
              and i.item_id not in {e.item_id for e in probe}][:4]
    trending = engine.serving.snapshot.models["trending"]
    at = max(e.timestamp for e in probe) + 3600.0
    before = trending.score_of(bought, at)
    start = max(e.timestamp for e in probe) + 10.0
    engine.ingest_events([
        Event(event_id=f"rt-erased-{k}", user_id="rt-erased", item_id=bought[k % 4], type=EventType.PURCHASE,
              timestamp=start + k) for k in range(24)
    ])
    assert (engine.serving.snapshot.models["trending"].score_of(bought, at) > before).all()
    engine.forget_user("rt-erased")
    np.testing.assert_allclose(engine.serving.snapshot.models["trending"].score_of(bought, at), before, rtol=1e-9)
    reopened = Engine.open(f"sqlite:///{engine_path}")
    try:
        assert [r.item_id for r in reopened.recommend("rt-erase-probe")] == [
            r.item_id for r in engine.recommend("rt-erase-probe")
        ]
    finally:
        reopened.close()


def test_late_events_stored_after_training_are_in_what_a_restart_rebuilds(
    engine: Engine, world: DemoWorld, engine_path: Path
) -> None:
    # A client back online sends what it did an hour ago, dated before the newest event training
    # read. The live models fold it in as it arrives; a restart replayed the log by time from
    # training's newest event, so it skipped these, and restarted servers ranked by other counts.
    snapshot = engine.serving.snapshot
    assert snapshot is not None
    trained_until = float(snapshot.manifest["trained_until"])
    items = [i.item_id for i in world.items if world.category_of(i.item_id) == "cameras"][-3:]
    t, at = trained_until - 3600.0, trained_until + 3600.0

    def counts(e: Engine) -> tuple[np.ndarray, ...]:
        models = e.serving.snapshot.models
        covisit = dict(models["covisit"].similar_items(items[1], k=1000))
        return (models["trending"].score_of(items, at), *models["ctr"].rates(items, at),
                np.array([covisit.get(items[2], 0.0)]))

    before = counts(engine)
    engine.ingest_events([Event.create("rt-late", EventType.IMPRESSION, items[0], timestamp=t),
                          Event.create("rt-late", EventType.CLICK, items[0], timestamp=t + 5.0),
                          Event.create("rt-late", EventType.PURCHASE, items[1], timestamp=t + 10.0),
                          Event.create("rt-late", EventType.PURCHASE, items[2], timestamp=t + 20.0)])
    live = counts(engine)
    assert (live[0] > before[0]).all() and live[2][0] > before[2][0] and live[3][0] != before[3][0]
    reopened = Engine.open(f"sqlite:///{engine_path}")
    try:
        for a, b in zip(counts(reopened), live, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9)
    finally:
        reopened.close()


def test_an_erasure_made_by_another_process_reaches_this_engine_at_its_next_sync(
    engine: Engine, world: DemoWorld, engine_path: Path
) -> None:
    # `liverec forget` beside a running service: before, the service kept the user's live state
    # and what their events added to trending until its next restart or adoption.
    probe = camera_fan(engine, world, "rt-sync-probe")
    bought = [i.item_id for i in world.items if world.category_of(i.item_id) == "cameras"
              and i.item_id not in {e.item_id for e in probe}][4:8]
    at = max(e.timestamp for e in probe) + 3600.0
    before = engine.serving.snapshot.models["trending"].score_of(bought, at)
    start = max(e.timestamp for e in probe) + 20.0
    engine.ingest_events([
        Event(event_id=f"rt-elsewhere-{k}", user_id="rt-elsewhere", item_id=bought[k % 4], type=EventType.PURCHASE,
              timestamp=start + k) for k in range(24)
    ])
    assert engine.has_live_state("rt-elsewhere")
    assert engine.sync_erasures() == []  # nothing erased anywhere yet
    other = Engine.open(f"sqlite:///{engine_path}", create=False)  # what the CLI opens
    try:
        assert other.forget_user("rt-elsewhere").events_removed == 24
    finally:
        other.close()
    assert engine.has_live_state("rt-elsewhere")  # nothing has told this process yet
    assert engine.sync_erasures() == ["rt-elsewhere"]
    assert not engine.has_live_state("rt-elsewhere")
    np.testing.assert_allclose(engine.serving.snapshot.models["trending"].score_of(bought, at), before, rtol=1e-9)
    with pytest.raises(NotFoundError):
        engine.interests("rt-elsewhere")
    assert engine.sync_erasures() == []  # applied once
    # This process's own erasures are not found again as someone else's.
    engine.ingest_events([Event(event_id="rt-own-1", user_id="rt-own", item_id=bought[0], type=EventType.VIEW,
                                timestamp=start + 30)])
    engine.forget_user("rt-own")
    assert engine.erasure.seen == engine.erasure.epoch()
    assert engine.sync_erasures() == []


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        ({"user_id": "bad-1", "type": "clik", "item_id": "i00001"}, "type", "'clik' is not one of"),
        ({"type": "view", "item_id": "i00001"}, "user_id", "user_id is missing"),
        ({"user_id": "", "type": "view", "item_id": "i00001"}, "user_id", "user_id is missing"),
        ({"user_id": "bad-1", "type": "rate", "item_id": "i00001", "value": 7}, "value", "rating 7 is out of range"),
        ({"user_id": "bad-1", "type": "view", "item_id": "nope"}, "item_id", "unknown item 'nope'"),
        ({"user_id": "bad-1", "type": "search"}, "text", "needs a non-empty text"),
    ],
)
def test_bad_events_raise_naming_the_problem_and_store_nothing(
    engine: Engine, event: dict[str, object], field: str, words: str
) -> None:
    good = {"user_id": "bad-1", "type": "view", "item_id": "i00002", "timestamp": 1_767_225_600.0}
    count = engine.store.events.count()
    with pytest.raises(InvalidInputError, match=words) as info:
        engine.ingest_events([good, event])
    assert info.value.field == field
    assert engine.store.events.count() == count
    assert engine.states.get("bad-1") is None


def test_an_item_with_an_empty_title_is_refused_and_nothing_is_stored(engine: Engine) -> None:
    count = engine.store.catalog.count()
    with pytest.raises(InvalidInputError, match="empty title") as info:
        engine.ingest_items([{"item_id": "ok-1", "title": "Fine"}, {"item_id": "bad-item", "title": "  "}])
    assert info.value.field == "title"
    assert engine.store.catalog.count() == count
    assert "ok-1" not in engine.items


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"k": 0}, "k"), ({"k": "5"}, "k"), ({"diversity": 1.5}, "diversity"), ({"filters": {"colour": "red"}}, "colour")],
)
def test_bad_recommend_arguments_raise(engine: Engine, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        engine.recommend("u0001", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_unknown_item_for_similar_raises_not_found(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        engine.similar_items("nope")


# ---------------------------------------------------------------- filters, diversity, similar


def test_filters_are_honoured(engine: Engine, world: DemoWorld) -> None:
    user = world.users[1].user_id
    seen = engine.state(user).seen
    recs = engine.recommend(user, k=10)
    assert not {r.item_id for r in recs} & seen
    assert all(engine.items.get(r.item_id).available for r in recs)
    only = engine.recommend(user, k=10, filters={"include_categories": ["coffee"]})
    assert only and set(categories(engine, only)) == {"coffee"}
    top = categories(engine, recs).most_common(1)[0][0]
    without = engine.recommend(user, k=10, filters={"exclude_categories": [top]})
    assert top not in categories(engine, without)


def test_diversity_lowers_intra_list_similarity(engine: Engine, world: DemoWorld) -> None:
    sims = {}
    for diversity in (0.0, 0.7):
        total = 0.0
        for user in world.users[:20]:
            recs = engine.recommend(user.user_id, k=10, diversity=diversity)
            total += intra_list_similarity(engine.items.vectors_of([r.item_id for r in recs]))
        sims[diversity] = total / 20
    assert sims[0.7] < sims[0.0] - 0.05


def test_similar_items_share_the_category_and_explain_why(engine: Engine, world: DemoWorld) -> None:
    item = world.items_in("hiking")[0]
    similar = engine.similar_items(item.item_id, k=10)
    assert len(similar) == 10 and item.item_id not in [s.item_id for s in similar]
    assert categories(engine, similar)["hiking"] >= 9
    assert all(s.reasons and s.reasons[0].evidence == item.item_id for s in similar)


def test_every_recommendation_has_a_reason(engine: Engine, world: DemoWorld) -> None:
    for user in world.users[:30]:
        for rec in engine.recommend(user.user_id, k=10):
            assert rec.reasons and all(r.text for r in rec.reasons)


# ---------------------------------------------------------------- training


def test_training_wrote_a_current_snapshot_with_tuned_weights(engine: Engine) -> None:
    assert engine.snapshot is not None
    assert current_version(engine.model_dir) == engine.snapshot.version
    manifest = engine.snapshot.manifest
    report = manifest["report"]
    assert report["validation"]["users"] > 100
    # What was tuned is what is served, and every weight came from the search grid.
    assert engine.snapshot.scorer.describe()["weights"] == report["weights"]
    assert set(report["weights"]) == set(RECALLS)
    assert all(w in WEIGHT_GRID for w in report["weights"].values())
    # Chance level for one held-out item among 2,400 is ~0.002; the recalls must find real signal.
    assert report["validation"]["ndcg@10"] > 0.05


def test_training_chooses_the_interest_threshold_on_its_hold_out_and_states_use_it(engine: Engine,
                                                                                   world: DemoWorld) -> None:
    manifest = engine.snapshot.manifest
    tried = manifest["report"]["validation"]["ndcg@10_by_interest_similarity"]
    assert set(tried) == {f"{t:g}" for t in engine.settings.interest_similarities} and len(tried) == 3
    chosen = manifest["interest_similarity"]
    assert manifest["report"]["interest_similarity"] == chosen and tried[f"{chosen:g}"] == max(tried.values())
    assert manifest["report"]["validation"]["ndcg@10"] == tried[f"{chosen:g}"]  # the served scorer's
    assert engine.states.interest_similarity == chosen
    # a served user's state is what the chosen threshold builds from their log, not the setting's
    user = world.users[0].user_id
    held = engine.state(user)
    events = engine.states.events.by_user(user)  # what states learn from
    for threshold, same in ((chosen, True), (0.9 if chosen < 0.9 else 0.1, False)):
        rebuilt = engine.states.build(user, events, interest_similarity=threshold)
        assert (len(rebuilt.interests) == len(held.interests) and all(
            np.allclose(a.vector, b.vector) for a, b in zip(rebuilt.interests, held.interests, strict=True))) is same


def test_training_with_no_events_is_refused(tmp_path: Path) -> None:
    engine = Engine.open(f"sqlite:///{tmp_path}/empty.db")
    try:
        with pytest.raises(InvalidInputError, match="no events to train on"):
            engine.train()
        assert engine.recommend("anyone") == []  # nothing known, nothing to recommend, no error
    finally:
        engine.close()


def test_a_deleted_item_is_gone_from_search_similar_and_recommendations(engine: Engine, world: DemoWorld) -> None:
    doomed = world.make_item("coffee", "en", seed=777)
    engine.ingest_items([doomed])
    assert engine.search(doomed.title, k=1)[0].item_id == doomed.item_id
    assert engine.delete_item(doomed.item_id) is True
    assert engine.delete_item(doomed.item_id) is False
    assert doomed.item_id not in [h.item_id for h in engine.search(doomed.title, k=10)]
    with pytest.raises(NotFoundError):
        engine.similar_items(doomed.item_id)
    with pytest.raises(NotFoundError):
        engine.store.catalog.get(doomed.item_id)
    fan = world.new_user_history("rt-deleted", "coffee", 10)
    engine.ingest_events(fan)
    assert doomed.item_id not in [r.item_id for r in engine.recommend("rt-deleted", k=20)]


# ---------------------------------------------------------------- several interests, feedback


def test_three_interests_are_kept_apart_and_all_three_are_recommended(engine: Engine, world: DemoWorld) -> None:
    user = "rt-three"
    camera = world.new_user_history(user, "cameras", 6)
    start = max(e.timestamp for e in camera) + 600.0
    hiking = world.burst(user, "hiking", n=6, start=start, types=("click",))
    coffee = world.burst(user, "coffee", n=6, start=start + 3600.0, types=("click",))
    engine.ingest_events([*camera, *hiking, *coffee])
    state = engine.state(user)
    labels = {tag for interest in state.interests for tag in interest.top_tags(2)}
    assert {"cameras", "hiking", "coffee"} <= labels
    # Asked in the world's time, not the wall clock's: training reads an item's age at its validation
    # users' event times, so a request months after the world's dates ranks by ages it never saw.
    at = max(e.timestamp for e in coffee) + 60.0
    recs = engine.recommend(user, k=12, diversity=0.3, now=at)
    assert {"cameras", "hiking", "coffee"} <= set(categories(engine, recs))
    reasons = [r.text for rec in recs for r in rec.reasons]
    # An interest speaks through its recall or, where it contributes more, the tag the item shares with it.
    assert any(text.startswith(("for your interest in '", "matches your interest '")) for text in reasons)


def test_an_item_shown_three_times_without_an_action_drops_in_the_next_list(engine: Engine, world: DemoWorld) -> None:
    user = "rt-ignored"
    engine.ingest_events(world.new_user_history(user, "hiking", 10))
    before = [r.item_id for r in engine.recommend(user, k=10, diversity=0.0)]
    top = before[0]
    last = engine.state(user).last_ts
    shown = [Event.create(user, EventType.IMPRESSION, top, timestamp=last + n) for n in (1.0, 2.0)]
    engine.ingest_events(shown)
    assert [r.item_id for r in engine.recommend(user, k=10, diversity=0.0)][0] == top  # twice is still fine
    engine.ingest_events([Event.create(user, EventType.IMPRESSION, top, timestamp=last + 3.0)])
    after = [r.item_id for r in engine.recommend(user, k=10, diversity=0.0)]
    assert after[0] != top and (top not in after or after.index(top) > 0)
    assert engine.state(user).shown == {top: 3}
    engine.ingest_events([Event.create(user, EventType.CLICK, top, timestamp=last + 4.0)])
    assert engine.state(user).shown == {}


def test_impressions_and_clicks_move_the_click_through_the_ranker_reads(engine: Engine, world: DemoWorld,
                                                                       engine_path: Path) -> None:
    snapshot = engine.snapshot
    assert snapshot is not None
    ctr = snapshot.models["ctr"]
    liked, ignored = sorted(engine.items.ids())[:2]
    now = max(ctr.shown_.now_, ctr.clicked_.now_, world.events[-1].timestamp)
    for n in range(12):
        user, t = f"ctr-{n}", now + 60.0 * (n + 1)  # after training: the replay starts past its last event time
        engine.ingest_events([Event.create(user, EventType.IMPRESSION, liked, timestamp=t),
                              Event.create(user, EventType.IMPRESSION, ignored, timestamp=t),
                              Event.create(user, EventType.CLICK, liked, timestamp=t + 20.0)])
    (after_liked, after_ignored), shown = ctr.rates([liked, ignored])
    catalogue = ctr.rates(["never-shown"])[0][0]  # an item never shown has the catalogue's rate
    assert 0.0 <= after_ignored < catalogue < after_liked <= 1.0 and shown.min() >= 11.0
    # the learned ranker reads them for every candidate (and the trend beside them)
    from liverec.ranking.filters import Filters

    features = engine.serving.ranker.features(engine.state("ctr-0"), Filters(), now=now)
    block = features.block("item")
    rates, shown = ctr.rates(features.item_ids)
    np.testing.assert_allclose(block.values[:, block.columns.index("ctr")], rates)
    np.testing.assert_allclose(block.values[:, block.columns.index("impressions")], np.log1p(shown))
    trend = block.values[:, block.columns.index("trend")]
    assert ((trend >= 0) & (trend <= 1)).all() and trend.max() > 0
    # an erasure replays the log since training into the models that learn live: counted once, and
    # what a restart rebuilds
    at = now + 3600.0
    live = ctr.rates([liked, ignored], at)
    engine.ingest_events([Event.create("ctr-erased", EventType.VIEW, liked, timestamp=now + 1000.0)])
    engine.forget_user("ctr-erased")
    for a, b in zip(engine.serving.snapshot.models["ctr"].rates([liked, ignored], at), live, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    reopened = Engine.open(f"sqlite:///{engine_path}")
    try:
        for a, b in zip(reopened.serving.snapshot.models["ctr"].rates([liked, ignored], at), live, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9)
    finally:
        reopened.close()

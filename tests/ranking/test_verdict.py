"""Why an item is or is not in a user's list (``Engine.explain``), on the trained demo engine."""

from __future__ import annotations

import pytest

from liverec.core.errors import NotFoundError
from liverec.core.types import Event, EventType
from liverec.datasets.demo import REFERENCE_TIME, DemoWorld
from liverec.engine import Engine
from liverec.ranking.filters import Filters

NOW = REFERENCE_TIME


def _user(engine: Engine, world: DemoWorld, user_id: str, category: str = "gardening", n: int = 8) -> list[Event]:
    history = world.new_user_history(user_id, category, n)
    engine.ingest_events(history)
    return history


def _kinds(reasons: list[dict[str, object]]) -> list[object]:
    return [r["kind"] for r in reasons]


def test_a_listed_item_has_its_place_and_the_lists_reasons(engine: Engine, world: DemoWorld) -> None:
    _user(engine, world, "verdict-listed")
    now = NOW
    listed = engine.recommend("verdict-listed", k=10, now=now)
    for place, rec in enumerate(listed[:3], start=1):
        verdict = engine.explain("verdict-listed", rec.item_id, k=10, now=now)
        assert verdict.recommended and verdict.position == place and verdict.against == ()
        assert verdict.reasons == rec.reasons and verdict.score == rec.score


def test_what_the_user_did_keeps_an_item_out(engine: Engine, world: DemoWorld) -> None:
    history = _user(engine, world, "verdict-seen")
    seen = history[-1].item_id
    assert seen is not None
    verdict = engine.explain("verdict-seen", seen, now=NOW)
    assert not verdict.recommended and _kinds(verdict.to_dict()["against"]) == ["seen"]
    assert verdict.against[0].evidence == seen and "already" in verdict.against[0].text
    # Seen items are allowed back when the request says so; then it is judged on its score.
    again = engine.explain("verdict-seen", seen, now=NOW, filters={"exclude_seen": False})
    assert "seen" not in _kinds(again.to_dict()["against"])

    target = engine.recommend("verdict-seen", k=10, now=NOW)[0].item_id
    engine.ingest_events([Event.create("verdict-seen", EventType.DISMISS, item_id=target, timestamp=NOW)])
    dismissed = engine.explain("verdict-seen", target, now=NOW + 1)
    assert not dismissed.recommended and dismissed.against[0].kind == "dismissed"


def test_the_requests_filters_are_named(engine: Engine, world: DemoWorld) -> None:
    _user(engine, world, "verdict-filters")
    top = engine.recommend("verdict-filters", k=10, now=NOW)[0]
    excluded = engine.explain("verdict-filters", top.item_id, now=NOW, filters={"exclude_items": [top.item_id]})
    assert excluded.against[0].kind == "excluded"
    category = engine.items.find(top.item_id).categories[0]  # type: ignore[union-attr]
    filtered = engine.explain("verdict-filters", top.item_id, now=NOW,
                              filters={"exclude_categories": [category]})
    assert [r.kind for r in filtered.against] == ["filtered"]


def test_a_candidate_below_the_list_gets_its_rank(engine: Engine, world: DemoWorld) -> None:
    _user(engine, world, "verdict-rank")
    listed = {r.item_id for r in engine.recommend("verdict-rank", k=5, now=NOW)}
    deeper = [r.item_id for r in engine.recommend("verdict-rank", k=60, now=NOW) if r.item_id not in listed]
    verdict = engine.explain("verdict-rank", deeper[-1], k=5, now=NOW)
    assert not verdict.recommended and verdict.position is None
    assert verdict.rank is not None and verdict.rank > 5 and verdict.candidates >= verdict.rank
    assert verdict.against[-1].kind == "outranked" and f"#{verdict.rank} of" in verdict.against[-1].text
    assert verdict.reasons  # what would speak for it is still said


def test_an_item_no_recall_found_says_how_close_its_text_is(engine: Engine, world: DemoWorld) -> None:
    _user(engine, world, "verdict-far", category="gardening")
    state = engine.state("verdict-far")
    found = set(engine.serving.ranker.features(state, Filters(), NOW).item_ids)
    far = next(i for i in engine.items.ids() if i not in found and i not in state.seen)
    verdict = engine.explain("verdict-far", far, now=NOW)
    assert verdict.rank is None and verdict.score is None and verdict.reasons == ()
    assert [r.kind for r in verdict.against] == ["not_retrieved"]
    assert "matches your interests at" in verdict.against[0].text


def test_a_new_visitor_is_told_about_popularity(engine: Engine) -> None:
    popular = engine.recommend("verdict-nobody", k=10, now=NOW)
    assert engine.explain("verdict-nobody", popular[0].item_id, now=NOW).recommended
    found = set(engine.serving.ranker.features(None, Filters(), NOW).item_ids)
    unpopular = next(i for i in engine.items.ids() if i not in found and engine.items.find(i).available)  # type: ignore[union-attr]
    verdict = engine.explain("verdict-nobody", unpopular, now=NOW)
    assert not verdict.recommended and verdict.rank is None
    assert [r.kind for r in verdict.against] == ["not_retrieved"] and "popular" in verdict.against[0].text
    assert engine.store.events.by_user("verdict-nobody") == []  # judging a visitor records nothing


def test_bad_requests_are_named(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="not in the catalog"):
        engine.explain("u0001", "no-such-item")
    with pytest.raises(Exception, match="k"):
        engine.explain("u0001", next(iter(engine.items.ids())), k=0)

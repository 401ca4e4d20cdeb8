"""Reasons that do not mislead (issue 13, point 5): evidence respects polarity, one reason per
evidence, and similar items above a similarity floor (fewer rather than unrelated)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.settings import Settings
from liverec.core.types import DEFAULT_EVENT_WEIGHTS, Event, Item, Reason
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from liverec.models.base import TrainingData
from liverec.models.content import ContentModel
from liverec.models.covisit import CoVisitation
from liverec.ranking.explain import Explainer
from liverec.ranking.reasons import ReasonContext
from liverec.ranking.recalls import RECALLS, covisit_seeds
from liverec.realtime.catalog import ItemTable
from liverec.realtime.state import EventSignal, StateUpdater, UserState
from liverec.testing.model_contract import GROUP_A, GROUP_B, checkerboard_data, checkerboard_vectors

NOW = 5_000_000.0
HOUR, DAY = 3600.0, 86400.0
VECTORS = dict(zip(GROUP_A + GROUP_B, checkerboard_vectors(), strict=True))


@pytest.fixture
def explainer() -> Explainer:
    """Checkerboard items titled 'Item a0' …; co-visitation fitted on the checkerboard."""
    ids = list(GROUP_A + GROUP_B)
    items = ItemTable()
    items.upsert([Item(i, f"Item {i}") for i in ids], {i: ("camping",) if i in GROUP_A else ("running",) for i in ids})
    content = ContentModel().fit(TrainingData.from_events([], ids, checkerboard_vectors(), DEFAULT_EVENT_WEIGHTS))
    return Explainer(items, content, {"covisit": CoVisitation().fit(checkerboard_data())}, lambda text: VECTORS["b0"])


def act(state: UserState, type_: str, item_id: str, ts: float, polarity: float = 1.0) -> UserState:
    event = Event.create("u1", type_, item_id, value=1.0 if type_ in ("rate", "review") else None,
                         text="broke in a day" if type_ == "review" else None, timestamp=ts)
    tags = ("camping",) if item_id in GROUP_A else ("running",)
    return StateUpdater(Settings()).apply(state, event, EventSignal(VECTORS[item_id], polarity, tags))


@pytest.fixture
def reviewed_badly() -> UserState:
    """Viewed a3 two days ago; bought a1 a day ago, then gave it one star an hour ago."""
    state = UserState.empty("u1")
    act(state, "view", "a3", NOW - 2 * DAY)
    act(state, "purchase", "a1", NOW - DAY)
    return act(state, "review", "a1", NOW - HOUR, polarity=-1.0)


# ---------------------------------------------------------------- polarity


def test_an_item_reviewed_badly_is_never_cited_as_what_the_user_liked(
    explainer: Explainer, reviewed_badly: UserState
) -> None:
    """a2 is as like a1 as like a3: the reason cites a3, never "like a1, which you bought"."""
    [content, covisit] = explainer.explain(["a2", "a4"], {"a2": {"content": 1.0}, "a4": {"covisit": 1.0}},
                                           reviewed_badly, NOW)
    assert content == (Reason("content", "like 'Item a3', which you viewed 2 days ago", "a3"),)
    assert covisit == (Reason("covisit", "people who viewed 'Item a3' also viewed this", "a3"),)


def test_with_only_the_rejected_item_to_go_on_no_item_is_cited(explainer: Explainer) -> None:
    state = act(act(UserState.empty("u1"), "purchase", "a1", NOW - DAY), "rate", "a1", NOW - HOUR, polarity=-1.0)
    [reasons] = explainer.explain(["a2"], {"a2": {"content": 1.0, "covisit": 0.5}}, state, NOW)
    assert all(r.evidence != "a1" for r in reasons), reasons


def test_a_rejected_item_seeds_no_recall_and_no_fold_in(reviewed_badly: UserState) -> None:
    """Co-visitation, the sequence model, the session and the ALS fold-in start from what the user
    liked: the one-star purchase is in none of them, though the state keeps its history."""
    assert [a.item_id for a in covisit_seeds(reviewed_badly)] == ["a3"]
    assert [a.item_id for a in reviewed_badly.positive_actions()] == ["a3"]
    assert reviewed_badly.recent_items() == ["a3"]
    assert reviewed_badly.interactions == {"a3": 1.0, "a1": 5.0}  # kept: a later purchase takes it back
    assert reviewed_badly.liked() == {"a3": 1.0}
    again = act(reviewed_badly.copy(), "purchase", "a1", NOW)
    assert again.liked() == {"a3": 1.0, "a1": 10.0}


def test_the_sequence_reason_names_the_last_item_the_user_did_not_reject(reviewed_badly: UserState) -> None:
    items = ItemTable()
    items.upsert([Item(i, f"Item {i}") for i in ("a1", "a3")], {})
    ctx = ReasonContext(items, reviewed_badly, NOW, ["a2"], {"a2": {"sequential": 1.0}}, {}, [None], True)
    reason = RECALLS["sequential"].explain(ctx, "a2", 0)
    assert reason == Reason("sequential", "often chosen next after 'Item a3'", "a3")


# ---------------------------------------------------------------- one reason per evidence


@pytest.fixture
def viewed_a1() -> UserState:
    return act(UserState.empty("u1"), "click", "a1", NOW - 9 * DAY)


def test_new_and_like_x_is_one_reason_not_two(explainer: Explainer, viewed_a1: UserState) -> None:
    """The issue's "…clicked 9 days ago; new, and like '…', which you clicked 9 days ago"."""
    both = {"content": 0.9, "fresh": 0.5, "trending": 0.1}
    [reasons] = explainer.explain(["a2"], {"a2": both}, viewed_a1, NOW)
    assert reasons == (Reason("fresh", "new, and like 'Item a1', which you clicked 9 days ago", "a1"),
                       Reason("trending", "popular now"))
    # in either order of contribution
    [reasons] = explainer.explain(["a2"], {"a2": {"fresh": 0.9, "content": 0.5}}, viewed_a1, NOW)
    assert reasons == (Reason("fresh", "new, and like 'Item a1', which you clicked 9 days ago", "a1"),)


def test_two_reasons_on_one_item_keep_the_first_and_make_room_for_another(
    explainer: Explainer, viewed_a1: UserState
) -> None:
    """Co-visitation and content both cite a1: the second gives way to the next distinct reason."""
    [reasons] = explainer.explain(["a2"], {"a2": {"covisit": 0.9, "content": 0.5, "als": 0.2}}, viewed_a1, NOW)
    assert [r.evidence for r in reasons] == ["a1", "camping"]
    assert [r.kind for r in reasons] == ["covisit", "tag"]


def test_the_generic_reason_and_its_new_variant_merge_too(explainer: Explainer) -> None:
    far = act(UserState.empty("u1"), "view", "b1", NOW - HOUR)  # nothing in group A is like b1
    [reasons] = explainer.explain(["a2"], {"a2": {"content": 0.9, "fresh": 0.5}}, far, NOW)
    assert reasons == (Reason("fresh", "new, and close to your recent interests"),)


# ---------------------------------------------------------------- a floor for similar items


def test_the_default_floor_is_where_one_category_becomes_likelier_than_two(engine: Engine, world: DemoWorld) -> None:
    """How ``similar_min_similarity`` was chosen, checked on the demo world: pairs of items at the
    floor are more often of one category than of two; a little below it, less often."""
    ids = [item.item_id for item in world.items]
    vectors = engine.items.vectors_of(ids)
    category = np.array([world.category_of(i) for i in ids])
    upper = np.triu_indices(len(ids), 1)
    sims = (vectors @ vectors.T)[upper]
    same = (category[:, None] == category[None, :])[upper]
    floor = Settings().similar_min_similarity

    def p_same(low: float, high: float) -> float:
        inside = (sims >= low) & (sims < high)
        return float(same[inside].mean())

    assert p_same(floor, floor + 0.05) > 0.5 > p_same(floor - 0.05, floor - 0.025)
    assert (sims[~same] >= floor).mean() < 0.01  # 99% of unrelated pairs fall below it


@pytest.fixture(scope="module")
def small_shop() -> Iterator[Engine]:
    """A newcomer's catalog: two outdoor items, a tent, a laptop and a stand mixer; never trained."""
    engine = Engine.open("memory://")
    engine.ingest_items([
        Item("poles", "Ultralight trekking poles", "Carbon hiking poles with cork grips, for trails and mountains"),
        Item("boots", "Waterproof hiking boots", "Leather boots with a grippy sole for mountain trails"),
        Item("tent", "Two-person backpacking tent", "Light camping tent for hiking trips, quick to pitch"),
        Item("laptop", "14-inch business laptop", "Intel processor, 16 GB RAM, 512 GB SSD, backlit keyboard"),
        Item("mixer", "Stand mixer", "5-quart kitchen mixer with dough hook and whisk for baking"),
    ])
    yield engine
    engine.close()


def test_similar_items_drop_the_unrelated_and_keep_the_related(small_shop: Engine) -> None:
    similar = {r.item_id: r for r in small_shop.similar_items("poles", k=4)}
    assert {"boots", "tent"} <= set(similar)
    assert "laptop" not in similar and "mixer" not in similar
    assert all(r.score >= small_shop.settings.similar_min_similarity for r in similar.values())
    assert all(r.reasons[0].text == "described like 'Ultralight trekking poles'" for r in similar.values())


def test_the_floor_is_a_setting(small_shop: Engine) -> None:
    """Without a floor the laptop comes back (it is the floor that drops it), and a floor must be a cosine."""
    with Engine.open("memory://", similar_min_similarity=-1.0) as anything:
        anything.ingest_items([small_shop.items.get(i) for i in ("poles", "boots", "laptop")])
        assert [r.item_id for r in anything.similar_items("poles", k=4)] == ["boots", "laptop"]
    with pytest.raises(InvalidInputError, match="similar_min_similarity"):
        Settings(similar_min_similarity=1.5)


def test_similar_items_on_the_demo_world_stay_in_category_above_the_floor(engine: Engine, world: DemoWorld) -> None:
    floor = engine.settings.similar_min_similarity
    for category in ("hiking", "laptops", "cooking"):
        item = world.items_in(category)[3]
        similar = engine.similar_items(item.item_id, k=20)
        own = engine.items.vectors_of([item.item_id])[0]
        content = [r for r in similar if any(reason.kind == "content" for reason in r.reasons)]
        assert len(content) >= 15
        sims = engine.items.vectors_of([r.item_id for r in content]) @ own
        assert (sims >= floor - 1e-6).all()
        assert sum(world.category_of(r.item_id) == category for r in similar) >= 18

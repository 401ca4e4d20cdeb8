"""Reasons: relative times, shortened titles, and which evidence each recall's reason cites."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from liverec.core.settings import Settings
from liverec.core.types import DEFAULT_EVENT_WEIGHTS, Event, EventType, Item, Reason
from liverec.models.base import TrainingData
from liverec.models.content import ContentModel
from liverec.models.covisit import CoVisitation
from liverec.ranking.explain import Explainer
from liverec.ranking.reasons import ago, shorten
from liverec.realtime.catalog import ItemTable
from liverec.realtime.state import EventSignal, StateUpdater, UserState
from liverec.testing.model_contract import GROUP_A, GROUP_B, checkerboard_data, checkerboard_vectors

JAN_1_2026 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "just now"),
        (59.9, "just now"),
        (-30.0, "just now"),  # a clock a little ahead of the server's
        (60.0, "1 minute ago"),
        (119.0, "1 minute ago"),
        (45 * MINUTE, "45 minutes ago"),
        (HOUR, "1 hour ago"),
        (3 * HOUR + 59 * MINUTE, "3 hours ago"),
        (DAY, "1 day ago"),
        (2 * DAY + 5, "2 days ago"),
        (30 * DAY, "30 days ago"),
    ],
)
def test_ago(seconds: float, text: str) -> None:
    assert ago(seconds, JAN_1_2026) == text


def test_ago_past_a_month_gives_the_date() -> None:
    assert ago(31 * DAY, JAN_1_2026) == "on 2026-01-01"
    assert ago(400 * DAY, JAN_1_2026 + 12 * HOUR) == "on 2026-01-01"  # the date in UTC


def test_shorten() -> None:
    assert shorten("Trail shoes") == "Trail shoes"
    assert shorten("x" * 60) == "x" * 60
    assert shorten("x" * 61) == "x" * 59 + "…"
    title = "Sony WH-1000XM5 II wireless noise-cancelling over-ear headphones, 30 h battery, black"
    assert shorten(title) == "Sony WH-1000XM5 II wireless noise-cancelling over-ear…"  # no half word
    assert shorten("索尼" * 40) == ("索尼" * 40)[:59] + "…"  # no spaces: cut mid-run
    assert shorten("Trail\n  shoes") == "Trail shoes"  # one line
    assert len(shorten("y" * 500)) == 60
    assert shorten("轻薄笔记本电脑", limit=5) == "轻薄笔记…"


NOW = 200_000.0
TRAIL = np.zeros(8, dtype=np.float32)
TRAIL[1] = 1.0  # the query "trail shoes" points at group B


@pytest.fixture
def explainer() -> Explainer:
    """Checkerboard items titled 'Item a0' …, group A tagged 'camping', covisitation fitted on the checkerboard."""
    ids = list(GROUP_A + GROUP_B)
    items = ItemTable()
    items.upsert(
        [Item(i, f"Item {i}", categories=("A" if i in GROUP_A else "B",)) for i in ids],
        {i: ("camping",) if i in GROUP_A else ("running",) for i in ids},
    )
    content = ContentModel().fit(TrainingData.from_events([], ids, checkerboard_vectors(), DEFAULT_EVENT_WEIGHTS))
    covisit = CoVisitation().fit(checkerboard_data())
    return Explainer(items, content, {"covisit": covisit}, lambda text: TRAIL)


@pytest.fixture
def state() -> UserState:
    """Viewed a1 three hours ago, searched 'trail shoes' ten minutes ago; interest tag 'camping'."""
    updater = StateUpdater(Settings())
    s = UserState.empty("u1")
    content = checkerboard_vectors()
    updater.apply(
        s,
        Event.create("u1", EventType.VIEW, "a1", timestamp=NOW - 3 * HOUR),
        EventSignal(content[1], tags=("camping",)),
    )
    updater.apply(
        s, Event.create("u1", EventType.SEARCH, text="trail shoes", timestamp=NOW - 10 * MINUTE), EventSignal(TRAIL)
    )
    return s


def test_content_reason_cites_the_most_similar_action(explainer: Explainer, state: UserState) -> None:
    [reasons] = explainer.explain(["a2"], {"a2": {"content": 0.9}}, state, NOW)
    assert reasons == (Reason("content", "like 'Item a1', which you viewed 3 hours ago", "a1"),)
    [reasons] = explainer.explain(["b2"], {"b2": {"content": 0.9}}, state, NOW)
    assert reasons == (Reason("content", "matches your search 'trail shoes'", "trail shoes"),)


def test_fresh_reason_says_new(explainer: Explainer, state: UserState) -> None:
    [reasons] = explainer.explain(["b3"], {"b3": {"fresh": 1.0}}, state, NOW)
    assert reasons == (Reason("fresh", "new, and matches your search 'trail shoes'", "trail shoes"),)


def test_covisit_reason_names_the_item_viewed_alongside(explainer: Explainer, state: UserState) -> None:
    [reasons] = explainer.explain(["a3"], {"a3": {"covisit": 0.7}}, state, NOW)
    assert reasons == (Reason("covisit", "people who viewed 'Item a1' also viewed this", "a1"),)
    # b3 was never viewed with a1: no covisit reason, so the fallback
    [reasons] = explainer.explain(["b3"], {"b3": {"covisit": 0.7}}, state, NOW)
    assert reasons == (Reason("trending", "popular now"),)


def test_als_reason_prefers_a_shared_interest_tag(explainer: Explainer, state: UserState) -> None:
    [tagged, untagged] = explainer.explain(["a4", "b4"], {"a4": {"als": 0.5}, "b4": {"als": 0.5}}, state, NOW)
    assert tagged == (Reason("tag", "matches your interest 'camping'", "camping"),)
    assert untagged == (Reason("als", "liked by people with tastes like yours"),)


def test_reasons_follow_contribution_order_and_stop_at_max(explainer: Explainer, state: UserState) -> None:
    # (content would cite a1 as covisit does: one reason per evidence, see test_reasons_newcomer)
    contributions = {"a2": {"trending": 0.1, "covisit": 0.9, "als": 0.5}}
    [two] = explainer.explain(["a2"], contributions, state, NOW)
    assert [r.kind for r in two] == ["covisit", "tag"]
    [three] = explainer.explain(["a2"], contributions, state, NOW, max_reasons=3)
    assert [r.kind for r in three] == ["covisit", "tag", "trending"]


def test_no_state_and_no_contributions(explainer: Explainer) -> None:
    assert explainer.explain([], {}, None, NOW) == []
    assert explainer.explain(["a0"], {}, None, NOW) == [(Reason("trending", "popular now"),)]
    # content without any evidence to cite gives no content reason
    assert explainer.explain(["a0"], {"a0": {"content": 1.0}}, None, NOW) == [(Reason("trending", "popular now"),)]



def test_a_weakly_related_action_is_not_cited_as_the_reason(state: UserState) -> None:
    """An item unlike anything the user did gets a generic reason, never a false citation."""
    ids = ["a1", "far"]
    vectors = np.zeros((2, 8), dtype=np.float32)
    vectors[0, 0] = 1.0  # a1: what the user viewed
    vectors[1, 7] = 1.0  # far: orthogonal to a1 and to the "trail shoes" query
    items = ItemTable()
    items.upsert([Item(i, f"Item {i}") for i in ids], {})
    content = ContentModel().fit(TrainingData.from_events([], ids, vectors, DEFAULT_EVENT_WEIGHTS))
    explainer = Explainer(items, content, {}, lambda text: TRAIL)
    [reasons] = explainer.explain(["far"], {"far": {"content": 0.9}}, state, NOW)
    assert reasons == (Reason("content", "close to your recent interests", None),)

"""The item and affinity blocks, read from the catalog's arrays, equal the same features computed
item by item — for items missing from the catalog too, and after the catalog changes."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from liverec.core.types import DEFAULT_EVENT_WEIGHTS, EventType, Item
from liverec.models.base import TrainingData
from liverec.models.content import ContentModel
from liverec.ranking.context_features import DAY, RECENT_ITEMS
from liverec.ranking.features import FEATURES, FeatureInput
from liverec.ranking.recalls import ColdItems, RecallContext
from liverec.realtime.catalog import ItemTable
from liverec.realtime.state import RecentAction, UserState

NOW = 1_800_000_000.0
CANDIDATES = ["a", "b", "c", "d", "e", "gone"]  # "gone" is in no catalog until it is upserted
TEXT_INDEXED = ["a", "b", "c", "d", "e"]


def _item(item_id: str, categories: tuple[str, ...] = (), created_at: float = 0.0) -> Item:
    return Item(item_id, f"Item {item_id}", categories=categories, created_at=created_at)


@pytest.fixture
def table() -> ItemTable:
    items = ItemTable()
    items.upsert(
        [
            _item("a", ("cameras",), NOW - 2 * DAY),
            _item("b", ("hiking", "travel"), NOW - 10 * DAY),
            _item("c"),  # no category, no tags, no creation time
            _item("d", ("cameras", "hiking"), NOW - 0.5 * DAY),
            _item("e", ("travel",), NOW + DAY),  # a clock ahead of ours: age 0
        ],
        {"a": ("cameras", "travel"), "b": ("hiking", "travel", "boots"), "d": ("cameras", "lenses", "cameras"),
         "e": ("travel",)},
    )
    return items


@pytest.fixture
def state() -> UserState:
    """Tag weights are sums of halves, so any order of adding them gives the same share."""
    s = UserState.empty("u1")
    s.tags = {"cameras": 1.5, "travel": 0.25, "boots": 2.0, "on-no-item": 4.0, "disliked": -1.0}
    for n, item_id in enumerate(["a", "b", "d", "gone", "a"]):
        s.recent.append(RecentAction(f"e{n}", EventType.VIEW, item_id, None, NOW - 100 + n, 1.0))
    s.shown = {"b": 2, "gone": 1}
    return s


def _features(items: ItemTable, state: UserState) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.eye(len(TEXT_INDEXED), dtype=np.float32)
    content = ContentModel().fit(TrainingData.from_events([], TEXT_INDEXED, vectors, DEFAULT_EVENT_WEIGHTS))
    no_cold_items = ColdItems([], None, frozenset())
    ctx = RecallContext(state, None, None, set(), 10, {}, content, lambda: no_cold_items, {}, items)
    inp = FeatureInput(CANDIDATES, {i: r for r, i in enumerate(CANDIDATES)}, {}, ctx, NOW)
    return FEATURES["item"](inp).values[:, 1], FEATURES["affinity"](inp).values[:, [0, 1, 7]]


def _expected(items: ItemTable, state: UserState) -> tuple[np.ndarray, np.ndarray]:
    """The features item by item: age in days, tag share, category share, times shown."""

    def first_category(item_id: str) -> str | None:
        item = items.find(item_id)
        return item.categories[0] if item is not None and item.categories else None

    positive = {t: w for t, w in state.tags.items() if w > 0}
    recent = state.recent_items()[-RECENT_ITEMS:]
    categories = Counter(c for c in map(first_category, recent) if c is not None)
    ages, affinity = [], []
    for item_id in CANDIDATES:
        item = items.find(item_id)
        ages.append(math.log1p(max(0.0, NOW - item.created_at) / DAY) if item and item.created_at > 0 else -1.0)
        share = sum(positive.get(t, 0.0) for t in items.tags(item_id)) / sum(positive.values())
        category = first_category(item_id)
        affinity.append([share, categories[category] / len(recent) if category is not None else 0.0,
                         state.shown.get(item_id, 0)])
    return np.array(ages), np.array(affinity)


def _assert_features_match(items: ItemTable, state: UserState) -> None:
    ages, affinity = _features(items, state)
    expected_ages, expected_affinity = _expected(items, state)
    assert ages == pytest.approx(expected_ages, rel=1e-12)
    np.testing.assert_array_equal(affinity, expected_affinity)


def test_features_equal_the_item_by_item_computation(table: ItemTable, state: UserState) -> None:
    _assert_features_match(table, state)
    ages, affinity = _features(table, state)
    assert ages[[2, 4, 5]].tolist() == [-1.0, 0.0, -1.0]  # undated, ahead of our clock, not in the catalog
    # d carries "cameras" twice: its weight counts twice, as the item's tags say
    assert affinity[:, 0].tolist() == [1.75 / 7.75, 2.25 / 7.75, 0.0, 3.0 / 7.75, 0.25 / 7.75, 0.0]
    # recent: a, b, d, gone, a — cameras 3 (a twice, d), hiking 1 (b), gone none; of 5
    assert affinity[:, 1].tolist() == [0.6, 0.2, 0.0, 0.6, 0.0, 0.0]
    assert affinity[:, 2].tolist() == [0.0, 2.0, 0.0, 0.0, 0.0, 1.0]


def test_features_follow_an_upsert_and_a_delete(table: ItemTable, state: UserState) -> None:
    before = table.arrays()
    assert table.arrays() is before  # read once per version
    table.upsert([_item("a", ("hiking",), NOW - 5 * DAY), _item("gone", ("cameras",), NOW - DAY)],
                 {"a": ("boots",), "gone": ("cameras", "new-tag")})
    assert table.arrays() is not before
    _assert_features_match(table, state)
    ages, affinity = _features(table, state)
    assert affinity[[0, 5], 0].tolist() == [2.0 / 7.75, 1.5 / 7.75]
    table.remove("b")
    _assert_features_match(table, state)
    ages, affinity = _features(table, state)
    assert ages[1] == -1.0 and affinity[1, 0] == 0.0 and affinity[1, 1] == 0.0


def test_an_empty_catalog_gives_no_item_features(state: UserState) -> None:
    ages, affinity = _features(ItemTable(), state)
    assert ages.tolist() == [-1.0] * len(CANDIDATES)
    assert affinity[:, :2].tolist() == [[0.0, 0.0]] * len(CANDIDATES)

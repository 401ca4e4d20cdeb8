"""Business filters: building them from request data, the blocked set, and per-item checks."""

from __future__ import annotations

from typing import Any

import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.types import Item
from liverec.ranking.filters import Filters
from liverec.realtime.catalog import ItemTable
from liverec.realtime.state import UserState


@pytest.fixture
def items() -> ItemTable:
    table = ItemTable()
    table.upsert(
        [
            Item("cam1", "Mirrorless camera", categories=("cameras",)),
            Item("tent1", "Two-person tent", categories=("hiking", "camping")),
            Item("boot1", "Hiking boots", categories=("hiking",), available=False),
            Item("lap1", "Thin laptop", categories=("laptops",)),
            Item("misc", "A thing with no category"),
        ],
        {},
    )
    return table


@pytest.fixture
def state() -> UserState:
    s = UserState.empty("u1")
    s.seen = {"cam1", "lap1"}
    s.dismissed = {"tent1"}
    return s


def allowed(filters: Filters, items: ItemTable, blocked: set[str] | None = None) -> list[str]:
    return [i for i in items.ids() if filters.allows(i, items, blocked or set())]


def test_coerce_none_and_instance() -> None:
    assert Filters.coerce(None) == Filters()
    assert Filters() == Filters(
        exclude_seen=True, include_categories=(), exclude_categories=(), exclude_items=frozenset()
    )
    given = Filters(exclude_seen=False)
    assert Filters.coerce(given) is given


def test_coerce_from_mapping() -> None:
    filters = Filters.coerce(
        {
            "exclude_seen": False,
            "include_categories": ["hiking", "camping"],
            "exclude_categories": "cameras",  # one string stands for a list of one
            "exclude_items": ["i1", "i2", "i1"],
        }
    )
    assert filters == Filters(
        exclude_seen=False,
        include_categories=("hiking", "camping"),
        exclude_categories=("cameras",),
        exclude_items=frozenset({"i1", "i2"}),
    )
    assert Filters.coerce({}) == Filters()
    assert Filters.coerce({"exclude_items": ("x",)}).exclude_items == frozenset({"x"})


def test_coerce_unknown_key_is_named() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown filter\(s\): category, colour; known: ") as info:
        Filters.coerce({"category": ["hiking"], "colour": "red", "exclude_seen": True})
    assert info.value.field == "category"
    assert "include_categories" in str(info.value)


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"include_categories": 5}, "include_categories", "include_categories must be a list of strings, got 5"),
        ({"exclude_categories": ["a", 1]}, "exclude_categories", "exclude_categories must be a list of strings"),
        ({"exclude_items": {"a": 1}}, "exclude_items", "exclude_items must be a list of strings"),
        ({"exclude_seen": "yes"}, "exclude_seen", "exclude_seen must be true or false"),
        ({"exclude_seen": 1}, "exclude_seen", "exclude_seen must be true or false"),
        (["exclude_seen"], "filters", "filters must be a mapping, got ['exclude_seen']"),
        ("hiking", "filters", "filters must be a mapping, got 'hiking'"),
    ],
)
def test_coerce_bad_types_are_named(value: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Filters.coerce(value)
    assert message in str(info.value)
    assert info.value.field == field


def test_blocked_includes_seen_only_when_excluding_seen(state: UserState) -> None:
    assert Filters(exclude_items=frozenset({"x"})).blocked(state) == {"x", "tent1", "cam1", "lap1"}
    assert Filters(exclude_seen=False, exclude_items=frozenset({"x"})).blocked(state) == {"x", "tent1"}
    assert Filters(exclude_seen=False).blocked(state) == {"tent1"}  # dismissed stays blocked
    assert Filters(exclude_items=frozenset({"x"})).blocked(None) == {"x"}
    assert Filters().blocked(None) == set()


def test_allows_everything_available_by_default(items: ItemTable) -> None:
    assert allowed(Filters(), items) == ["cam1", "tent1", "lap1", "misc"]  # boot1 is unavailable
    assert not Filters().allows("no-such-item", items, set())


def test_allows_include_categories(items: ItemTable) -> None:
    assert allowed(Filters(include_categories=("hiking",)), items) == ["tent1"]
    assert allowed(Filters(include_categories=("camping", "laptops")), items) == ["tent1", "lap1"]
    assert allowed(Filters(include_categories=("toys",)), items) == []


def test_allows_exclude_categories(items: ItemTable) -> None:
    assert allowed(Filters(exclude_categories=("cameras",)), items) == ["tent1", "lap1", "misc"]
    assert allowed(Filters(exclude_categories=("camping", "laptops")), items) == ["cam1", "misc"]


def test_exclude_beats_include(items: ItemTable) -> None:
    filters = Filters(include_categories=("hiking",), exclude_categories=("camping",))
    assert allowed(filters, items) == []


def test_allows_respects_the_blocked_set(items: ItemTable, state: UserState) -> None:
    filters = Filters()
    assert allowed(filters, items, filters.blocked(state)) == ["misc"]
    relaxed = Filters(exclude_seen=False)
    assert allowed(relaxed, items, relaxed.blocked(state)) == ["cam1", "lap1", "misc"]

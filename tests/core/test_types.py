"""Items and events refuse bad input with an InvalidInputError naming the field and the value."""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

import pytest

from liverec.core.errors import InvalidInputError, LiveRecError, NotFoundError
from liverec.core.types import Event, EventType, Item, parse_event_type, parse_timestamp

VIEW = {"user_id": "u1", "type": "view", "item_id": "i1", "timestamp": 100.0}


def event_with(**changes: Any) -> dict[str, Any]:
    data = dict(VIEW, **changes)
    return {key: value for key, value in data.items() if value is not ...}


def refused(build: Any, data: Any) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        build(data)
    return caught.value


# --- events ------------------------------------------------------------------------------------


def test_a_valid_event_is_built_with_every_field() -> None:
    event = Event.from_dict(event_with(value=2, session_id="s1", event_id="e1"))
    assert event == Event("e1", "u1", EventType.VIEW, "i1", 2.0, None, 100.0, "s1")
    assert isinstance(event.value, float)


def test_an_unknown_event_type_names_the_value_and_the_choices() -> None:
    error = refused(Event.from_dict, event_with(type="clik"))
    assert error.field == "type"
    assert error.value == "clik"
    assert str(error) == (
        "event type 'clik' is not one of view, click, add_to_cart, purchase, rate, review, search, dismiss, impression"
    )


def test_event_type_names_ignore_case_and_surrounding_space() -> None:
    assert parse_event_type(" Add_To_Cart ") is EventType.ADD_TO_CART
    assert Event.from_dict(event_with(type="PURCHASE")).type is EventType.PURCHASE


@pytest.mark.parametrize("user_id", [..., None, "", "   "])
def test_a_missing_user_is_refused(user_id: Any) -> None:
    error = refused(Event.from_dict, event_with(user_id=user_id))
    assert error.field == "user_id"
    assert "user_id is missing" in str(error)


def test_a_missing_type_is_refused() -> None:
    error = refused(Event.from_dict, event_with(type=...))
    assert (error.field, str(error)) == ("type", "type is missing")


def test_a_user_id_that_is_not_a_string_is_refused_but_an_integer_is_read_as_text() -> None:
    error = refused(Event.from_dict, event_with(user_id=["u1"]))
    assert error.field == "user_id"
    assert str(error) == "user_id must be a string, got ['u1']"
    assert refused(Event.from_dict, event_with(user_id=True)).field == "user_id"
    assert Event.from_dict(event_with(user_id=42)).user_id == "42"


def test_an_overlong_id_is_refused_with_its_length() -> None:
    error = refused(Event.from_dict, event_with(item_id="x" * 257))
    assert error.field == "item_id"
    assert str(error) == "item_id is 257 characters long; at most 256 are allowed"
    assert Event.from_dict(event_with(item_id="x" * 256)).item_id == "x" * 256


def test_an_event_other_than_search_needs_an_item() -> None:
    error = refused(Event.from_dict, event_with(item_id=...))
    assert (error.field, str(error)) == ("item_id", "item_id is missing")


@pytest.mark.parametrize("rating", [7, 0, 0.5, 5.5, -1])
def test_a_rating_outside_one_to_five_is_refused(rating: float) -> None:
    error = refused(Event.from_dict, event_with(type="rate", value=rating))
    assert error.field == "value"
    assert error.value == rating
    assert str(error) == f"rating {rating:g} is out of range; expected 1 to 5"


def test_a_rating_of_seven_is_named_in_the_message() -> None:
    error = refused(Event.from_dict, event_with(type="rate", value=7))
    assert str(error) == "rating 7 is out of range; expected 1 to 5"


def test_ratings_at_both_ends_of_the_range_are_kept() -> None:
    assert Event.from_dict(event_with(type="rate", value=1)).value == 1.0
    assert Event.from_dict(event_with(type="rate", value=5)).value == 5.0


def test_a_rate_event_needs_a_value() -> None:
    error = refused(Event.from_dict, event_with(type="rate"))
    assert (error.field, str(error)) == ("value", "a rate event needs a value from 1 to 5")


def test_a_review_rating_is_checked_too() -> None:
    error = refused(Event.from_dict, event_with(type="review", text="fine", value=6))
    assert error.field == "value"
    assert "rating 6 is out of range" in str(error)


@pytest.mark.parametrize("value", ["high", True, float("nan"), float("inf"), [3]])
def test_a_value_that_is_not_a_finite_number_is_refused(value: Any) -> None:
    error = refused(Event.from_dict, event_with(value=value))
    assert error.field == "value"
    assert str(error) == f"value must be a number, got {value!r}"


@pytest.mark.parametrize("text", [..., None, "", "   "])
def test_a_search_needs_a_text(text: Any) -> None:
    error = refused(Event.from_dict, event_with(type="search", item_id=None, text=text))
    assert (error.field, str(error)) == ("text", "a search event needs a non-empty text")


def test_a_search_has_no_item() -> None:
    error = refused(Event.from_dict, event_with(type="search", text="red shoes"))
    assert (error.field, error.value, str(error)) == ("item_id", "i1", "a search event has no item_id")
    search = Event.from_dict(event_with(type="search", item_id=None, text="red shoes"))
    assert (search.item_id, search.text) == (None, "red shoes")


def test_a_review_needs_a_text() -> None:
    error = refused(Event.from_dict, event_with(type="review"))
    assert (error.field, str(error)) == ("text", "a review event needs a non-empty text")


def test_a_text_must_be_a_string_of_bounded_length() -> None:
    error = refused(Event.from_dict, event_with(type="search", item_id=None, text=42))
    assert (error.field, str(error)) == ("text", "text must be text, got 42")
    error = refused(Event.from_dict, event_with(type="search", item_id=None, text="a" * 10_001))
    assert str(error) == "text is 10001 characters long; at most 10000 are allowed"


def test_an_unknown_event_field_is_refused_by_name() -> None:
    error = refused(Event.from_dict, event_with(colour="red", amount=3))
    assert error.field == "amount"
    assert str(error) == ("unknown event field(s): amount, colour; an event's fields are event_id, user_id, type, "
                          "item_id, value, text, timestamp, session_id")


def test_an_event_must_be_a_mapping() -> None:
    error = refused(Event.from_dict, ["u1", "view"])
    assert error.field == "event"
    assert "an event must be an object" in str(error)


def test_timestamps_are_read_from_numbers_strings_and_iso_times() -> None:
    assert Event.from_dict(event_with(timestamp="1704067200.5")).timestamp == 1704067200.5
    assert Event.from_dict(event_with(timestamp="2024-01-01T00:00:00Z")).timestamp == 1704067200.0
    assert parse_timestamp("2024-01-01T08:00:00+08:00") == 1704067200.0


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        ("yesterday", "timestamp 'yesterday' is neither epoch seconds nor an ISO-8601 time"),
        (-1.0, "timestamp -1.0 is not a valid time"),
        (float("inf"), "timestamp inf is not a valid time"),
        (True, "timestamp must be a time, got True"),
        ([1], "timestamp must be a time, got [1]"),
    ],
)
def test_a_bad_timestamp_is_refused(timestamp: Any, message: str) -> None:
    error = refused(Event.from_dict, event_with(timestamp=timestamp))
    assert (error.field, str(error)) == ("timestamp", message)


def test_a_missing_timestamp_means_now() -> None:
    before = time.time()
    event = Event.from_dict(event_with(timestamp=...))
    assert before <= event.timestamp <= time.time()


def test_the_default_event_id_is_a_hash_of_the_content() -> None:
    first = Event.from_dict(VIEW)
    assert re.fullmatch(r"h-[0-9a-f]{24}", first.event_id)
    assert Event.from_dict(VIEW).event_id == first.event_id
    assert Event.from_dict(event_with(item_id="i2")).event_id != first.event_id
    assert Event.from_dict(event_with(timestamp=100.5)).event_id != first.event_id


def test_an_event_survives_to_dict_and_from_dict() -> None:
    event = Event.create("u1", "review", "i1", value=4, text="good", timestamp=5.0, session_id="s", event_id="e")
    assert event.to_dict()["type"] == "review"
    assert Event.from_dict(event.to_dict()) == event


def test_an_event_cannot_be_changed() -> None:
    event = Event.from_dict(VIEW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.user_id = "u2"  # type: ignore[misc]


# --- items -------------------------------------------------------------------------------------


def test_an_empty_title_is_refused() -> None:
    error = refused(Item.from_dict, {"item_id": "i1", "title": "  "})
    assert (error.field, error.value) == ("title", "  ")
    assert str(error) == "item 'i1' has an empty title"


def test_a_missing_title_or_id_is_refused() -> None:
    error = refused(Item.from_dict, {"item_id": "i1"})
    assert (error.field, str(error)) == ("title", "item 'i1' has no title")
    error = refused(Item.from_dict, {"title": "Teapot"})
    assert (error.field, str(error)) == ("item_id", "item_id is missing")


def test_an_overlong_title_is_refused() -> None:
    error = refused(Item.from_dict, {"item_id": "i1", "title": "t" * 1001})
    assert (error.field, str(error)) == ("title", "title is 1001 characters long; at most 1000 are allowed")


def test_an_unknown_language_is_refused_naming_the_choices() -> None:
    error = refused(Item.from_dict, {"item_id": "i1", "title": "Thé", "language": "fr"})
    assert (error.field, error.value, str(error)) == ("language", "fr", "language 'fr' is not one of en, zh")


def test_categories_and_tags_must_be_non_empty_strings() -> None:
    error = refused(Item.from_dict, {"item_id": "i1", "title": "T", "categories": ["shoes", ""]})
    assert (error.field, str(error)) == ("categories", "categories holds '', not a non-empty string")
    error = refused(Item.from_dict, {"item_id": "i1", "title": "T", "tags": {"a": 1}})
    assert (error.field, str(error)) == ("tags", "tags must be a list of strings, got {'a': 1}")
    item = Item.from_dict({"item_id": "i1", "title": "T", "categories": "shoes", "tags": [" red "]})
    assert (item.categories, item.tags) == (("shoes",), ("red",))


def test_attributes_must_be_a_mapping_and_available_a_boolean() -> None:
    error = refused(Item.from_dict, {"item_id": "i1", "title": "T", "attributes": [1, 2]})
    assert (error.field, str(error)) == ("attributes", "attributes must be an object")
    error = refused(Item.from_dict, {"item_id": "i1", "title": "T", "available": "yes"})
    assert (error.field, str(error)) == ("available", "available must be true or false, got 'yes'")


def test_an_unknown_item_field_is_refused_by_name() -> None:
    error = refused(Item.from_dict, {"item_id": "i1", "title": "T", "price": 3})
    assert (error.field, str(error)) == ("price", "unknown item field(s): price; an item's fields are item_id, title, "
                                         "description, categories, tags, language, attributes, available, created_at; "
                                         'other facts go in attributes, e.g. {"attributes": {"price": 12.5}}')


def test_a_bad_created_at_names_its_field() -> None:
    error = refused(Item.from_dict, {"item_id": "i1", "title": "T", "created_at": "soon"})
    assert error.field == "created_at"
    assert str(error) == "created_at 'soon' is neither epoch seconds nor an ISO-8601 time"


def test_an_item_survives_to_dict_and_from_dict() -> None:
    item = Item("i1", "Teapot", "Holds tea", ("kitchen",), ("tea",), "en", {"litres": 1.2}, False, 10.0)
    assert Item.from_dict(item.to_dict()) == item
    assert item.text == "Teapot. Holds tea"
    assert Item("i2", "Cup", created_at=1.0).text == "Cup"


def test_a_missing_created_at_means_now_and_null_fields_take_defaults() -> None:
    before = time.time()
    item = Item.from_dict({"item_id": "i1", "title": "T", "description": None, "attributes": None})
    assert before <= item.created_at <= time.time()
    assert (item.description, item.attributes) == ("", {})


# --- the error tree ----------------------------------------------------------------------------


def test_errors_share_one_base_and_keep_their_builtin_kinds() -> None:
    error = refused(Event.from_dict, event_with(type="clik"))
    assert isinstance(error, LiveRecError) and isinstance(error, ValueError)
    missing = NotFoundError("item 'x' is not in the catalog", kind="item", key="x")
    assert isinstance(missing, KeyError)
    assert str(missing) == "item 'x' is not in the catalog"


@pytest.mark.parametrize("name", ["value", "timestamp"])
def test_a_number_too_large_for_a_float_is_refused_not_crashed_on(name: str) -> None:
    error = refused(Event.from_dict, event_with(**{name: 10**400}))
    assert error.field == name


def test_the_constructor_from_dict_and_create_check_and_normalise_alike() -> None:
    # One validation serves all three ways in (it runs once per event on the ingest path).
    expected = Event("e1", "42", EventType.RATE, "i1", 4.0, None, 100.0, "s1")
    assert Event("e1", 42, "rate", "i1", 4, None, 100, "s1") == expected  # type: ignore[arg-type]
    assert Event.create(42, "rate", "i1", value=4, timestamp=100, session_id="s1", event_id="e1") == expected  # type: ignore[arg-type]
    assert Event.from_dict(event_with(user_id=42, type="rate", value=4, session_id="s1", event_id="e1")) == expected
    for build in (
        lambda: Event("e1", "u1", "rate", "i1", None, None, 1.0),
        lambda: Event.create("u1", "rate", "i1", timestamp=1.0),
        lambda: Event.from_dict(event_with(type="rate")),
    ):
        with pytest.raises(InvalidInputError, match="a rate event needs a value") as caught:
            build()
        assert caught.value.field == "value"

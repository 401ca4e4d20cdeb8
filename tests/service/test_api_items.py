"""Items: similar items, bulk upsert and delete.

Items added here are new ids made by ``world.make_item`` and are deleted again before each test
ends, so the shared demo engine's catalog is left as it was found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from liverec.core.types import Item
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from tests.service._api import assert_error


def _item_json(item: Item) -> dict[str, Any]:
    return {k: v for k, v in item.to_dict().items() if v is not None}


@pytest.fixture
def added(client: TestClient, engine: Engine) -> Iterator[list[str]]:
    """Ids a test adds to the catalog; whatever is still there afterwards is deleted."""
    ids: list[str] = []
    yield ids
    for item_id in ids:
        if item_id in engine.items:
            engine.delete_item(item_id)


# ---------------------------------------------------------------- similar


def test_similar_items_share_the_category_and_cite_the_item(client: TestClient, world: DemoWorld) -> None:
    item = world.items_in("hiking")[0].item_id
    response = client.get(f"/items/{item}/similar", params={"k": 10})
    assert response.status_code == 200
    items = response.json()["items"]
    assert set(response.json()) == {"items"}
    assert len(items) == 10 and item not in {i["item_id"] for i in items}
    assert Counter(world.category_of(i["item_id"]) for i in items)["hiking"] >= 9
    assert all(i["reasons"] and i["reasons"][0]["evidence"] == item for i in items)
    assert {r["kind"] for i in items for r in i["reasons"]} <= {"content", "covisit"}


def test_similar_defaults_to_ten(client: TestClient, world: DemoWorld) -> None:
    assert len(client.get(f"/items/{world.items[0].item_id}/similar").json()["items"]) == 10


def test_similar_for_an_unknown_item_is_404(client: TestClient) -> None:
    assert_error(client.get("/items/no-such-item/similar"), 404, "not_found", "item_id", "'no-such-item'")


@pytest.mark.parametrize("k", [0, 1001])
def test_similar_with_k_out_of_range_is_422(client: TestClient, world: DemoWorld, k: int) -> None:
    assert_error(client.get(f"/items/{world.items[0].item_id}/similar", params={"k": k}), 422, "invalid_input", "k")


# ---------------------------------------------------------------- upsert


def test_a_new_item_is_searchable_and_similar_at_once(
    client: TestClient, engine: Engine, world: DemoWorld, added: list[str]
) -> None:
    new = world.make_item("gardening", "zh", seed=5150)
    added.append(new.item_id)
    count = engine.store.catalog.count()
    response = client.put("/items", json={"items": [_item_json(new)]})
    assert response.status_code == 200
    assert response.json() == {"upserted": 1}
    assert engine.store.catalog.count() == count + 1
    hits = client.get("/search", params={"q": new.title, "k": 3}).json()["items"]
    assert hits[0]["item_id"] == new.item_id and hits[0]["title"] == new.title
    similar = client.get(f"/items/{new.item_id}/similar", params={"k": 10}).json()["items"]
    assert Counter(world.category_of(i["item_id"]) for i in similar)["gardening"] >= 8


def test_putting_an_item_again_replaces_it(
    client: TestClient, engine: Engine, world: DemoWorld, added: list[str]
) -> None:
    first = world.make_item("coffee", "en", seed=5151)
    added.append(first.item_id)
    assert client.put("/items", json={"items": [_item_json(first)]}).status_code == 200
    count = engine.store.catalog.count()
    renamed = {**_item_json(first), "title": "Hand-cranked burr grinder for pour-over coffee"}
    assert client.put("/items", json={"items": [renamed]}).json() == {"upserted": 1}
    assert engine.store.catalog.count() == count
    assert engine.items.get(first.item_id).title == renamed["title"]
    hit = client.get("/search", params={"q": renamed["title"], "k": 1}).json()["items"][0]
    assert (hit["item_id"], hit["title"]) == (first.item_id, renamed["title"])


@pytest.mark.parametrize(
    ("second", "field", "words"),
    [
        ({"item_id": "api-it-bad", "title": "  "}, "items[1].title", "empty title"),
        ({"item_id": "api-it-bad"}, "items[1].title", "has no title"),
        ({"title": "No id"}, "items[1].item_id", "item_id is missing"),
        ({"item_id": "api-it-bad", "title": "Fine", "colour": "red"}, "items[1].colour", "colour"),
        ("not an object", "items[1].item", "must be an object"),
    ],
    ids=["empty-title", "no-title", "no-id", "unknown-field", "not-an-object"],
)
def test_a_bad_item_is_422_naming_its_field_and_nothing_is_stored(
    client: TestClient, engine: Engine, second: Any, field: str, words: str
) -> None:
    count = engine.store.catalog.count()
    body = {"items": [{"item_id": "api-it-good", "title": "A perfectly fine kettle"}, second]}
    response = client.put("/items", json=body)
    assert_error(response, 422, "invalid_input", field, "items[1]: ", words)
    assert engine.store.catalog.count() == count
    assert "api-it-good" not in engine.items


def test_the_first_bad_item_is_named_items_0_title(client: TestClient) -> None:
    response = client.put("/items", json={"items": [{"item_id": "api-it-empty", "title": ""}]})
    assert_error(response, 422, "invalid_input", "items[0].title")


def test_an_item_twice_in_one_batch_is_422(client: TestClient, engine: Engine) -> None:
    row = {"item_id": "api-it-twice", "title": "Twice"}
    assert_error(client.put("/items", json={"items": [row, row]}), 422, "invalid_input", "item_id", "twice")
    assert "api-it-twice" not in engine.items


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"items": []}, "items", "items is empty"),
        ({"item_id": "api-it-bare", "title": "Bare"}, "body", "must be {'items': [...]}"),
        ({"items": [], "more": 1}, "more", "unknown field"),
    ],
)
def test_a_bad_item_body_is_422(client: TestClient, body: Any, field: str, words: str) -> None:
    assert_error(client.put("/items", json=body), 422, "invalid_input", field, words)


def test_10001_items_are_refused(client: TestClient, engine: Engine) -> None:
    count = engine.store.catalog.count()
    rows = [{"item_id": f"api-it-bulk-{n}", "title": f"Bulk item {n}"} for n in range(10_001)]
    response = client.put("/items", json={"items": rows})
    assert_error(response, 422, "invalid_input", "items", "10001 items is too large", "at most 10000")
    assert engine.store.catalog.count() == count


# ---------------------------------------------------------------- delete


def test_a_deleted_item_is_gone_from_similar_search_and_recommendations(
    client: TestClient, engine: Engine, world: DemoWorld, added: list[str]
) -> None:
    doomed = world.make_item("skincare", "en", seed=5152)
    added.append(doomed.item_id)
    assert client.put("/items", json={"items": [_item_json(doomed)]}).status_code == 200
    assert client.get("/search", params={"q": doomed.title, "k": 1}).json()["items"][0]["item_id"] == doomed.item_id
    count = engine.store.catalog.count()

    response = client.delete(f"/items/{doomed.item_id}")
    assert response.status_code == 200
    assert response.json() == {"item_id": doomed.item_id, "deleted": True}
    assert engine.store.catalog.count() == count - 1
    assert_error(client.get(f"/items/{doomed.item_id}/similar"), 404, "not_found", "item_id")
    hits = client.get("/search", params={"q": doomed.title, "k": 20}).json()["items"]
    assert doomed.item_id not in {h["item_id"] for h in hits}
    neighbour = world.items_in("skincare")[0].item_id
    assert doomed.item_id not in {
        i["item_id"] for i in client.get(f"/items/{neighbour}/similar", params={"k": 50}).json()["items"]}
    assert_error(client.delete(f"/items/{doomed.item_id}"), 404, "not_found", "item_id", doomed.item_id)


def test_an_event_on_a_deleted_item_is_refused(
    client: TestClient, world: DemoWorld, added: list[str]
) -> None:
    doomed = world.make_item("toys", "zh", seed=5153)
    added.append(doomed.item_id)
    assert client.put("/items", json={"items": [_item_json(doomed)]}).status_code == 200
    assert client.delete(f"/items/{doomed.item_id}").status_code == 200
    event = {"user_id": "api-it-late", "type": "view", "item_id": doomed.item_id, "timestamp": 1_767_230_000.0}
    assert_error(client.post("/events", json=event), 422, "invalid_input", "item_id", doomed.item_id)

"""A user's recommendations, interests and erasure, and search, over the demo world."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient

from liverec.core.types import EventType
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from tests.service._api import as_json, assert_error


def _recommend(client: TestClient, user: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/users/{user}/recommendations", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _fan(client: TestClient, world: DemoWorld, user: str, category: str, n: int = 12) -> int:
    history = world.new_user_history(user, category, n)
    assert client.post("/events", json={"events": as_json(history)}).status_code == 200
    return len(history)


# ---------------------------------------------------------------- recommendations


def test_recommendations_have_the_documented_shape(client: TestClient, engine: Engine, world: DemoWorld) -> None:
    user = world.users[1].user_id
    response = client.get(f"/users/{user}/recommendations", params={"k": 7})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"request_id", "variant", "model_version", "items"}
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert len(body["request_id"]) == 32
    assert (body["variant"], body["model_version"]) == ("default", engine.snapshot.version)  # type: ignore[union-attr]
    assert len(body["items"]) == 7
    for item in body["items"]:
        assert set(item) == {"item_id", "title", "categories", "language", "score", "reasons"}
        stored = engine.items.get(item["item_id"])
        assert (item["title"], item["categories"], item["language"]) == (
            stored.title, list(stored.categories), stored.language)
        assert item["reasons"] and all(set(r) == {"kind", "text", "evidence"} and r["text"] for r in item["reasons"])
    # The same list the engine gives (exclude_seen and the default diversity, as the engine has them).
    assert [i["item_id"] for i in body["items"]] == [r.item_id for r in engine.recommend(user, k=7)]


def test_every_answer_has_its_own_request_id(client: TestClient, world: DemoWorld) -> None:
    user = world.users[2].user_id
    ids = {_recommend(client, user)["request_id"] for _ in range(3)}
    assert len(ids) == 3


def test_recommendations_leave_out_what_the_user_has_seen(client: TestClient, engine: Engine,
                                                          world: DemoWorld) -> None:
    user = world.users[3].user_id
    seen = engine.state(user).seen
    items = {i["item_id"] for i in _recommend(client, user, k=30)["items"]}
    assert items and not items & seen
    with_seen = _recommend(client, user, k=30, exclude_seen="false")["items"]
    assert [i["item_id"] for i in with_seen] == [
        r.item_id for r in engine.recommend(user, k=30, filters={"exclude_seen": False})]


def test_the_category_filter_holds(client: TestClient, world: DemoWorld) -> None:
    user = world.users[1].user_id
    one = _recommend(client, user, k=15, category="coffee")["items"]
    assert len(one) == 15 and {world.category_of(i["item_id"]) for i in one} == {"coffee"}
    two = _recommend(client, user, k=30, category=["coffee", "books"])["items"]
    assert {world.category_of(i["item_id"]) for i in two} == {"coffee", "books"}


def test_exclude_holds_repeated_and_comma_separated(client: TestClient, engine: Engine,
                                                    world: DemoWorld) -> None:
    user = world.users[4].user_id
    top = [i["item_id"] for i in _recommend(client, user, k=10)["items"]]
    response = client.get(f"/users/{user}/recommendations?k=10&exclude={top[0]},{top[1]}&exclude={top[2]}")
    rest = [i["item_id"] for i in response.json()["items"]]
    assert len(rest) == 10 and not set(rest) & set(top[:3])
    assert rest == [r.item_id for r in engine.recommend(user, k=10, filters={"exclude_items": top[:3]})]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        # range checks: the library's own (core.params), as the engine and the fast path apply them
        ({"k": 0}, "k", ("k 0 must be an integer from 1 to 1000",)),
        ({"k": 1001}, "k", ("k 1001 must be an integer from 1 to 1000",)),
        ({"diversity": 1.5}, "diversity", ("diversity 1.5 must be between 0 and 1",)),
        ({"diversity": -0.1}, "diversity", ("diversity -0.1 must be between 0 and 1",)),
        ({"category": [f"c{n}" for n in range(101)]}, "category", ("given 101 times; at most 100",)),
        # type conversion: FastAPI's
        ({"k": "ten"}, "k", ("k: ", "valid integer")),
        ({"diversity": "much"}, "diversity", ("diversity: ", "valid number")),
    ],
)
def test_bad_parameters_are_422_naming_them(client: TestClient, world: DemoWorld, params: dict[str, Any],
                                            field: str, words: tuple[str, ...]) -> None:
    response = client.get(f"/users/{world.users[1].user_id}/recommendations", params=params)
    assert_error(response, 422, "invalid_input", field, *words)


def test_k_and_diversity_at_their_bounds_are_accepted(client: TestClient, world: DemoWorld) -> None:
    user = world.users[1].user_id
    assert len(_recommend(client, user, k=1)["items"]) == 1
    assert len(_recommend(client, user, k=1000)["items"]) > 100
    assert len(_recommend(client, user, k=5, diversity=0)["items"]) == 5
    assert len(_recommend(client, user, k=5, diversity=1)["items"]) == 5


def test_diversity_changes_the_list(client: TestClient, engine: Engine, world: DemoWorld) -> None:
    user = world.users[5].user_id
    plain = _recommend(client, user, k=10, diversity=0)["items"]
    scores = [i["score"] for i in plain]
    assert scores == sorted(scores, reverse=True)  # no diversity: the relevance order
    for diversity in (0.0, 0.9):
        got = [i["item_id"] for i in _recommend(client, user, k=10, diversity=diversity)["items"]]
        assert got == [r.item_id for r in engine.recommend(user, k=10, diversity=diversity)]


def test_an_unknown_user_gets_popular_items(client: TestClient) -> None:
    body = _recommend(client, "api-us-stranger", k=10)
    assert len(body["items"]) == 10
    assert all(i["reasons"][0]["kind"] == "trending" for i in body["items"])


# ---------------------------------------------------------------- interests


def test_interests_show_the_users_category_first(client: TestClient, engine: Engine, world: DemoWorld) -> None:
    n = _fan(client, world, "api-us-interests", "cameras")
    response = client.get("/users/api-us-interests/interests", params={"k": 5})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user_id", "interests", "events", "last_event", "groups"}
    assert (body["user_id"], body["events"]) == ("api-us-interests", n)
    assert body["last_event"] == max(e.timestamp for e in engine.store.events.by_user("api-us-interests"))
    assert len(body["interests"]) == 5 and body["interests"][0]["tag"] == "cameras"
    weights = [i["weight"] for i in body["interests"]]
    assert weights == sorted(weights, reverse=True)
    assert [(i["tag"], i["weight"]) for i in body["interests"]] == engine.interests("api-us-interests", k=5)


def test_interests_show_a_users_several_interests_with_their_shares(
        client: TestClient, engine: Engine, world: DemoWorld) -> None:
    user = next(u for u in reversed(world.users) if len(u.preferences) >= 2)  # users no other test acts for
    body = client.get(f"/users/{user.user_id}/interests").json()
    groups = body["groups"]
    assert len(groups) >= 2, groups  # the model keeps several interests, and this user has several
    assert abs(sum(g["share"] for g in groups) - 1) < 0.01
    assert [g["share"] for g in groups] == sorted((g["share"] for g in groups), reverse=True)
    assert all(1 <= len(g["tags"]) <= 3 for g in groups)
    assert [(g["tags"], g["share"]) for g in groups] == engine.interest_groups(user.user_id)
    strongest = " ".join(groups[0]["tags"] + groups[1]["tags"])
    assert any(c in strongest for c in user.preferences), (strongest, user.preferences)


def test_interests_of_a_user_without_events_are_404(client: TestClient) -> None:
    assert_error(client.get("/users/api-us-nobody/interests"), 404, "not_found", "user_id", "'api-us-nobody'")


# ---------------------------------------------------------------- search


def test_a_chinese_query_finds_laptops_in_both_languages(client: TestClient, engine: Engine,
                                                         world: DemoWorld) -> None:
    response = client.get("/search", params={"q": "轻薄笔记本电脑", "k": 20})
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 20
    assert {world.category_of(i["item_id"]) for i in items} == {"laptops"}
    assert Counter(engine.items.get(i["item_id"]).language for i in items)["en"] >= 2
    assert all(i["reasons"] == [{"kind": "search", "text": "matches '轻薄笔记本电脑'", "evidence": "轻薄笔记本电脑"}]
               for i in items)


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "q"), ({"q": ""}, "q"), ({"q": "   "}, "q"), ({"q": "tent", "k": 0}, "k"), ({"q": "tent", "user_id": ""},
                                                                                        "user_id")],
)
def test_bad_search_parameters_are_422(client: TestClient, params: dict[str, Any], field: str) -> None:
    assert_error(client.get("/search", params=params), 422, "invalid_input", field)


def test_a_search_without_a_user_records_nothing(client: TestClient, engine: Engine) -> None:
    before = engine.store.events.count()
    assert client.get("/search", params={"q": "hiking boots"}).status_code == 200
    assert engine.store.events.count() == before


def test_a_search_with_a_user_is_their_event_and_moves_their_interest(
    client: TestClient, engine: Engine, world: DemoWorld
) -> None:
    user = "api-us-searcher"
    n = _fan(client, world, user, "cameras")
    assert client.get(f"/users/{user}/interests").json()["events"] == n
    query = "防水登山鞋"
    response = client.get("/search", params={"q": query, "user_id": user, "k": 5})
    assert response.status_code == 200
    assert {world.category_of(i["item_id"]) for i in response.json()["items"]} == {"hiking"}
    events = engine.store.events.by_user(user)
    assert len(events) == n + 1
    assert (events[-1].type, events[-1].text, events[-1].item_id) == (EventType.SEARCH, query, None)
    assert client.get(f"/users/{user}/interests").json()["events"] == n + 1
    recs = _recommend(client, user, k=10)["items"]
    assert any(world.category_of(r["item_id"]) == "hiking" for r in recs)
    assert any(reason["evidence"] == query for r in recs for reason in r["reasons"])


# ---------------------------------------------------------------- erasure


def test_delete_user_erases_events_state_and_served_lists(client: TestClient, engine: Engine,
                                                          world: DemoWorld) -> None:
    user = "api-us-forget"
    n = _fan(client, world, user, "coffee", 9)
    for _ in range(2):
        _recommend(client, user)
    assert engine.states.get(user) is not None
    response = client.delete(f"/users/{user}")
    assert response.status_code == 200
    assert response.json() == {"user_id": user, "events_removed": n, "state_removed": True,
                               "served_requests_removed": 2}
    assert engine.store.events.by_user(user) == []
    assert engine.states.get(user) is None
    assert user not in engine.store.events.users()
    assert_error(client.get(f"/users/{user}/interests"), 404, "not_found", "user_id")
    again = client.delete(f"/users/{user}")
    assert again.status_code == 200
    assert again.json() == {"user_id": user, "events_removed": 0, "state_removed": False,
                            "served_requests_removed": 0}


def test_feedback_on_a_list_served_to_an_erased_user_is_404(client: TestClient, world: DemoWorld) -> None:
    user = "api-us-forget-fb"
    _fan(client, world, user, "books", 6)
    request_id = _recommend(client, user)["request_id"]
    assert client.delete(f"/users/{user}").json()["served_requests_removed"] == 1
    response = client.post("/feedback", json={"request_id": request_id, "type": "impression"})
    assert_error(response, 404, "not_found", "request_id", request_id)


def test_a_user_id_that_is_only_spaces_is_422(client: TestClient) -> None:
    assert_error(client.get("/users/%20%20/recommendations"), 422, "invalid_input", "user_id")
    assert_error(client.delete("/users/%20"), 422, "invalid_input", "user_id")

"""API keys on the routes, refusing to listen beyond loopback without keys, and user ids
pseudonymised at rest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from liverec.core.errors import InvalidInputError
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from liverec.service.app import build_services, check_exposure
from liverec.service.privacy import Pseudonymizer
from liverec.service.settings import ServiceSettings
from liverec.storage import MemoryKeyStore, open_key_store
from tests.service._api import as_json, assert_error
from tests.service.conftest import create_key, make_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def keyed(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A client whose key file holds one key per scope (created before the service starts)."""
    tmp = tmp_path_factory.mktemp("keyed")
    tokens = {scope: create_key(tmp / "keys.db", f"{scope} key", [scope]) for scope in ("read", "ingest", "admin")}
    with make_client(engine, tmp) as c:
        yield c, tokens


# The routes, each with the scope it needs and a request that the scope is allowed to make.
ROUTES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("read", "GET", "/users/u0001/recommendations", {}),
    ("read", "GET", "/users/u0001/interests", {}),
    ("read", "GET", "/items/i00001/similar", {}),
    ("read", "GET", "/search", {"params": {"q": "tent"}}),
    ("read", "GET", "/metrics", {}),
    ("ingest", "POST", "/events", {"json": {"event_id": "api-sec-1", "user_id": "api-sec-user", "type": "view",
                                            "item_id": "i00002", "timestamp": 1_767_230_000.0}}),
    ("ingest", "PUT", "/items", {"json": {"items": []}}),  # valid key, then 422 for the empty batch
    ("ingest", "DELETE", "/items/api-sec-no-such-item", {}),  # valid key, then 404
    ("ingest", "POST", "/feedback", {"json": {"request_id": "api-sec-none", "type": "impression"}}),  # then 404
    ("admin", "DELETE", "/users/api-sec-erased", {}),
    ("admin", "GET", "/admin/experiments", {}),
    ("admin", "GET", "/admin/train", {}),  # then 404: no run yet
]
ALLOWED = {"read": {"read"}, "ingest": {"ingest"}, "admin": {"read", "ingest", "admin"}}


@pytest.mark.parametrize(("scope", "method", "path", "kwargs"), ROUTES, ids=[f"{r[1]} {r[2]}" for r in ROUTES])
def test_no_key_is_401_with_www_authenticate(keyed: tuple[TestClient, dict[str, str]], scope: str, method: str,
                                             path: str, kwargs: dict[str, Any]) -> None:
    client, _ = keyed
    response = client.request(method, path, **kwargs)
    assert_error(response, 401, "unauthorized", "authorization", "API key is required")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("scope", "method", "path", "kwargs"), ROUTES, ids=[f"{r[1]} {r[2]}" for r in ROUTES])
@pytest.mark.parametrize("holder", ["read", "ingest", "admin"])
def test_each_key_reaches_exactly_its_scopes(keyed: tuple[TestClient, dict[str, str]], holder: str, scope: str,
                                             method: str, path: str, kwargs: dict[str, Any]) -> None:
    client, tokens = keyed
    response = client.request(method, path, headers=_bearer(tokens[holder]), **kwargs)
    if scope in ALLOWED[holder]:
        assert response.status_code not in (401, 403), response.text
    else:
        assert_error(response, 403, "forbidden", "authorization", f"lacks the '{scope}' scope")


def test_the_key_works_as_bearer_and_as_x_api_key(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = keyed
    for headers in (_bearer(tokens["read"]), {"X-API-Key": tokens["read"]}):
        response = client.get("/users/u0001/recommendations", headers=headers)
        assert response.status_code == 200 and len(response.json()["items"]) == 10


def test_admin_can_ingest_read_and_erase(keyed: tuple[TestClient, dict[str, str]], engine: Engine,
                                         world: DemoWorld) -> None:
    client, tokens = keyed
    admin = _bearer(tokens["admin"])
    history = world.new_user_history("api-sec-admin", "cooking", 4)
    assert client.post("/events", json={"events": as_json(history)}, headers=admin).status_code == 200
    assert client.get("/users/api-sec-admin/interests", headers=admin).json()["events"] == 4
    erased = client.delete("/users/api-sec-admin", headers=admin)
    assert erased.status_code == 200 and erased.json()["events_removed"] == 4
    assert engine.store.events.by_user("api-sec-admin") == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer lr_0123abcd_" + "x" * 43},
        {"X-API-Key": "not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["unknown-bearer", "unknown-x-api-key", "basic-auth"],
)
def test_an_unknown_key_is_401(keyed: tuple[TestClient, dict[str, str]], headers: dict[str, str]) -> None:
    client, _ = keyed
    response = client.get("/users/u0001/recommendations", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["field"] == "authorization"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_is_401_at_once(engine: Engine, tmp_path: Path) -> None:
    with make_client(engine, tmp_path) as c:
        keys = c.app.state.services.keys  # type: ignore[attr-defined]
        token, key = keys.create("short-lived", ["read"])
        kept, _ = keys.create("kept", ["read"])
        assert c.get("/users/u0001/recommendations", headers=_bearer(token)).status_code == 200
        keys.revoke(key.key_id)
        response = c.get("/users/u0001/recommendations", headers=_bearer(token))
        assert_error(response, 401, "unauthorized", "authorization", "unknown or revoked")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert c.get("/users/u0001/recommendations", headers=_bearer(kept)).status_code == 200


def test_revoking_the_last_key_off_loopback_does_not_open_the_service(engine: Engine, tmp_path: Path) -> None:
    token = create_key(tmp_path / "keys.db", "leaked", ["admin"])
    with make_client(engine, tmp_path, host="0.0.0.0", behind_proxy=True) as c:
        [key] = c.app.state.services.keys.list()  # type: ignore[attr-defined]
        assert c.get("/users/u0001/recommendations", headers=_bearer(token)).status_code == 200
        c.app.state.services.keys.revoke(key.key_id)  # type: ignore[attr-defined]
        assert_error(c.get("/users/u0001/recommendations", headers=_bearer(token)), 401, "unauthorized",
                     "authorization", "unknown or revoked")
        assert_error(c.get("/users/u0001/recommendations"), 401, "unauthorized", "authorization")


def test_the_first_key_created_turns_auth_on(engine: Engine, tmp_path: Path) -> None:
    with make_client(engine, tmp_path) as c:
        assert c.get("/users/u0001/recommendations").status_code == 200
        c.app.state.services.keys.create("first", ["read"])  # type: ignore[attr-defined]
        assert_error(c.get("/users/u0001/recommendations"), 401, "unauthorized", "authorization")


def test_require_keys_demands_a_key_even_with_none_created(engine: Engine, tmp_path: Path) -> None:
    with make_client(engine, tmp_path, require_keys=True) as c:
        assert_error(c.get("/users/u0001/recommendations"), 401, "unauthorized", "authorization")
        assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/docs", "/openapi.json"])
def test_health_and_docs_need_no_key(keyed: tuple[TestClient, dict[str, str]], path: str) -> None:
    client, _ = keyed
    response = client.get(path)
    assert response.status_code == 200
    if path == "/openapi.json":
        schema = response.json()
        assert "/users/{user_id}/recommendations" in schema["paths"]
        assert {"EventIn", "EventBatch", "ItemBatch", "ErrorBody"} <= set(schema["components"]["schemas"])


# ---------------------------------------------------------------- exposure


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_a_non_loopback_host_without_keys_is_refused(engine: Engine, tmp_path: Path, host: str) -> None:
    settings = ServiceSettings(store="memory://", host=host, keys_file=str(tmp_path / "keys.db"))
    with pytest.raises(InvalidInputError, match=f"refusing to listen on {host} without API keys") as info:
        build_services(settings, engine)
    assert info.value.field == "host"
    keys = open_key_store(tmp_path / "keys.db")
    with pytest.raises(InvalidInputError):
        check_exposure(settings, keys)
    keys.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_keys(tmp_path: Path, host: str) -> None:
    settings = ServiceSettings(store="memory://", host=host)
    assert settings.loopback
    check_exposure(settings, MemoryKeyStore())  # raises for any other address without keys


def test_a_non_loopback_host_with_a_key_starts_and_demands_it(engine: Engine, tmp_path: Path) -> None:
    token = create_key(tmp_path / "keys.db", "ops", ["admin"])
    with make_client(engine, tmp_path, host="0.0.0.0", behind_proxy=True) as c:
        assert_error(c.get("/users/u0001/recommendations"), 401, "unauthorized", "authorization")
        assert c.get("/users/u0001/recommendations", headers=_bearer(token)).status_code == 200


# ---------------------------------------------------------------- pseudonyms

SECRET = "a test secret of more than 16 bytes"


def test_user_ids_are_stored_as_pseudonyms_and_served_by_raw_id(
    engine: Engine, world: DemoWorld, tmp_path: Path
) -> None:
    pseudonym = Pseudonymizer(SECRET).user_id("alice")
    assert pseudonym.startswith("p_")
    history = world.new_user_history("alice", "gardening", 8)  # the events a client sends for "alice"
    with make_client(engine, tmp_path, user_id_secret=SECRET) as c:
        posted = c.post("/events", json={"events": as_json(history)})
        assert posted.status_code == 200
        stored = engine.store.events.by_user(pseudonym)
        assert sorted(e.event_id for e in stored) == sorted(e.event_id for e in history)
        assert engine.store.events.by_user("alice") == []
        assert "alice" not in engine.store.events.users()

        interests = c.get("/users/alice/interests").json()
        assert (interests["user_id"], interests["events"]) == ("alice", 8)
        assert interests["interests"][0]["tag"] == "gardening"
        recs = c.get("/users/alice/recommendations").json()["items"]
        seen = {e.item_id for e in history}
        assert not {r["item_id"] for r in recs} & seen  # her history is known under the pseudonym
        assert any(reason["evidence"] in seen for r in recs for reason in r["reasons"])
        assert [r["item_id"] for r in recs] == [r.item_id for r in engine.recommend(pseudonym, k=10)]

        assert c.get("/search", params={"q": "garden hose", "user_id": "alice"}).status_code == 200
        assert len(engine.store.events.by_user(pseudonym)) == 9

        erased = c.delete("/users/alice")
        assert erased.status_code == 200
        assert erased.json() == {"user_id": "alice", "events_removed": 9, "state_removed": True,
                                 "served_requests_removed": 1}
        assert engine.store.events.by_user(pseudonym) == []
        assert engine.states.get(pseudonym) is None
        assert_error(c.get("/users/alice/interests"), 404, "not_found", "user_id")


def test_a_short_user_id_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="at least 16") as info:
        ServiceSettings(store="memory://", user_id_secret="too short", keys_file=str(tmp_path / "k.db"))
    assert info.value.field == "user_id_secret"

"""Browser sessions: a key exchanged for an HttpOnly, SameSite=Strict cookie plus a CSRF token;
scopes hold through the cookie, a revoked key ends its sessions, and the keyless loopback mode
needs no sign-in (the page in a real browser: tests/service/test_page.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from liverec.engine import Engine
from liverec.service.sessions import COOKIE, Sessions, cookie_of
from liverec.storage import open_key_store
from tests.service._api import assert_error
from tests.service.conftest import create_key, make_client

Keyed = tuple[TestClient, dict[str, str], Path]
EVENT = {"user_id": "session-user", "type": "view", "item_id": "i00002", "timestamp": 1_767_230_000.0}


@pytest.fixture(scope="module")
def keyed(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    tmp = tmp_path_factory.mktemp("sessions")
    tokens = {scope: create_key(tmp / "keys.db", f"{scope} key", [scope]) for scope in ("read", "ingest", "admin")}
    with make_client(engine, tmp) as c:
        yield c, tokens, tmp / "keys.db"


def _sign_in(client: TestClient, token: str) -> dict[str, object]:
    client.cookies.clear()
    response = client.post("/session", json={"key": token})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_sign_in_sets_an_httponly_strict_cookie_and_answers_a_csrf_token(keyed: Keyed) -> None:
    client, tokens, _ = keyed
    client.cookies.clear()
    response = client.post("/session", json={"key": tokens["read"]})
    assert response.status_code == 200
    body = response.json()
    assert body["auth_required"] is True and body["scopes"] == ["read"] and body["name"] == "read key"
    assert len(body["csrf_token"]) >= 32
    raw = response.headers["set-cookie"]
    morsel = SimpleCookie(raw)[COOKIE]
    assert morsel["httponly"] is True and morsel["samesite"].lower() == "strict" and morsel["path"] == "/"
    assert int(morsel["max-age"]) == 12 * 3600
    assert tokens["read"] not in raw and body["csrf_token"] not in raw  # the cookie is neither the key nor the token
    assert client.get("/session").json() == body  # a reload finds the same session and token


def test_a_bad_key_gets_no_session(keyed: Keyed) -> None:
    client, _, _ = keyed
    client.cookies.clear()
    assert_error(client.post("/session", json={"key": "lr_nope_nope"}), 401, "unauthorized", "authorization", "unknown")
    assert "set-cookie" not in client.post("/session", json={"key": "x"}).headers
    assert_error(client.post("/session", json={}), 422, "invalid_input", "key", "Field required")
    assert_error(client.get("/session"), 401, "unauthorized", "session", "not signed in")


def test_the_cookie_carries_the_keys_scopes(keyed: Keyed) -> None:
    client, tokens, _ = keyed
    csrf = _sign_in(client, tokens["read"])["csrf_token"]
    assert client.get("/users/u0001/recommendations").status_code == 200
    refused = client.post("/events", json={**EVENT, "event_id": "session-read"}, headers={"x-csrf-token": str(csrf)})
    assert_error(refused, 403, "forbidden", "authorization", "lacks the 'ingest' scope")
    assert_error(client.get("/search", params={"q": "tent", "user_id": "session-user"}), 403, "forbidden",
                 "authorization", "records the search")
    assert client.get("/search", params={"q": "tent"}).status_code == 200
    assert_error(client.post("/admin/train", headers={"x-csrf-token": str(csrf)}), 403, "forbidden", "authorization",
                 "lacks the 'admin' scope")


def test_a_state_changing_call_needs_the_csrf_token(keyed: Keyed,
                                                    engine: Engine) -> None:
    client, tokens, _ = keyed
    csrf = str(_sign_in(client, tokens["ingest"])["csrf_token"])
    for headers in ({}, {"x-csrf-token": "forged"}, {"x-csrf-token": csrf[:-1]}):
        response = client.post("/events", json={**EVENT, "event_id": "session-csrf"}, headers=headers)
        assert_error(response, 403, "forbidden", "x-csrf-token", "X-CSRF-Token".lower())
    assert engine.store.events.by_user("session-user") == []  # nothing of the refused calls was stored
    accepted = client.post("/events", json={**EVENT, "event_id": "session-csrf"}, headers={"x-csrf-token": csrf})
    assert accepted.status_code == 200, accepted.text
    assert [e.event_id for e in engine.store.events.by_user("session-user")] == ["session-csrf"]


def test_a_key_header_needs_no_csrf_token_and_beats_a_cookie(keyed: Keyed) -> None:
    client, tokens, _ = keyed
    _sign_in(client, tokens["read"])
    response = client.post("/events", json={**EVENT, "event_id": "session-header"},
                           headers={"Authorization": f"Bearer {tokens['ingest']}"})
    assert response.status_code == 200, response.text


def test_sign_out_and_revocation_end_the_session(keyed: Keyed) -> None:
    client, tokens, keys_path = keyed
    _sign_in(client, tokens["read"])
    stale = client.cookies.get(COOKIE)
    out = client.delete("/session")
    assert out.status_code == 204 and 'max-age=0' in out.headers["set-cookie"].lower()
    client.cookies.set(COOKIE, str(stale))  # a copy of the cookie kept from before
    assert_error(client.get("/users/u0001/recommendations"), 401, "unauthorized", "session", "ended")

    token = create_key(keys_path, "short-lived", ["read"])
    for _ in range(30):  # the service sees another process's new key within a second
        client.cookies.clear()
        if client.post("/session", json={"key": token}).status_code == 200:
            break
        time.sleep(0.1)
    assert client.get("/users/u0001/recommendations").status_code == 200
    keys = open_key_store(keys_path)
    try:
        keys.revoke(next(k.key_id for k in keys.list() if k.name == "short-lived"))
    finally:
        keys.close()
    # The service sees another process's revocation within a second (its key store re-reads).
    for _ in range(30):
        response = client.get("/users/u0001/recommendations")
        if response.status_code == 401:
            break
        time.sleep(0.1)
    assert_error(response, 401, "unauthorized", "authorization", "revoked")


def test_a_cross_site_request_is_refused_even_with_the_cookie(keyed: Keyed) -> None:
    client, tokens, _ = keyed
    csrf = str(_sign_in(client, tokens["ingest"])["csrf_token"])
    response = client.post("/events", json={**EVENT, "event_id": "session-xsite"},
                           headers={"x-csrf-token": csrf, "origin": "https://evil.example"})
    assert_error(response, 403, "forbidden", "origin", "evil.example")


def test_keyless_loopback_needs_no_sign_in(client: TestClient) -> None:
    assert client.get("/session").json()["auth_required"] is False
    signed = client.post("/session", json={"key": "anything"})
    assert signed.status_code == 200 and signed.json()["auth_required"] is False
    assert "set-cookie" not in signed.headers


def test_sessions_expire_and_stay_bounded() -> None:
    sessions = Sessions(ttl=60, limit=3)
    first, _ = sessions.open("token-a", now=1000.0)
    assert sessions.find(first, now=1059.0) is not None
    assert sessions.find(first, now=1060.0) is None and len(sessions) == 0
    ids = [sessions.open(f"token-{n}", now=2000.0)[0] for n in range(5)]
    assert len(sessions) == 3 and sessions.find(ids[0], now=2001.0) is None and sessions.find(ids[4], now=2001.0)
    assert cookie_of([(b"cookie", f"a=1; {COOKIE}=xyz; b=2".encode())]) == "xyz"
    assert cookie_of([(b"cookie", b"a=1")]) is None

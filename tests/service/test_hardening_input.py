"""Hostile input (issue 12): long ids under pseudonyms, reused event ids, weak secrets, deep JSON,
a pseudonym oracle, and storage failures that would leak paths or passwords.

Each test names its finding; library behaviour is asserted on the engine, HTTP behaviour through
the app over a real engine (memory store, or SQLite where the failure is the store's own).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from liverec.core.errors import ConflictError, InvalidInputError
from liverec.core.types import MAX_ID_LENGTH, MAX_JSON_DEPTH, Event, Item
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from liverec.service.privacy import Pseudonymizer
from liverec.service.settings import ServiceSettings, load_settings
from liverec.storage import locate, open_store
from tests.service._api import CommitGate, assert_error, wait_until
from tests.service.conftest import make_client

SECRET = "a hardening test secret, long enough"
LONG_ID = "u" * 312


def _item(world: DemoWorld, n: int = 0) -> str:
    return world.items_in(world.categories[0])[n].item_id


def _view(world: DemoWorld, event_id: str, user: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user, "type": "view", "item_id": _item(world, n),
            "timestamp": 1_767_230_000.0, **extra}


# ---------------------------------------------------------------- 7: long ids with pseudonyms


@pytest.mark.parametrize("secret", [SECRET, None], ids=["pseudonyms", "raw ids"])
def test_finding7_a_user_id_over_256_characters_is_refused_wherever_it_enters(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, secret: str | None
) -> None:
    before = small_engine.store.events.count()
    with make_client(small_engine, tmp_path, user_id_secret=secret) as c:
        one = c.post("/events", json=_view(small_world, "f7-one", LONG_ID))
        assert_error(one, 422, "invalid_input", "user_id", "312 characters", str(MAX_ID_LENGTH))
        many = c.post("/events", json={"events": [_view(small_world, "f7-a", "f7-ok"),
                                                  _view(small_world, "f7-b", LONG_ID)]})
        assert_error(many, 422, "invalid_input", "events[1].user_id", "events[1]", "312 characters")
        assert small_engine.store.events.count() == before
        # Every route a raw id reaches refuses it the same way erasure does, so nothing can be
        # stored under an id that could not then be erased.
        for answer in (c.get(f"/users/{LONG_ID}/recommendations"), c.get(f"/users/{LONG_ID}/interests"),
                       c.delete(f"/users/{LONG_ID}"), c.get("/search", params={"q": "tent", "user_id": LONG_ID})):
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["field"] == "user_id"
        ok = c.post("/events", json=_view(small_world, "f7-max", "m" * MAX_ID_LENGTH))
        assert ok.status_code == 200, ok.text
        assert c.delete(f"/users/{'m' * MAX_ID_LENGTH}").json()["events_removed"] == 1


@pytest.mark.parametrize(("raw", "words"), [(LONG_ID, "312 characters"), ("", "missing"), ("  ", "missing")])
def test_finding7_the_pseudonymizer_refuses_a_raw_id_no_event_could_hold(raw: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words) as info:
        Pseudonymizer(SECRET).user_id(raw)
    assert info.value.field == "user_id"
    assert Pseudonymizer(SECRET).user_id("u" * MAX_ID_LENGTH).startswith("p_")


# ---------------------------------------------------------------- 8: reused event ids


def test_finding8_an_event_id_resent_with_other_content_is_a_conflict_in_the_library(
    small_engine: Engine, small_world: DemoWorld
) -> None:
    first = Event.from_dict(_view(small_world, "f8-lib", "f8-lib-user"))
    assert small_engine.ingest_events([first]).stored == 1
    other = {**_view(small_world, "f8-lib", "f8-lib-user", n=1), "timestamp": first.timestamp}
    with pytest.raises(ConflictError, match="'f8-lib'.*item_id") as info:
        small_engine.ingest_events([other, _view(small_world, "f8-lib-new", "f8-lib-user")])
    assert info.value.field == "event_id"
    assert [e.item_id for e in small_engine.store.events.by_user("f8-lib-user")] == [first.item_id]  # nothing more
    with pytest.raises(ConflictError, match="timestamp"):
        small_engine.ingest_events([{**_view(small_world, "f8-lib", "f8-lib-user"), "timestamp": 1_767_230_001.0}])
    again = small_engine.ingest_events([first])
    assert (again.received, again.stored, again.duplicates) == (1, 0, 1)


def test_finding8_within_one_batch_a_repeated_id_counts_once_or_conflicts(
    small_engine: Engine, small_world: DemoWorld
) -> None:
    row = _view(small_world, "f8-twice", "f8-batch")
    result = small_engine.ingest_events([row, dict(row)])
    assert (result.received, result.stored, result.duplicates) == (2, 1, 1)
    with pytest.raises(ConflictError, match="'f8-differs'.*twice"):
        small_engine.ingest_events([_view(small_world, "f8-fine", "f8-batch"),
                                    _view(small_world, "f8-differs", "f8-batch"),
                                    _view(small_world, "f8-differs", "f8-batch", n=2)])
    assert {e.event_id for e in small_engine.store.events.by_user("f8-batch")} == {"f8-twice"}


def test_finding8_an_event_stamped_on_arrival_is_matched_without_its_time(
    small_engine: Engine, small_world: DemoWorld
) -> None:
    untimed = {k: v for k, v in _view(small_world, "f8-untimed", "f8-untimed-user").items() if k != "timestamp"}
    assert small_engine.ingest_events([untimed]).stored == 1
    assert small_engine.ingest_events([dict(untimed)]).duplicates == 1  # a retry is stamped anew: no conflict
    resent = Event.create("f8-untimed-user", "view", untimed["item_id"], event_id="f8-untimed")
    assert small_engine.ingest_events([resent], stamped={"f8-untimed"}).duplicates == 1
    with pytest.raises(ConflictError, match="item_id"):
        small_engine.ingest_events([{**untimed, "item_id": _item(small_world, 3)}])


def test_finding8_over_http_a_conflict_is_409_naming_the_id_and_counts_are_honest(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path
) -> None:
    with make_client(small_engine, tmp_path) as c:
        first = c.post("/events", json=_view(small_world, "f8-http", "f8-http-user"))
        assert first.status_code == 200, first.text
        assert first.json() == {"received": 1, "acknowledged": 1, "stored": 1, "duplicates": 0,
                                "event_ids": ["f8-http"]}
        changed = c.post("/events", json=_view(small_world, "f8-http", "f8-http-user", n=1))
        assert_error(changed, 409, "conflict", "event_id", "'f8-http'", "item_id")
        same = c.post("/events", json=_view(small_world, "f8-http", "f8-http-user"))
        assert same.status_code == 200
        assert same.json() == {"received": 1, "acknowledged": 1, "stored": 0, "duplicates": 1,
                               "event_ids": ["f8-http"]}

        twice = _view(small_world, "f8-http-twice", "f8-http-user")
        both = c.post("/events", json={"events": [twice, twice, _view(small_world, "f8-http-3", "f8-http-user")]})
        assert both.json() == {"received": 3, "acknowledged": 2, "stored": 2, "duplicates": 1,
                               "event_ids": ["f8-http-twice", "f8-http-3"]}
        assert both.headers["Liverec-Duplicates"] == "1"
        clash = c.post("/events", json={"events": [_view(small_world, "f8-http-4", "f8-http-user"),
                                                   _view(small_world, "f8-http-4", "f8-http-user", n=1)]})
        assert_error(clash, 409, "conflict", "event_id", "'f8-http-4'", "twice")
        untimed = {k: v for k, v in _view(small_world, "f8-http-5", "f8-http-user").items() if k != "timestamp"}
        assert [c.post("/events", json=untimed).status_code for _ in range(2)] == [200, 200]
    stored = {e.event_id: e for e in small_engine.store.events.by_user("f8-http-user")}
    assert sorted(stored) == ["f8-http", "f8-http-3", "f8-http-5", "f8-http-twice"]
    assert stored["f8-http"].item_id == _item(small_world, 0)


def test_finding8_two_requests_of_one_group_commit_reusing_an_id_fail_only_the_later(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = CommitGate(small_engine, monkeypatch)
    answers: dict[str, Any] = {}
    with make_client(small_engine, tmp_path) as c:
        committer = c.app.state.services.committer  # type: ignore[attr-defined]

        def post(name: str, body: dict[str, Any]) -> None:
            answers[name] = c.post("/events", json=body)

        gate.close()
        holder = threading.Thread(target=post, args=("holder", _view(small_world, "f8-grp-hold", "f8-grp")))
        holder.start()
        gate.wait_entered()
        first = threading.Thread(target=post, args=("first", _view(small_world, "f8-grp", "f8-grp")))
        first.start()
        wait_until(lambda: committer.pending_events == 1)
        later = threading.Thread(target=post, args=("later", {"events": [
            _view(small_world, "f8-grp-other", "f8-grp"), _view(small_world, "f8-grp", "f8-grp", n=1)]}))
        later.start()
        wait_until(lambda: committer.pending_events == 3)
        gate.open()
        for t in (holder, first, later):
            t.join(10)
    assert gate.calls[:2] == [1, 3]  # the two requests shared one group commit, which was then split
    assert (answers["holder"].status_code, answers["first"].status_code) == (200, 200)
    assert_error(answers["later"], 409, "conflict", "event_id", "'f8-grp'", "already stored", "item_id")
    assert sorted(e.event_id for e in small_engine.store.events.by_user("f8-grp")) == ["f8-grp", "f8-grp-hold"]


def test_finding8_two_users_reusing_one_event_id_conflict_without_naming_a_pseudonym(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path
) -> None:
    with make_client(small_engine, tmp_path, user_id_secret=SECRET) as c:
        assert c.post("/events", json=_view(small_world, "f8-shared", "f8-ann")).status_code == 200
        clash = c.post("/events", json=_view(small_world, "f8-shared", "f8-bob"))
    assert_error(clash, 409, "conflict", "event_id", "'f8-shared'", "user_id")
    assert "p_" not in clash.text


# ---------------------------------------------------------------- 10: weak secrets


@pytest.mark.parametrize("secret", [64, 10**40, 3.5, True, ["a" * 20]], ids=["int", "big int", "float", "bool", "list"])
def test_finding10_a_secret_that_is_not_text_is_refused_without_echoing_it(secret: Any) -> None:
    with pytest.raises(InvalidInputError, match="user_id_secret must be a string") as info:
        ServiceSettings(store="memory://", user_id_secret=secret)
    assert info.value.field == "user_id_secret"
    assert info.value.value is None
    assert str(secret) not in str(info.value)
    with pytest.raises(InvalidInputError, match="must be a string"):
        Pseudonymizer(secret)


def test_finding10_a_toml_integer_secret_or_salt_is_refused_when_the_settings_load(tmp_path: Path) -> None:
    config = tmp_path / "liverec.toml"
    config.write_text("user_id_secret = 64\n")
    with pytest.raises(InvalidInputError, match="user_id_secret must be a string"):
        load_settings(config, env={})
    config.write_text("experiment_salt = 64\n")
    with pytest.raises(InvalidInputError, match="experiment_salt must be a non-empty string") as info:
        load_settings(config, env={})
    assert info.value.field == "experiment_salt"


# ---------------------------------------------------------------- 11: deep JSON


def _nested(depth: int) -> str:
    """An object nested ``depth`` levels deep, as JSON text."""
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


def _nested_value(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_finding11_item_attributes_nested_past_the_cap_are_refused_by_the_library() -> None:
    assert Item("ok", "Ok", attributes=_nested_value(MAX_JSON_DEPTH)).attributes
    with pytest.raises(InvalidInputError, match=f"deeper than {MAX_JSON_DEPTH}") as info:
        Item("deep", "Deep", attributes=_nested_value(MAX_JSON_DEPTH + 1))
    assert info.value.field == "attributes"
    with pytest.raises(InvalidInputError, match="deeper than"):
        Item.from_dict({"item_id": "deep", "title": "Deep", "attributes": _nested_value(990)})


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 990, 5000])
def test_finding11_deeply_nested_bodies_are_422_naming_the_field(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, depth: int
) -> None:
    item = _item(small_world)
    # Past orjson's 1024 levels nothing is parsed, so only the body can be named.
    parsed = depth <= 1024
    with make_client(small_engine, tmp_path) as c:
        put = c.put("/items", content='{"items": [{"item_id": "f11-deep", "title": "Deep", "attributes": '
                    + _nested(depth) + "}]}", headers={"content-type": "application/json"})
        assert_error(put, 422, "invalid_input", "items[0].attributes" if parsed else "body", "deeper than")
        one = c.post("/events", content='{"user_id": "f11", "type": "rate", "item_id": "' + item
                     + '", "value": ' + _nested(depth) + "}", headers={"content-type": "application/json"})
        assert_error(one, 422, "invalid_input", "value" if parsed else "body", "deeper than")
        many = c.post("/events", content='{"events": [{"user_id": "f11", "type": "view", "item_id": "' + item
                      + '", "session_id": ' + _nested(depth) + "}]}", headers={"content-type": "application/json"})
        assert_error(many, 422, "invalid_input", "events[0].session_id" if parsed else "body", "deeper than")
        feedback = c.post("/feedback", content='{"request_id": "r", "type": "click", "item_ids": '
                          + _nested(depth) + "}", headers={"content-type": "application/json"})
        assert feedback.status_code == 422, feedback.text
        assert feedback.json()["error"]["code"] == "invalid_input"
    assert "f11-deep" not in small_engine.items


def test_finding11_attributes_at_the_cap_are_stored(small_engine: Engine, tmp_path: Path) -> None:
    with make_client(small_engine, tmp_path) as c:
        put = c.put("/items", content='{"items": [{"item_id": "f11-ok", "title": "Nested but fine", "attributes": '
                    + _nested(MAX_JSON_DEPTH) + "}]}", headers={"content-type": "application/json"})
    assert put.status_code == 200, put.text
    assert small_engine.items.find("f11-ok") is not None


# ---------------------------------------------------------------- 11: the pseudonym oracle


def test_finding11_errors_name_the_raw_user_id_never_its_pseudonym(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path
) -> None:
    pseudonym = Pseudonymizer(SECRET).user_id("f11-nobody@example.com")
    with make_client(small_engine, tmp_path, user_id_secret=SECRET) as c:
        unknown = c.get("/users/f11-nobody@example.com/interests")
        assert_error(unknown, 404, "not_found", "user_id", "'f11-nobody@example.com'")
        assert pseudonym not in unknown.text and "p_" not in unknown.text
        bad_k = c.get("/users/f11-nobody@example.com/interests", params={"k": 0})
        assert bad_k.status_code == 422 and "p_" not in bad_k.text
        erased = c.delete("/users/f11-nobody@example.com")
        assert erased.json()["user_id"] == "f11-nobody@example.com" and "p_" not in erased.text
        recs = c.get("/users/f11-nobody@example.com/recommendations")
        assert recs.status_code == 200 and "p_" not in recs.text


# ---------------------------------------------------------------- 11: storage failures and URLs


def test_finding11_a_storage_failure_answers_503_without_the_stores_path(
    small_world: DemoWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secret-place" / "shop.db"
    with Engine.open(f"sqlite:///{path}") as engine:
        engine.ingest_items(small_world.items[:3])
        item = small_world.items[0].item_id
        refuse = sqlite3.connect(path)
        refuse.execute("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        refuse.commit()
        refuse.close()
        with make_client(engine, tmp_path) as c, caplog.at_level(logging.WARNING, logger="liverec.service"):
            failed = c.post("/events", json={"user_id": "f11-u", "type": "view", "item_id": item})
    assert_error(failed, 503, "storage_unavailable", None, "server log")
    assert str(tmp_path) not in failed.text and "secret-place" not in failed.text
    assert str(path) in caplog.text  # the operator still learns where


@pytest.mark.parametrize("url", ["mysql://ann:hunter2hunter2@db.example:5432/shop",
                                 "redis://:hunter2hunter2@cache/0", "sqlite://ann:hunter2hunter2@x"])
def test_finding11_a_store_url_is_never_echoed_with_its_password(url: str) -> None:
    for call in (open_store, locate):
        with pytest.raises(InvalidInputError) as info:
            call(url)
        assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value.value)
        assert "***@" in str(info.value)

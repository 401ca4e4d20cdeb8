"""Property-based fuzzing of the service against its own OpenAPI schema (schemathesis).

Every operation gets generated requests, valid and invalid, and every answer must pass all of
schemathesis's checks: no 500, only declared status codes, bodies and headers matching the
declared schemas, invalid input refused and valid input accepted, and auth enforced. The app
runs over an engine of this module's own (training and erasure mutate it) with one admin key,
so every route also really demands a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema_rs
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import AcceptedNegativeData, Failure

from liverec.datasets.demo import DemoWorld, build_demo_world
from liverec.engine import Engine
from liverec.service.app import create_app
from liverec.service.schemas import NOT_BLANK
from liverec.service.settings import ServiceSettings
from tests.service._api import assert_error, trained_engine
from tests.service.conftest import LOCAL, create_key

MAX_EXAMPLES = 25
# Upserted items are encoded by the real text model: a batch at the schema's bound (max_batch, which
# the coverage phase sends) must stay cheap.
MAX_BATCH = 50


def _settings(keys_file: str | None = None, feedback_file: str | None = None) -> ServiceSettings:
    return ServiceSettings(store="memory://", max_batch=MAX_BATCH, keys_file=keys_file, feedback_file=feedback_file)


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(seed=5, n_items=42, n_users=8)


@pytest.fixture(scope="module")
def fuzz_engine(world: DemoWorld) -> Iterator[Engine]:
    engine = trained_engine(world)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def admin_token(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    keys = tmp_path_factory.mktemp("fuzz") / "keys.db"
    token = create_key(keys, "fuzz", ["admin"])
    return token, keys


class _Forward:
    """The ASGI app the schema sends to: it forwards to the module's app once a fixture has built it.

    The schema must exist when the module is collected, the engine only once a test runs
    (schemathesis's lazy ``from_fixture`` does not run on pytest 9.2).
    """

    target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


_app = _Forward()
schema = schemathesis.openapi.from_dict(create_app(_settings()).openapi())
schema.app = _app


@schema.hook
def filter_failure(context: Any, failure: Failure, case: schemathesis.Case, response: Any) -> bool:
    """Drop one false positive of schemathesis (its issues #3962, #2312): a value generated as a
    non-string for a list-of-strings query parameter (``exclude=true``) reaches the server as the
    text ``"true"``, which the list accepts. A negated ``Authorization`` header beside it does not
    count: the test sends its own valid key in that header, so the negated one never reaches the
    server. Kept: anything else, or any other parameter negated."""
    if not isinstance(failure, AcceptedNegativeData) or case.meta is None:
        return True
    negative = {location for location, info in case.meta.components.items() if info.mode.is_negative}
    if "header" in negative and "x-api-key" not in {name.lower() for name in case.headers or {}}:
        negative.discard("header")  # only Authorization, replaced by the test's own
    if negative != {"query"}:
        return True
    sent = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)
    operation = schema.raw_schema["paths"][case.path][case.method.lower()]
    negated = 0
    for parameter in operation.get("parameters", []):
        name, declared = parameter["name"], parameter["schema"]
        if parameter["in"] != "query" or name not in (case.query or {}):
            continue
        if jsonschema_rs.validator_for(declared).is_valid(case.query[name]):
            continue
        negated += 1
        lists = [s for s in declared.get("anyOf", []) if s.get("type") == "array" and s["items"] == {"type": "string"}]
        if not lists or len(sent.get(name, [])) > lists[0].get("maxItems", len(sent.get(name, []))):
            return True
    return negated == 0


@pytest.fixture(scope="module")
def fuzz_app(fuzz_engine: Engine, admin_token: tuple[str, Path]) -> Iterator[FastAPI]:
    _, keys = admin_token
    _app.target = create_app(_settings(str(keys), str(keys.parent / "feedback.db")), engine=fuzz_engine)
    yield _app.target
    _app.target = None


@schema.parametrize()
# derandomize: every CI run checks the same bounded sample, so a failure reproduces; drop it to explore.
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_every_operation_honours_its_schema(
    case: schemathesis.Case, fuzz_app: FastAPI, admin_token: tuple[str, Path], world: DemoWorld
) -> None:
    if case.meta is not None and case.meta.generation.mode.is_positive:
        _known_ids(case, world)
    token, _ = admin_token
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, base_url=LOCAL)


def _known_ids(case: schemathesis.Case, world: DemoWorld) -> None:
    """Keep valid requests valid in the ways no schema can state, so they reach the success paths.

    An event on an item not in the catalog and an item batch naming one id twice are refused with
    422; generated ids are mapped onto catalog ids, and repeated item ids made distinct (both stay
    schema-valid); event times are moved into the bounds ingest accepts, and a review's rating made
    its value's.
    """
    items = [item.item_id for item in world.items]
    users = sorted({event.user_id for event in world.events})
    label = f"{case.method} {case.path}"
    if label == "POST /events" and isinstance(case.body, dict):
        rows = case.body.get("events", [case.body])
        for row in rows if isinstance(rows, list) else ():
            if isinstance(row, dict) and isinstance(row.get("item_id"), str):
                row["item_id"] = items[len(row["item_id"]) % len(items)]
            if isinstance(row, dict) and row.get("timestamp") is not None:
                # Times are bounded by the wall clock at ingest (a day ahead at most), which no schema states.
                row["timestamp"] = 1_767_225_600.0 + len(str(row["timestamp"]))
            if isinstance(row, dict) and row.get("rating") is not None and row.get("value") is not None:
                row["rating"] = row["value"]  # a review's rating, when value is given too, must equal it
        case.body = case.body  # assigned, so schemathesis re-checks that the case is still valid
    elif label == "PUT /items" and isinstance(case.body, dict) and isinstance(case.body.get("items"), list):
        for n, row in enumerate(case.body["items"]):
            if isinstance(row, dict) and isinstance(row.get("item_id"), str):
                row["item_id"] = f"{n}-{row['item_id'][:200]}"
        case.body = case.body
    elif label == "GET /items/{item_id}/similar":
        case.path_parameters = {**case.path_parameters, "item_id": items[0]}
    elif label == "GET /users/{user_id}/interests":
        case.path_parameters = {**case.path_parameters, "user_id": users[0]}


# ---------------------------------------------------------------- what the fuzzing found, pinned


@pytest.fixture
def client(fuzz_app: FastAPI, admin_token: tuple[str, Path]) -> Iterator[TestClient]:
    token, _ = admin_token
    with TestClient(fuzz_app, headers={"Authorization": f"Bearer {token}"}, base_url=LOCAL) as c:
        yield c


def test_the_app_starts_again_after_a_shutdown(fuzz_app: FastAPI, admin_token: tuple[str, Path]) -> None:
    # Each start registered its gauges again in the app's registry: the second start failed.
    token, _ = admin_token
    for _ in range(2):
        with TestClient(fuzz_app, headers={"Authorization": f"Bearer {token}"}, base_url=LOCAL) as c:
            response = c.get("/metrics")
            assert response.status_code == 200
            assert "liverec_catalog_items" in response.text


def test_405_allows_every_method_of_the_path(client: TestClient) -> None:
    response = client.request("OPTIONS", "/admin/train")
    assert_error(response, 405, "method_not_allowed", None)
    assert response.headers["Allow"] == "GET, POST"  # Starlette named only the first route's POST


def test_a_pydantic_body_that_is_not_text_is_422(client: TestClient) -> None:
    response = client.post("/feedback", content=b"\xff", headers={"Content-Type": "application/json"})
    assert_error(response, 422, "invalid_input", "body", "not valid JSON")  # was an undeclared 400


def test_an_oversized_chunked_pydantic_body_is_413(
    fuzz_engine: Engine, admin_token: tuple[str, Path], tmp_path: Path
) -> None:
    token, keys = admin_token
    settings = ServiceSettings(store="memory://", keys_file=str(keys), feedback_file=str(tmp_path / "fb.db"),
                               max_body_bytes=1000)

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit applies as the body streams in
        yield b'{"request_id": "' + b"x" * 2000 + b'", "type": "impression"}'

    with TestClient(create_app(settings, engine=fuzz_engine), headers={"Authorization": f"Bearer {token}"},
                    base_url=LOCAL) as c:
        response = c.post("/feedback", content=chunked(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "too_large", "body", "exceeds 1000 bytes")  # was a 400 "error parsing the body"


@pytest.mark.parametrize(("body", "field"), [
    ({"user_id": 42, "type": "view", "item_id": "i00001"}, "user_id"),
    ({"events": [{"user_id": "u1", "type": "view", "item_id": "i00001", "session_id": 7}]}, "events[0].session_id"),
])
def test_event_ids_must_be_json_strings(client: TestClient, body: dict[str, Any], field: str) -> None:
    # The engine reads 42 as "42"; with a pseudonym secret that id was then stored unpseudonymised.
    assert_error(client.post("/events", json=body), 422, "invalid_input", field, "must be a string")


def test_item_ids_must_be_json_strings(client: TestClient) -> None:
    response = client.put("/items", json={"items": [{"item_id": 7, "title": "seven"}]})
    assert_error(response, 422, "invalid_input", "items[0].item_id", "must be a string, got 7")


def test_the_schema_bounds_batches_by_the_configured_max_batch(client: TestClient) -> None:
    components = client.get("/openapi.json").json()["components"]["schemas"]
    assert components["EventBatch"]["properties"]["events"]["maxItems"] == MAX_BATCH
    assert components["ItemBatch"]["properties"]["items"]["maxItems"] == MAX_BATCH
    rows = [{"user_id": "u1", "type": "view", "item_id": "i00001"}] * (MAX_BATCH + 1)
    assert_error(client.post("/events", json={"events": rows}), 422, "invalid_input", "events", f"at most {MAX_BATCH}")


def test_not_blank_in_the_schema_is_not_blank_to_str_strip() -> None:
    # The schema said \S, which lets "\x1e" through although the engine strips it to nothing.
    pattern = re.compile(NOT_BLANK)
    assert [c for c in map(chr, range(0x10000)) if bool(pattern.search(c)) == c.isspace()] == []

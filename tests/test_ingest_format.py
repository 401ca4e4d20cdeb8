"""The ingest formats (issue 13): docs/ingest.md and the README against the code.

Every example record in docs/ingest.md and the README, and every item and event of the demo
world, is valid against the JSON Schemas; the schemas refuse what the validators refuse; the
docs' files ingest through the CLI, their library block runs and their curl commands are
answered 200; the CLI prints the schemas the API serves. Then what the reference promises: a
review's ``rating``, unknown fields refused with a hint, CSV cells, times without an offset in
UTC, time bounds checked before a file's first row is stored, and 415 for a body not declared
JSON on every POST.

Schemas are checked with ``jsonschema_rs`` (installed with schemathesis, as tests/service/test_fuzz.py
uses it); the ``jsonschema`` package is not installed.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from liverec.cli import app as cli
from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, Item, parse_timestamp
from liverec.datasets.demo import DemoWorld
from liverec.datasets.files import read_records
from liverec.engine import Engine
from liverec.service.app import create_app
from liverec.service.formats import KINDS, ingest_schema
from liverec.service.settings import ServiceSettings
from tests.service._api import assert_error
from tests.service.conftest import LOCAL

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "ingest.md"
README = ROOT / "README.md"
BUILD = {"items": Item.from_dict, "events": Event.from_dict}
runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(cli, list(args))


def validator(kind: str) -> Any:
    return jsonschema_rs.validator_for(ingest_schema(kind))


def blocks(path: Path) -> list[tuple[str, str]]:
    """The fenced blocks of a markdown file: (info string, body)."""
    return re.findall(r"^```([^\n]*)\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


def file_examples(path: Path, tmp: Path) -> Iterator[tuple[str, str, Path]]:
    """(format, kind, file) for each ```jsonl KIND / ```csv KIND block, written out as a file."""
    for n, (info, body) in enumerate(blocks(path)):
        fmt, _, kind = info.partition(" ")
        if fmt in ("jsonl", "csv") and kind in KINDS:
            out = tmp / f"{n:02d}-{kind}.{fmt}"
            out.write_text(body, encoding="utf-8")
            yield fmt, kind, out


def library_examples(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, record) for each literal given to ``ingest_items``/``ingest_events`` in a python block."""
    for info, body in blocks(path):
        if info.strip() != "python":
            continue
        for node in ast.walk(ast.parse(body)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                kind = {"ingest_items": "items", "ingest_events": "events"}.get(node.func.attr)
                if kind is not None:
                    for record in ast.literal_eval(node.args[0]):
                        yield kind, record


def curl_commands(path: Path) -> Iterator[tuple[str, str, dict[str, str], Any]]:
    """(method, path, headers, JSON body) of every ``curl … -d '…'`` in a bash block."""
    for info, body in blocks(path):
        if info.strip() != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if not line.strip().startswith("curl") or " -d " not in line:
                continue
            words = shlex.split(line, comments=True)
            method, headers, data, url = "GET", {}, None, ""
            for flag, value in zip(words, [*words[1:], ""], strict=True):
                if flag == "-X":
                    method = value
                elif flag == "-H":
                    name, _, header = value.partition(":")
                    headers[name.strip()] = header.strip()
                elif flag == "-d":
                    data = json.loads(value)
                elif flag.startswith("localhost"):
                    url = flag.partition("/")[2]
            yield method, "/" + url, headers, data


def rows_of(path: str, body: Any) -> tuple[str, list[dict[str, Any]]]:
    kind = path.strip("/")
    return kind, body[kind] if kind in body else [body]


# ---------------------------------------------------------------- the examples against the schemas


def assert_valid(kind: str, record: dict[str, Any]) -> None:
    errors = [e.message for e in validator(kind).iter_errors(record)]
    assert not errors, (record, errors)
    BUILD[kind](record)  # and the validator the engine runs takes it


def test_the_file_examples_of_the_reference_are_valid(tmp_path: Path) -> None:
    seen = {(fmt, kind): 0 for fmt in ("jsonl", "csv") for kind in KINDS}
    for fmt, kind, path in file_examples(DOCS, tmp_path):
        for _, record in read_records(path):  # CSV cells read as the CLI reads them
            assert_valid(kind, record)
            seen[fmt, kind] += 1
    assert seen == {("jsonl", "items"): 3, ("jsonl", "events"): 7, ("csv", "items"): 2, ("csv", "events"): 4}


@pytest.mark.parametrize("doc", [DOCS, README], ids=["ingest.md", "README"])
def test_the_library_and_http_examples_are_valid(doc: Path) -> None:
    records = list(library_examples(doc))
    for method, path, headers, body in curl_commands(doc):
        assert headers.get("Content-Type") == "application/json", f"{method} {path}: the service would answer 415"
        kind, rows = rows_of(path, body)
        records += [(kind, row) for row in rows]
    assert {kind for kind, _ in records} == set(KINDS) and len(records) >= 3, records
    for kind, record in records:
        assert_valid(kind, record)


def test_the_demo_world_is_valid(world: DemoWorld) -> None:
    for kind, records in (("items", world.items), ("events", world.events)):
        check = validator(kind)
        bad = [r.to_dict() for r in records if not check.is_valid(r.to_dict())]
        assert not bad, bad[:3]


@pytest.mark.parametrize(("kind", "record"), [
    ("events", {"user_id": "u1", "type": "view", "itemid": "i1"}),
    ("events", {"user_id": "u1", "type": "rate", "item_id": "i1", "rating": 4}),
    ("events", {"user_id": "u1", "type": "view", "item_id": "i1", "rating": None}),
    ("events", {"user_id": "u1", "type": "review", "item_id": "i1", "text": "Good", "rating": 6}),
    ("events", {"user_id": "u1", "type": "review", "item_id": "i1"}),
    ("events", {"user_id": "u1", "type": "search", "item_id": "i1", "text": "tent"}),
    ("events", {"user_id": "u1", "type": "rate", "item_id": "i1"}),
    ("events", {"user_id": "u1", "type": "clik", "item_id": "i1"}),
    ("events", {"user_id": "u" * 257, "type": "view", "item_id": "i1"}),
    ("events", {"user_id": " ", "type": "view", "item_id": "i1"}),
    ("events", {"user_id": "u1", "type": "view", "item_id": "i1", "timestamp": -1}),
    ("items", {"item_id": "i1", "title": "Tent", "category": "hiking"}),
    ("items", {"item_id": "i1", "title": "Tent", "language": "fr"}),
    ("items", {"item_id": "i1", "title": "x" * 1001}),
    ("items", {"item_id": "i1"}),
    ("items", {"item_id": "i1", "title": "Tent", "available": "yes"}),
])
def test_the_schemas_refuse_what_the_validators_refuse(kind: str, record: dict[str, Any]) -> None:
    assert not validator(kind).is_valid(record)
    with pytest.raises(InvalidInputError):
        BUILD[kind](record)


# ---------------------------------------------------------------- one schema, printed and served


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    """The service over an empty in-memory engine (no keys)."""
    with TestClient(create_app(ServiceSettings(store="memory://")), base_url=LOCAL) as client:
        yield client


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_cli_prints_the_schema_the_api_serves(api: TestClient, kind: str) -> None:
    result = run("ingest", "--schema", kind)
    assert result.exit_code == 0, result.output
    served = api.get(f"/schemas/{kind}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/schema+json"
    assert json.loads(result.stdout) == served.json() == ingest_schema(kind)
    assert served.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema_rs.meta.validate(served.json())  # a valid draft 2020-12 schema itself
    # The OpenAPI component of the same model: the same rules, with refs into the OpenAPI document.
    component = api.get("/openapi.json").json()["components"]["schemas"]["ItemIn" if kind == "items" else "EventIn"]
    component = json.loads(json.dumps(component).replace("#/components/schemas/", "#/$defs/"))
    for part in ("properties", "required", "allOf", "additionalProperties"):
        assert component.get(part) == served.json().get(part), part


def test_an_unknown_schema_is_exit_2_or_422(api: TestClient) -> None:
    result = run("ingest", "--schema", "widgets")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "error: schema 'widgets' is not one of items, events\n"
    assert_error(api.get("/schemas/widgets"), 422, "invalid_input", "kind", "'items' or 'events'")


def test_ingest_without_a_file_says_what_to_give() -> None:
    result = run("ingest")
    assert result.exit_code == 2
    assert result.stderr == "error: give a file to ingest (or --schema items|events)\n"


# ---------------------------------------------------------------- the reference's examples, run


def test_the_reference_files_ingest_through_the_cli(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/shop.db"
    files = sorted(file_examples(DOCS, tmp_path), key=lambda example: example[1] != "items")  # items first
    for _, kind, path in files:
        result = run("ingest", str(path), "--kind", kind, "--store", store)
        assert result.exit_code == 0, result.output
    with Engine.open(store) as engine:
        assert engine.store.events.count() == 7 + 4
        laptop, tent = engine.items.find("laptop-14"), engine.items.find("tent-2p")
        assert laptop is not None and not laptop.available  # "no" in the CSV, false in JSON Lines
        assert tent is not None and tent.categories == ("hiking", "camping")  # the CSV's "hiking|camping"
        [review] = [e for e in engine.store.events.by_user("u7") if e.type.value == "review"]
        assert review.value == 5.0  # given as rating


def test_the_reference_library_block_runs(tmp_path: Path) -> None:
    [code] = [body for info, body in blocks(DOCS) if info.strip() == "python"]
    code = code.replace("sqlite:///shop.db", f"sqlite:///{tmp_path}/lib.db")
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # the doc's own example, as a reader would run it
    engine = namespace["engine"]
    try:
        review = [e for e in engine.store.events.by_user("u42") if e.type.value == "review"]
        assert [e.value for e in review] == [4.0]
        assert engine.items.find("laptop-14").language == "zh"
    finally:
        engine.close()


def test_the_reference_curl_commands_are_answered_200(tmp_path: Path) -> None:
    with Engine.open("memory://") as engine, TestClient(create_app(ServiceSettings(store="memory://"),
                                                                    engine=engine), base_url=LOCAL) as client:
        commands = list(curl_commands(DOCS))
        assert [(m, p) for m, p, _, _ in commands] == [("PUT", "/items"), ("POST", "/events"), ("POST", "/events")]
        for method, path, headers, body in commands:
            response = client.request(method, path, headers=headers, content=json.dumps(body))
            assert response.status_code == 200, response.text
        [review] = [e for e in engine.store.events.by_user("u42") if e.type.value == "review"]
        assert review.value == 5.0


# ---------------------------------------------------------------- a review's rating


REVIEW = {"user_id": "u1", "type": "review", "item_id": "i1", "text": "Light and solid", "timestamp": 1_767_225_600}


def test_rating_is_a_reviews_value() -> None:
    aliased = Event.from_dict({**REVIEW, "rating": 4})
    assert aliased == Event.from_dict({**REVIEW, "value": 4})  # the same event, the same default id
    assert aliased.value == 4.0
    assert Event.from_dict({**REVIEW, "rating": 4, "value": 4.0}).value == 4.0  # both, equal: fine
    assert Event.from_dict({**REVIEW, "rating": None}).value is None


@pytest.mark.parametrize(("extra", "field", "message"), [
    ({"rating": 4, "value": 5}, "rating", "rating 4 and value 5 differ; a review's rating is its value, give it once"),
    ({"rating": 7}, "rating", "rating 7 is out of range; expected 1 to 5"),
    ({"rating": "5"}, "rating", "rating must be a number, got '5'"),
    ({"rating": 3, "value": "x"}, "value", "value must be a number, got 'x'"),
])
def test_a_bad_rating_is_named(extra: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        Event.from_dict({**REVIEW, **extra})
    assert (str(err.value), err.value.field) == (message, field)


@pytest.mark.parametrize("type_", ["rate", "view", "purchase"])
def test_rating_on_another_type_is_refused_with_a_hint(type_: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        Event.from_dict({"user_id": "u1", "type": type_, "item_id": "i1", "rating": 4})
    assert err.value.field == "rating"
    assert "a rate event's rating goes in value" in str(err.value)


def test_rating_in_a_csv_column(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,type,item_id,text,rating,timestamp\n"
                    "u1,view,i1,,,1767225600\n"
                    'u1,review,i1,"Light, solid",4,1767225660\n', encoding="utf-8")
    events = [Event.from_dict(record) for _, record in read_records(path)]
    assert [(e.type.value, e.value) for e in events] == [("view", None), ("review", 4.0)]


def test_rating_over_http_and_the_cli(api: TestClient, tmp_path: Path) -> None:
    assert api.put("/items", json={"items": [{"item_id": "i1", "title": "Ultralight tent"}]}).status_code == 200
    ok = api.post("/events", json={**REVIEW, "event_id": "r-1", "rating": 5})
    assert ok.status_code == 200, ok.text
    assert_error(api.post("/events", json={"events": [{**REVIEW, "rating": 4, "value": 5}]}), 422, "invalid_input",
                 "events[0].rating", "rating 4 and value 5 differ")
    assert_error(api.post("/events", json={"user_id": "u1", "type": "rate", "item_id": "i1", "rating": 4}), 422,
                 "invalid_input", "rating", "a rate event's rating goes in value")
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({**REVIEW, "rating": 4, "value": 5}) + "\n", encoding="utf-8")
    result = run("ingest", str(path), "--store", f"sqlite:///{tmp_path}/never.db")
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}:1: rating 4 and value 5 differ; a review's rating is its value, give it " \
                            "once\n"


# ---------------------------------------------------------------- unknown fields: refused, with a hint


@pytest.mark.parametrize(("kind", "record", "hint"), [
    ("events", {"user_id": "u1", "type": "view", "itemid": "i1"}, "itemid (did you mean item_id?)"),
    ("events", {"user_id": "u1", "type": "view", "item_id": "i1", "Timestamp": 1.0}, "did you mean timestamp?"),
    ("events", {"user_id": "u1", "type": "search", "query": "tent"}, "query (a search's query goes in text)"),
    ("events", {"user_id": "u1", "type": "view", "item_id": "i1", "foo": 1}, "an event's fields are event_id, "),
    ("items", {"item_id": "i1", "title": "Tent", "category": "hiking"}, "category (did you mean categories?)"),
    ("items", {"item_id": "i1", "title": "Tent", "price": 249}, "other facts go in attributes"),
])
def test_an_unknown_field_is_refused_with_a_hint(kind: str, record: dict[str, Any], hint: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        BUILD[kind](record)
    assert hint in str(err.value)
    fields = (Item if kind == "items" else Event).__dataclass_fields__
    assert [err.value.field] == [name for name in record if name not in fields]


# ---------------------------------------------------------------- CSV cells and times


def test_csv_cells_are_read_as_the_reference_says(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,categories,tags,available,attributes,created_at,description\n"
                    '007,Tent,hiking | camping,light,YES,"{""price"": 249.0}",2026-01-05T09:00:00Z,\n',
                    encoding="utf-8")
    [(_, record)] = list(read_records(path))
    item = Item.from_dict(record)
    assert (item.item_id, item.categories, item.tags, item.available) == ("007", ("hiking", "camping"), ("light",),
                                                                          True)
    assert item.attributes == {"price": 249.0}
    assert item.created_at == 1_767_603_600.0
    assert item.description == ""  # an empty cell is an absent field


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone 8 hours east of UTC, so local and UTC readings differ."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", "2026-01-01", "2026-01-01T08:00:00+08:00",
                                   "2026-01-01T00:00:00Z", "1767225600", 1767225600, datetime(2026, 1, 1)])
def test_every_time_form_of_the_reference(value: Any) -> None:
    assert time.localtime(0).tm_gmtoff == 8 * 3600  # the fixture took effect
    assert parse_timestamp(value) == 1_767_225_600.0  # no offset: UTC, not the server's local time


def test_a_file_is_refused_whole_for_a_time_out_of_bounds(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/shop.db"
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"item_id": "i1", "title": "Tent"}) + "\n", encoding="utf-8")
    assert run("ingest", str(items), "--kind", "items", "--store", store).exit_code == 0
    rows = [{"user_id": f"u{n}", "type": "view", "item_id": "i1", "timestamp": 1_767_225_600 + n} for n in range(5001)]
    rows[-1]["timestamp"] = 1_767_225_600_000  # milliseconds, in the second chunk of 5,000
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = run("ingest", str(events), "--store", store)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {events}:5001: timestamp 1767225600000.0")
    assert "is it in milliseconds? send seconds" in result.stderr
    with Engine.open(store) as engine:
        assert engine.store.events.count() == 0  # the first chunk was not stored either


# ---------------------------------------------------------------- HTTP bodies must be declared JSON


@pytest.mark.parametrize(("method", "path"), [("POST", "/events"), ("POST", "/feedback"), ("PUT", "/items")])
@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
def test_every_body_needs_the_json_content_type(api: TestClient, method: str, path: str,
                                                content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.request(method, path, content=b'{"user_id": "u1"}', headers=headers)
    assert_error(response, 415, "unsupported_media_type", "content-type",
                 "the body must be JSON (Content-Type: application/json), got "
                 f"{content_type or 'no content type'!r}")

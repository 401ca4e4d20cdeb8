"""The stage in the service: a hung or babbling backend never slows recommendations, answers get
template texts, and /metrics counts every fallback; the CLI's --summary and --llm."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liverec.cli import app as cli
from liverec.core.types import Event, EventType
from liverec.datasets.demo import REFERENCE_TIME, build_demo_world
from liverec.engine import Engine
from liverec.service.app import create_app
from liverec.service.settings import ServiceSettings
from tests._worlds import world_engine

LOCAL = "http://localhost"


def client(engine: Engine, tmp: Path, generation: dict[str, object]) -> TestClient:
    settings = ServiceSettings(store="memory://", keys_file=str(tmp / "keys.db"), feedback_file=str(tmp / "fb.db"),
                               generation=generation)
    return TestClient(create_app(settings, engine=engine), base_url=LOCAL)


def counted(c: TestClient, use: str, outcome: str) -> float:
    text = c.get("/metrics").text
    found = re.search(rf'liverec_generation_total\{{outcome="{outcome}",use="{use}"\}} ([0-9.e+]+)', text) or \
        re.search(rf'liverec_generation_total\{{use="{use}",outcome="{outcome}"\}} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def shopper(small_engine: Engine, request: pytest.FixtureRequest) -> str:
    uid = f"svc-{request.node.name}"[:60]
    small_engine.ingest_events([Event.create(uid, EventType.SEARCH, text="camera lens"),
                                *[Event.create(uid, EventType.VIEW, i) for i in small_engine.items.ids()[:3]]])
    return uid


def test_a_hung_backend_costs_recommendations_nothing_beyond_the_budget(
        small_engine: Engine, tmp_path: Path, hanging_server: str, shopper: str) -> None:
    pytest.importorskip("openai", reason="needs the llm extra")
    with client(small_engine, tmp_path, {"llm": hanging_server, "model": "any", "timeout": 0.5,
                                         "breaker_failures": 3}) as c:
        started = time.monotonic()
        r = c.get(f"/users/{shopper}/recommendations", params={"k": 5, "explain_budget_ms": 200})
        took = time.monotonic() - started
        assert r.status_code == 200, r.text
        assert took < 1.0  # the budget, not the backend's 0.5 s timeout times three
        items = r.json()["items"]
        explained = [i for i in items if "explanation" in i]
        assert len(explained) == 3
        assert all(i["explanation"]["source"] == "template" and i["explanation"]["text"] == i["reasons"][0]["text"]
                   for i in explained)
        # The calls time out in the background; three failures open the breaker.
        deadline = time.monotonic() + 10
        while counted(c, "explain", "timeout") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counted(c, "explain", "timeout") == 3, c.get("/metrics").text[-3000:]
        assert counted(c, "explain", "template") >= 3
        stats = c.get("/healthz").json()
        assert stats["status"] == "ok"
        # Open: the next request's texts are templates at once, and the backend is not called.
        small_engine.ingest_events([Event.create(shopper, EventType.VIEW, small_engine.items.ids()[5])])
        started = time.monotonic()
        r = c.get(f"/users/{shopper}/recommendations", params={"k": 5, "explain_budget_ms": 300})
        assert r.status_code == 200 and time.monotonic() - started < 1.0
        deadline = time.monotonic() + 5
        while counted(c, "explain", "breaker_open") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counted(c, "explain", "breaker_open") >= 1
        summary = c.get(f"/users/{shopper}/interests", params={"summary": "true"}).json()["summary"]
        assert summary["source"] == "template" and summary["prompt"] == "summary/v1"


def test_a_babbling_model_behind_the_openai_api_is_refused_and_counted(
        small_engine: Engine, tmp_path: Path, llama_server: str, shopper: str) -> None:
    with client(small_engine, tmp_path, {"llm": llama_server, "max_tokens": 24, "breaker_failures": 100}) as c:
        r = c.get(f"/users/{shopper}/recommendations", params={"k": 3, "explain_budget_ms": 5000})
        assert r.status_code == 200
        assert all(i["explanation"]["source"] == "template" for i in r.json()["items"])
        assert counted(c, "explain", "rejected") == 3, c.get("/metrics").text[-2500:]
        item = small_engine.items.ids()[7]
        detail = c.get(f"/items/{item}", params={"for_user": shopper}).json()
        assert detail["copy_for_user"]["source"] == "template"


def test_without_a_model_the_api_is_as_before_and_summaries_are_templates(
        small_engine: Engine, tmp_path: Path, shopper: str) -> None:
    with client(small_engine, tmp_path, {}) as c:
        r = c.get(f"/users/{shopper}/recommendations", params={"k": 3})
        assert all("explanation" not in i for i in r.json()["items"])
        r = c.get(f"/users/{shopper}/recommendations", params={"k": 3, "explain_budget_ms": 300})
        assert all(i["explanation"]["source"] == "template" for i in r.json()["items"])
        body = c.get(f"/users/{shopper}/interests", params={"summary": "true"}).json()
        assert body["summary"]["source"] == "template" and body["summary"]["text"]
        assert "summary" not in c.get(f"/users/{shopper}/interests").json()
        assert c.get(f"/users/{shopper}/recommendations", params={"explain_budget_ms": -1}).status_code == 422


def test_bad_generation_settings_stop_the_start(tmp_path: Path) -> None:
    from liverec.core.errors import InvalidInputError

    for bad in ({"timeout": 0}, {"explain_budget_ms": "fast"}, {"llm": ""}, {"temprature": 0.1}):
        with pytest.raises(InvalidInputError, match="generation|timeout|explain_budget_ms|llm|temprature"):
            ServiceSettings(store="memory://", generation=bad)


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    """A small demo store on disk, as the CLI opens one, and one of its users."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    world = build_demo_world(seed=3, n_items=40, n_users=4, now=REFERENCE_TIME)
    world_engine(world, url=url).close()
    return url, world.events[0].user_id


def test_the_cli_summary_and_its_errors(store: tuple[str, str], tmp_path: Path, tiny_gguf: Path,
                                        llama_cpp: object) -> None:
    url, user = store
    runner = CliRunner()
    plain = runner.invoke(cli, ["interests", user, "--store", url, "--summary", "--json"])
    assert plain.exit_code == 0, plain.output
    assert '"source": "template"' in plain.output
    with_model = runner.invoke(cli, ["interests", user, "--store", url, "--summary", "--llm", str(tiny_gguf)])
    assert with_model.exit_code == 0, with_model.output
    assert "template" in with_model.output  # the random model's babble was refused
    missing = runner.invoke(cli, ["interests", user, "--store", url, "--summary", "--llm", str(tmp_path / "no.gguf")])
    assert missing.exit_code == 2 and "no model file" in missing.output

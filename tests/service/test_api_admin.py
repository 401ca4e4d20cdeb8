"""Feedback, the A/B experiment's figures, background training, health, metrics, and the error
shape of routes and methods that do not exist."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from liverec.experiments import Experiment, wilson_interval
from tests.service._api import as_json, assert_error, wait_until
from tests.service.conftest import make_client


def _serve(client: TestClient, user: str, k: int = 5) -> dict[str, Any]:
    response = client.get(f"/users/{user}/recommendations", params={"k": k})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _feedback(client: TestClient, request_id: str, kind: str, item_ids: list[str] | None = None) -> Any:
    body: dict[str, Any] = {"request_id": request_id, "type": kind}
    if item_ids is not None:
        body["item_ids"] = item_ids
    return client.post("/feedback", json=body)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# ---------------------------------------------------------------- feedback


def test_impressions_and_clicks_are_counted_once(client: TestClient, world: DemoWorld) -> None:
    served = _serve(client, world.users[10].user_id, k=5)
    rid, items = served["request_id"], [i["item_id"] for i in served["items"]]
    shown = _feedback(client, rid, "impression")
    assert shown.status_code == 200
    assert shown.json() == {"request_id": rid, "variant": "default", "impressions_counted": 5, "clicks_counted": 0}
    click = _feedback(client, rid, "click", [items[2]])
    assert click.json() == {"request_id": rid, "variant": "default", "impressions_counted": 0, "clicks_counted": 1}
    for retry in (_feedback(client, rid, "click", [items[2]]), _feedback(client, rid, "impression")):
        assert retry.status_code == 200
        assert (retry.json()["impressions_counted"], retry.json()["clicks_counted"]) == (0, 0)


def test_a_click_alone_counts_its_impression(client: TestClient, world: DemoWorld) -> None:
    served = _serve(client, world.users[11].user_id, k=5)
    items = [i["item_id"] for i in served["items"]]
    answer = _feedback(client, served["request_id"], "click", [items[0], items[4], items[0]]).json()
    assert (answer["impressions_counted"], answer["clicks_counted"]) == (2, 2)


def test_an_item_reported_shown_three_times_without_a_click_drops_from_the_next_list(
    client: TestClient, world: DemoWorld, engine: Engine
) -> None:
    user = world.users[12].user_id
    first = _serve(client, user, k=10)
    top = first["items"][0]["item_id"]
    for n in range(3):
        served = first if n == 0 else _serve(client, user, k=10)
        assert top in [i["item_id"] for i in served["items"]]
        rid = served["request_id"]
        assert _feedback(client, rid, "impression").status_code == 200
        assert _feedback(client, rid, "impression").status_code == 200  # a retry counts nothing twice
    after = [i["item_id"] for i in _serve(client, user, k=10)["items"]]
    assert top not in after[:3]
    assert engine.state(user).shown[top] == 3


def test_feedback_on_an_unknown_request_is_404(client: TestClient) -> None:
    assert_error(_feedback(client, "no-such-request", "impression"), 404, "not_found", "request_id",
                 "'no-such-request'")


def test_a_click_on_an_item_not_served_is_422_and_counts_nothing(client: TestClient, world: DemoWorld) -> None:
    served = _serve(client, world.users[12].user_id, k=5)
    rid, first = served["request_id"], served["items"][0]["item_id"]
    unserved = next(i.item_id for i in world.items if i.item_id not in {x["item_id"] for x in served["items"]})
    assert_error(_feedback(client, rid, "click", [first, unserved]), 422, "invalid_input", "item_ids", unserved)
    assert _feedback(client, rid, "click", [first]).json()["clicks_counted"] == 1  # nothing was counted before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"request_id": "r", "type": "view"}, "type"),
        ({"type": "click", "item_ids": ["a"]}, "request_id"),
        ({"request_id": "r", "type": "click", "colour": 1}, "colour"),
        ({"request_id": "r", "type": "click", "item_ids": "i00001"}, "item_ids"),
    ],
)
def test_bad_feedback_is_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    assert_error(client.post("/feedback", json=body), 422, "invalid_input", field)


def test_a_click_must_name_its_items(client: TestClient, world: DemoWorld) -> None:
    rid = _serve(client, world.users[13].user_id)["request_id"]
    assert_error(_feedback(client, rid, "click"), 422, "invalid_input", "item_ids", "must name")


def test_feedback_that_is_not_json_is_422_naming_the_body(client: TestClient) -> None:
    response = client.post("/feedback", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(response, 422, "invalid_input", "body", "JSON")


# ---------------------------------------------------------------- experiments

VARIANTS: list[dict[str, Any]] = [{"name": "control"}, {"name": "diverse", "diversity": 0.9}]


def test_two_variants_split_users_and_report_ctr_with_wilson_intervals(
    engine: Engine, world: DemoWorld, tmp_path: Path
) -> None:
    expected = Experiment.from_config(VARIANTS, salt="liverec")
    users = [u.user_id for u in world.users[:30]]
    counts = {"control": [0, 0, 0], "diverse": [0, 0, 0]}  # requests, impressions, clicks
    with make_client(engine, tmp_path, variants=VARIANTS) as c:
        for n, user in enumerate(users):
            served = _serve(c, user, k=4)
            variant = expected.assign(user).name
            assert served["variant"] == variant
            if variant == "diverse":
                assert [i["item_id"] for i in served["items"]] == [
                    r.item_id for r in engine.recommend(user, k=4, diversity=0.9)]
            assert _feedback(c, served["request_id"], "impression").json()["variant"] == variant
            clicked = [i["item_id"] for i in served["items"][: n % 3]]
            if clicked:
                _feedback(c, served["request_id"], "click", clicked)
            counts[variant][0] += 1
            counts[variant][1] += 4
            counts[variant][2] += len(clicked)
        response = c.get("/admin/experiments")
        metrics = _samples(c.get("/metrics").text)
    assert min(counts[v][0] for v in counts) >= 5  # both arms got users
    assert response.status_code == 200
    body = response.json()
    assert body["variants"] == [{"name": "control", "share": 0.5, "weights": None, "diversity": None, "scorer": None},
                                {"name": "diverse", "share": 0.5, "weights": None, "diversity": 0.9, "scorer": None}]
    results = {r["name"]: r for r in body["results"]}
    assert [r["name"] for r in body["results"]] == ["control", "diverse"]
    for name, (requests, impressions, clicks) in counts.items():
        r = results[name]
        low, high = wilson_interval(clicks, impressions)
        assert (r["requests"], r["impressions"], r["clicks"]) == (requests, impressions, clicks)
        assert r["ctr"] == pytest.approx(clicks / impressions)
        assert (r["ci_low"], r["ci_high"]) == (pytest.approx(low), pytest.approx(high))
        assert r["ci_low"] < r["ctr"] < r["ci_high"]
        assert metrics[("liverec_variant_ctr", (("variant", name),))] == pytest.approx(clicks / impressions)
        assert metrics[("liverec_variant_ctr_ci_low", (("variant", name),))] == pytest.approx(low)
        assert metrics[("liverec_variant_impressions", (("variant", name),))] == impressions
    assert results["control"]["control"] is True and results["control"]["lift"] is None
    assert results["diverse"]["lift"] == pytest.approx(results["diverse"]["ctr"] - results["control"]["ctr"])
    assert 0.0 <= results["diverse"]["p_value"] <= 1.0


def test_experiments_before_any_traffic_list_the_control(engine: Engine, tmp_path: Path) -> None:
    with make_client(engine, tmp_path, variants=VARIANTS) as c:
        body = c.get("/admin/experiments").json()
    assert [r["name"] for r in body["results"]] == ["control"]
    assert body["results"][0] | {"ci_low": 0.0, "ci_high": 1.0} == body["results"][0]
    assert (body["results"][0]["requests"], body["results"][0]["impressions"]) == (0, 0)


# ---------------------------------------------------------------- training


def test_training_runs_in_the_background_while_requests_are_served(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert small_engine.snapshot is not None
    old = small_engine.snapshot.version
    new = f"v{int(old[1:]) + 1:04d}"
    real_train, release = small_engine.train, threading.Event()

    def held_train(*args: Any, **kwargs: Any) -> Any:  # the real training, started when the test says
        assert release.wait(30)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(small_engine, "train", held_train)
    users = [u.user_id for u in small_world.users[:5]]
    with make_client(small_engine, tmp_path) as c:
        assert_error(c.get("/admin/train"), 404, "not_found", "job_id", "no training has run")
        started = c.post("/admin/train")
        assert started.status_code == 202
        job = started.json()
        assert len(job["job_id"]) == 12
        assert job | {"status": "running", "trigger": "api", "finished": None, "model_version": None,
                      "seconds": None, "error": None} == job
        assert_error(c.post("/admin/train"), 409, "conflict", None, job["job_id"], "already running")
        assert c.get("/admin/train").json() == job
        answers = [c.get(f"/users/{u}/recommendations") for u in users]
        assert [a.status_code for a in answers] == [200] * len(users)
        assert {a.json()["model_version"] for a in answers} == {old}

        release.set()
        during: list[int] = []

        def finished() -> bool:
            during.extend(c.get(f"/users/{u}/recommendations").status_code for u in users[:2])
            return bool(c.get("/admin/train").json()["status"] != "running")

        wait_until(finished, timeout=60)
        done = c.get("/admin/train").json()
        assert set(during) == {200}
        assert (done["job_id"], done["status"], done["model_version"], done["error"]) == (
            job["job_id"], "succeeded", new, None)
        assert done["finished"] >= done["started"] and done["seconds"] >= 0
        assert c.get(f"/users/{users[0]}/recommendations").json()["model_version"] == new
        assert c.get("/healthz").json()["model_version"] == new
        metrics = _samples(c.get("/metrics").text)
    assert metrics[("liverec_model_version", ())] == int(new[1:])
    assert metrics[("liverec_model_info", (("version", new),))] == 1
    assert metrics[("liverec_train_runs_total", (("status", "succeeded"),))] == 1


def test_a_failed_training_is_reported_on_the_job(tmp_path: Path) -> None:
    with Engine.open("memory://") as empty, make_client(empty, tmp_path) as c:
        job = c.post("/admin/train").json()
        wait_until(lambda: c.get("/admin/train").json()["status"] != "running")
        done = c.get("/admin/train").json()
        metrics = _samples(c.get("/metrics").text)
    assert (done["job_id"], done["status"], done["model_version"]) == (job["job_id"], "failed", None)
    assert "no events to train on" in done["error"]
    assert metrics[("liverec_train_runs_total", (("status", "failed"),))] == 1
    assert metrics[("liverec_model_version", ())] == 0


def test_a_store_in_files_trains_in_a_child_process_and_the_service_adopts_its_snapshot(
    small_world: DemoWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [u.user_id for u in small_world.users[:3]]
    with Engine.open(f"sqlite:///{tmp_path / 'files.db'}") as eng:
        eng.ingest_items(small_world.items)
        eng.ingest_events(small_world.events)

        def not_here(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("trained in the serving process")

        monkeypatch.setattr(eng, "train", not_here)
        with make_client(eng, tmp_path) as c:
            assert c.app.state.services.trainer.in_child  # type: ignore[attr-defined]
            before = {u: _serve(c, u)["model_version"] for u in users}
            job = c.post("/admin/train").json()
            during: list[int] = []

            def finished() -> bool:
                during.extend(c.get(f"/users/{u}/recommendations").status_code for u in users)
                return bool(c.get("/admin/train").json()["status"] != "running")

            wait_until(finished, timeout=180)
            done = c.get("/admin/train").json()
            after = {u: _serve(c, u)["model_version"] for u in users}
    assert set(before.values()) == {None}
    assert set(during) == {200}
    assert (done["job_id"], done["status"], done["error"]) == (job["job_id"], "succeeded", None)
    assert set(after.values()) == {done["model_version"]} and done["model_version"] is not None
    assert eng.snapshot is not None and eng.snapshot.version == done["model_version"]
    assert eng.snapshot.scorer.describe()["validation"]  # the child tuned the scorer on validation, as train() does


def test_a_failure_in_the_training_process_is_reported_on_the_job(tmp_path: Path) -> None:
    with Engine.open(f"sqlite:///{tmp_path / 'empty.db'}") as empty, make_client(empty, tmp_path) as c:
        c.post("/admin/train")
        wait_until(lambda: c.get("/admin/train").json()["status"] != "running", timeout=120)
        done = c.get("/admin/train").json()
    assert done["status"] == "failed" and "no events to train on" in done["error"]
    assert empty.snapshot is None


# ---------------------------------------------------------------- health, metrics, unknown routes


def test_healthz_reports_what_is_loaded(client: TestClient, engine: Engine) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "model_version", "items", "live_users", "warm", "uptime_seconds"}
    assert body["status"] == "ok"
    assert body["model_version"] == engine.snapshot.version  # type: ignore[union-attr]
    assert body["items"] == len(engine.items)
    assert body["live_users"] == len(engine.states)
    assert body["uptime_seconds"] >= 0
    assert isinstance(body["warm"], bool)


def test_healthz_says_warm_once_the_start_up_rebuild_is_done(engine: Engine, tmp_path: Path) -> None:
    with make_client(engine, tmp_path) as c:
        wait_until(lambda: c.get("/healthz").json()["warm"], timeout=60)
        assert c.get("/healthz").json()["live_users"] == len(engine.states) > 0


def test_metrics_expose_latency_ingest_state_and_model(engine: Engine, world: DemoWorld, tmp_path: Path) -> None:
    history = world.new_user_history("api-ad-metrics", "running", 5)
    with make_client(engine, tmp_path) as c:
        for _ in range(2):  # the retry is received again but not ingested again
            assert c.post("/events", json={"events": as_json(history)}).status_code == 200
        _serve(c, "api-ad-metrics", k=3)
        rid = _serve(c, "api-ad-metrics", k=3)["request_id"]
        _feedback(c, rid, "impression")
        c.get("/users/api-ad-metrics/recommendations", params={"k": 0})
        assert c.get("/ui/app.css").status_code == 200 and c.get("/no/such/path").status_code == 404
        response = c.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'liverec_request_seconds_bucket{le="+Inf",method="GET",route="/users/{user_id}/recommendations",' \
           'status="200"} 2.0' in text
    samples = _samples(text)
    route = (("method", "GET"), ("route", "/users/{user_id}/recommendations"))
    assert samples[("liverec_request_seconds_count", (*route, ("status", "200")))] == 2
    assert samples[("liverec_request_seconds_count", (*route, ("status", "422")))] == 1
    # a file of the page is counted under its mount, not lost among unknown paths
    for template, status in (("/ui/{path}", "200"), ("unmatched", "404")):
        assert samples[("liverec_request_seconds_count", (("method", "GET"), ("route", template), ("status", status)))]
    events_route = (("method", "POST"), ("route", "/events"), ("status", "200"))
    assert samples[("liverec_request_seconds_count", events_route)] == 2
    assert samples[("liverec_events_received_total", ())] == 10
    # the history once, and the three items the impression reported as shown (logged as impression events)
    assert samples[("liverec_events_ingested_total", ())] == 5 + 3
    assert samples[("liverec_user_states", ())] == len(engine.states)
    assert samples[("liverec_catalog_items", ())] == len(engine.items)
    assert samples[("liverec_model_version", ())] == int(engine.snapshot.version[1:])  # type: ignore[union-attr]
    assert samples[("liverec_recommendations_total", (("variant", "default"),))] == 2
    assert samples[("liverec_variant_impressions", (("variant", "default"),))] == 3
    assert samples[("liverec_variant_ctr", (("variant", "default"),))] == 0.0
    assert samples[("liverec_commit_queue_events", ())] == 0


def test_an_unknown_route_is_404_in_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/no/such/route"), 404, "not_found", None, "no route GET /no/such/route")


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/healthz", "GET"),
    ("POST", "/users/u1/recommendations", "GET"),
    ("GET", "/events", "POST"),
])
def test_a_wrong_method_is_405_in_the_error_shape(client: TestClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path)
    assert_error(response, 405, "method_not_allowed", None, "Method Not Allowed")
    assert response.headers["Allow"] == allow

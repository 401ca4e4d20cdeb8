"""Hardening: event times are bounded at ingest, and an outlier already in the log cannot empty
anyone's list (issue 12, finding 1; issue 13, point 1).

An event dated more than ``timestamp_future_skew`` past the wall clock, or before
``timestamp_floor``, is refused with a 422 naming ``events[n].timestamp``. An event dated
``1e12`` that is already stored (written before the bound existed) and survives a restart and a
retrain leaves new users with full lists and trending's top 10 in its proper order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.settings import Settings
from liverec.core.types import Event, EventType
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from liverec.service.settings import load_settings
from tests.service._api import as_json, assert_error
from tests.service.conftest import make_client

FAR_FUTURE = 1e12  # year 33658: a millisecond timestamp read as seconds
JAN_1_1990 = 631_152_000.0


def _events(world: DemoWorld, user: str, n: int) -> list[dict[str, Any]]:
    """``n`` valid views by ``user``, dated an hour ago and after (as a live client sends them)."""
    now = time.time()
    items = [i.item_id for i in world.items[:n]]
    return [{"event_id": f"{user}-{k}", "user_id": user, "type": "view", "item_id": item,
             "timestamp": now - 3600.0 + k} for k, item in enumerate(items)]


# ---------------------------------------------------------------------------- bounds at ingest


@pytest.mark.parametrize(("timestamp", "words"), [
    (FAR_FUTURE, ("ahead of the clock", "milliseconds")),
    ("1985-06-01T00:00:00Z", ("before", "1990-01-01")),
    (0, ("before", "1990-01-01")),
])
def test_a_batch_with_one_event_out_of_bounds_is_refused_naming_its_timestamp(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path, timestamp: object, words: tuple[str, ...],
) -> None:
    events = _events(small_world, "ts-batch", 5)
    events[3]["timestamp"] = timestamp
    before = small_engine.store.events.count()
    with make_client(small_engine, tmp_path) as client:
        response = client.post("/events", json={"events": events})
    assert_error(response, 422, "invalid_input", "events[3].timestamp", "events[3]", *words)
    assert small_engine.store.events.count() == before  # one bad event stores nothing


def test_a_single_event_out_of_bounds_is_refused_naming_timestamp(
    small_engine: Engine, small_world: DemoWorld, tmp_path: Path,
) -> None:
    [event] = _events(small_world, "ts-single", 1)
    with make_client(small_engine, tmp_path) as client:
        response = client.post("/events", json={**event, "timestamp": time.time() + 2 * 86400.0})
        assert_error(response, 422, "invalid_input", "timestamp", "ahead of the clock")
        ok = client.post("/events", json={**event, "timestamp": time.time() + 3600.0})  # within a day: a skewed clock
        assert ok.status_code == 200, ok.text


def test_the_library_applies_the_same_bounds_and_they_are_settings(small_world: DemoWorld) -> None:
    items = small_world.items[:2]
    now = time.time()
    with Engine.open("memory://") as eng:
        eng.ingest_items(items)
        assert (eng.settings.timestamp_floor, eng.settings.timestamp_future_skew) == (JAN_1_1990, 86400.0)
        for bad in (Event.create("u1", "view", items[0].item_id, timestamp=FAR_FUTURE),
                    {"user_id": "u1", "type": "view", "item_id": items[0].item_id, "timestamp": 12.0}):
            with pytest.raises(InvalidInputError) as info:
                eng.ingest_events([bad])
            assert info.value.field == "timestamp"
        assert eng.store.events.count() == 0
        eng.ingest_events([Event.create("u1", "view", items[0].item_id)])  # now: fine
    with Engine.open("memory://", timestamp_future_skew=60.0, timestamp_floor="2020-01-01T00:00:00Z") as eng:
        eng.ingest_items(items)
        with pytest.raises(InvalidInputError, match="ahead of the clock") as info:
            eng.ingest_events([Event.create("u1", "view", items[0].item_id, timestamp=now + 600.0)])
        with pytest.raises(InvalidInputError, match="2020-01-01") as info:
            eng.ingest_events([Event.create("u1", "view", items[0].item_id, timestamp="2019-12-31T00:00:00Z")])
        assert info.value.field == "timestamp"
    with Engine.open("memory://", timestamp_future_skew=math.inf, timestamp_floor=0) as eng:  # bounds off
        eng.ingest_items(items)
        assert eng.ingest_events([Event.create("u1", "view", items[0].item_id, timestamp=5.0)]).stored == 1


@pytest.mark.parametrize(("values", "field"), [
    ({"timestamp_future_skew": -1.0}, "timestamp_future_skew"),
    ({"timestamp_future_skew": "a day"}, "timestamp_future_skew"),
    ({"timestamp_floor": -5.0}, "timestamp_floor"),
    ({"timestamp_floor": "the nineties"}, "timestamp_floor"),
])
def test_bad_bound_settings_are_refused_by_name(values: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Settings.from_mapping(values)
    assert info.value.field == field


def test_the_bounds_come_from_the_engine_table(tmp_path: Path) -> None:
    path = tmp_path / "liverec.toml"
    path.write_text('[engine]\ntimestamp_future_skew = 300.0\ntimestamp_floor = "2000-01-01T00:00:00Z"\n')
    engine = load_settings(path, env={}).engine_settings
    assert (engine.timestamp_future_skew, engine.timestamp_floor) == (300.0, 946_684_800.0)


# ---------------------------------------------------------------------------- an outlier already stored


@pytest.fixture(scope="module")
def poisoned(small_world: DemoWorld,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, list[str], str]]:
    """A SQLite store of the small world trained once clean (trending's top 10 kept), then given one
    view dated 1e12 written straight into the store (as before the bound existed), reopened (a
    restart) and retrained."""
    url = f"sqlite:///{tmp_path_factory.mktemp('poisoned') / 'store.db'}"
    with Engine.open(url) as eng:
        eng.ingest_items(small_world.items)
        eng.ingest_events(small_world.events)
        eng.train()
        clean = eng.snapshot.models["trending"].recommend_ranked(10)[0]  # type: ignore[union-attr]
        eng.store.events.append([Event("poison", "u0001", EventType.VIEW, clean[-1], timestamp=FAR_FUTURE)])
    eng = Engine.open(url)
    eng.train()
    yield eng, clean, url
    eng.close()


def test_a_stored_far_future_event_does_not_empty_new_users_lists_after_restart_and_retrain(
    poisoned: tuple[Engine, list[str], str], tmp_path: Path,
) -> None:
    eng, _, _ = poisoned
    assert len(eng.recommend("nobody", k=10)) == 10
    with make_client(eng, tmp_path) as client:
        response = client.get("/users/nobody-either/recommendations", params={"k": 10})
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 10


def test_a_stored_far_future_event_counts_as_one_view_now_in_trending(
    poisoned: tuple[Engine, list[str], str],
) -> None:
    eng, clean, _ = poisoned
    trending = eng.snapshot.models["trending"]  # type: ignore[union-attr]
    assert trending.now_ <= time.time()
    top, _ = trending.recommend_ranked(10)
    # The outlier's item is first (one view made now outweighs a log months old) and the rest keep
    # their order: the outlier did not decay them to nothing.
    assert top == [clean[-1], *clean[:-1]]
    assert float(trending.score_of([clean[-1]])[0]) <= 2.0  # its old views decayed, plus one view now


def test_events_after_the_outlier_still_move_trending_live_and_after_a_restart(
    poisoned: tuple[Engine, list[str], str], small_world: DemoWorld,
) -> None:
    eng, _, url = poisoned
    item = small_world.items[-1].item_id
    trending = eng.snapshot.models["trending"]  # type: ignore[union-attr]
    before = float(trending.score_of([item])[0])
    eng.ingest_events(as_json([Event.create(f"late-{n}", "purchase", item) for n in range(3)]))
    assert float(trending.score_of([item])[0]) > before + 10.0  # three purchases made now, in full
    with Engine.open(url) as restarted:  # the snapshot from disk, then the events logged since its training
        again = restarted.snapshot.models["trending"]  # type: ignore[union-attr]
        assert float(again.score_of([item])[0]) > before + 10.0


def test_a_user_with_no_events_gets_k_items_whatever_the_scorer(small_engine: Engine, tmp_path: Path) -> None:
    variants = [{"name": "only-content", "weights": {"content": 1.0}}]
    with make_client(small_engine, tmp_path, variants=variants) as client:
        for user in ("cold-1", "cold-2", "cold-3"):
            response = client.get(f"/users/{user}/recommendations", params={"k": 10})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["variant"] == "only-content"
            assert len(body["items"]) == 10
            assert all(item["reasons"] for item in body["items"])

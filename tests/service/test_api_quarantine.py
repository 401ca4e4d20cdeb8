"""The quarantine over HTTP: list, quarantine, release; the cleaning counters in /metrics."""

from __future__ import annotations

from pathlib import Path

from liverec.core.types import Event, EventType
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from tests.service._api import assert_error
from tests.service.conftest import make_client


def test_admin_reviews_and_releases_the_quarantine(small_engine: Engine, small_world: DemoWorld,
                                                   tmp_path: Path) -> None:
    item = small_world.items[0].item_id
    start = max(e.timestamp for e in small_world.events) + 60.0
    bot = [Event(f"http-bot-{k}", "http-bot", EventType.CLICK, item, timestamp=start + k * 0.1) for k in range(200)]
    with make_client(small_engine, tmp_path) as c:
        for first in range(0, len(bot), 100):
            sent = c.post("/events", json={"events": [e.to_dict() for e in bot[first : first + 100]]})
            assert sent.status_code < 300, sent.text
        listed = c.get("/admin/quarantine", params={"kind": "user"}).json()
        [entry] = [q for q in listed if q["key"] == "http-bot"]
        assert entry["reason"].startswith(("burst", "repeats")), entry
        metrics = c.get("/metrics").text
        assert 'liverec_cleaning_events_total{rule="robotic"} 1.0' in metrics
        assert 'liverec_quarantined{kind="user"}' in metrics
        held = c.get("/users/http-bot/interests")  # stored, none learned: a 404 that says why
        assert held.status_code == 404 and "quarantined" in held.json()["error"]["message"]

        assert c.post("/admin/quarantine/users/http-bot/release").json()["key"] == "http-bot"
        gone = c.post("/admin/quarantine/users/http-bot/release")
        assert gone.status_code == 404 and "not quarantined" in gone.json()["error"]["message"]
        made = c.post("/admin/quarantine/users/http-bot", json={"reason": "seen scraping"})
        assert made.status_code == 201 and made.json()["reason"] == "seen scraping"
        assert_error(c.post("/admin/quarantine/users/http-bot"), 409, "conflict", "user_id", "already")
        assert c.post("/admin/quarantine/users/x", json={"reason": ""}).status_code == 422
        assert c.get("/admin/quarantine", params={"kind": "robot"}).status_code == 422

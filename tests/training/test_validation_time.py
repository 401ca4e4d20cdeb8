"""Validation computes a held-out user's features at the time they would have asked (their held-out
event's), as a request computes its own at its time: with ``now`` 0, every dated item's age read 0
in training and years at serving, and on MovieLens-100k (items dated by release) trees chosen on
that skew cut HR@10 from 0.161 to 0.068 (benchmarks/streaming.py's retrained row)."""

from __future__ import annotations

import pytest

from liverec.core.types import Event, EventType
from liverec.datasets.demo import build_demo_world
from liverec.engine import Engine
from liverec.training import lifecycle
from liverec.training.fit import _target_time


def _event(n: int, item: str, ts: float) -> Event:
    return Event.trusted(f"e{n}", "u", EventType.VIEW, item, None, None, ts, None)


def test_the_target_time_is_the_held_out_events() -> None:
    events = [_event(0, "a", 10.0), _event(1, "b", 20.0), _event(2, "c", 30.0)]
    assert _target_time(events, 1, "b") == 20.0
    assert _target_time(events, 1, "c") == 30.0  # an event logged since the columns were read shifts it by one
    assert _target_time(events, 2, "z") == 20.0  # not found: the last kept event's time
    assert _target_time([], 0, "z") == 0.0
    assert _target_time(events[:1], 3, "z") == 10.0  # the user was erased while training read the log
    assert _target_time([], 3, "z") == 0.0


def test_validation_features_are_computed_at_each_users_held_out_time(monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_demo_world(seed=5, n_items=120, n_users=30)
    asked: list[float] = []
    original = lifecycle.ModelLifecycle._features_for

    def recording(self, snapshot):  # type: ignore[no-untyped-def]
        features = original(self, snapshot)

        def at(state, now):  # type: ignore[no-untyped-def]
            asked.append(now)
            return features(state, now)

        return at

    monkeypatch.setattr(lifecycle.ModelLifecycle, "_features_for", recording)
    with Engine.open("memory://", interest_similarities=[]) as engine:
        engine.ingest_items(world.items)
        engine.ingest_events(world.events)
        report = engine.train()
    times = sorted(e.timestamp for e in world.events)
    assert report.validation_users > 0 and len(asked) == report.validation_users
    assert all(times[0] < now <= times[-1] for now in asked)  # event times, never 0
    assert len(set(asked)) > 1  # each user's own

"""Validation computes a held-out user's features at the time they would have asked (their held-out
event's), as a request computes its own at its time: with ``now`` 0, every dated item's age read 0
in training and years at serving, and on MovieLens-100k (items dated by release) trees chosen on
that skew cut HR@10 from 0.161 to 0.068 (benchmarks/streaming.py's retrained row)."""

from __future__ import annotations

import pytest

from liverec.datasets.demo import build_demo_world
from liverec.engine import Engine
from liverec.training import lifecycle
from liverec.training.columns import LogColumns


def test_validation_features_are_computed_at_each_users_held_out_time(monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_demo_world(seed=5, n_items=120, n_users=30)
    asked: dict[str, float] = {}
    original = lifecycle.ModelLifecycle._features_for
    targets: dict[str, str] = {}
    holdout = LogColumns.holdout

    def recording_holdout(self, max_users, seed):  # type: ignore[no-untyped-def]
        held = holdout(self, max_users, seed)
        targets.update(held.targets)
        return held

    def recording(self, snapshot):  # type: ignore[no-untyped-def]
        features = original(self, snapshot)

        def at(state, now):  # type: ignore[no-untyped-def]
            asked[state.user_id] = now
            return features(state, now)

        return at

    monkeypatch.setattr(lifecycle.ModelLifecycle, "_features_for", recording)
    monkeypatch.setattr(LogColumns, "holdout", recording_holdout)
    with Engine.open("memory://", interest_similarities=[]) as engine:
        engine.ingest_items(world.items)
        engine.ingest_events(world.events)
        report = engine.train()
    # each user's first event on their held-out item, found in the world itself
    touched: dict[tuple[str, str], float] = {}
    for e in sorted(world.events, key=lambda e: e.timestamp):
        if e.item_id is not None:
            touched.setdefault((e.user_id, e.item_id), e.timestamp)
    assert report.validation_users > 0 and set(asked) == set(targets)
    assert asked == {user: touched[user, item] for user, item in targets.items()}
    assert len(set(asked.values())) > 1  # each user's own

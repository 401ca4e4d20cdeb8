"""Training reads the log as columns (issue 16: training streams the log instead of holding ~360
bytes per event object); what it derives must equal what the event objects gave."""

from __future__ import annotations

import random

import numpy as np
import pytest

from liverec.core.types import DEFAULT_EVENT_WEIGHTS, Event
from liverec.datasets.demo import REFERENCE_TIME, build_demo_world
from liverec.models.base import TrainingData
from liverec.training.columns import MIN_FIRST_TOUCHES, POSITIVE_ITEM_TYPES, LogColumns


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return build_demo_world(seed=4, n_items=300, n_users=60, now=REFERENCE_TIME).events


def _polarities(events: list[Event]) -> dict[str, float]:
    """A stand-in polarity with every review and rating distinct (the real one needs the encoder)."""
    return {e.event_id: ((hash(e.event_id) % 200) - 100) / 100.0 for e in events}


def _holdout_by_objects(events: list[Event], max_users: int, seed: int) -> tuple[list[Event], dict[str, Event]]:
    """The hold-out as training computed it on event objects before the columns (the oracle)."""
    by_user: dict[str, list[int]] = {}
    for idx, e in enumerate(events):
        by_user.setdefault(e.user_id, []).append(idx)
    candidates: dict[str, int] = {}
    for user, idxs in by_user.items():
        seen: set[str] = set()
        first_touch = []
        for i in idxs:
            e = events[i]
            if e.item_id is not None and e.type in POSITIVE_ITEM_TYPES and e.item_id not in seen:
                first_touch.append(i)
            if e.item_id is not None:
                seen.add(e.item_id)
        if len(first_touch) >= MIN_FIRST_TOUCHES:
            candidates[user] = first_touch[-1]
    chosen = set(random.Random(seed).sample(sorted(candidates), min(max_users, len(candidates))))
    cut = {u: candidates[u] for u in chosen}
    train = [e for i, e in enumerate(events) if e.user_id not in cut or i < cut[e.user_id]]
    return train, {u: events[i] for u, i in cut.items()}


def _same(a: TrainingData, b: TrainingData) -> None:
    assert a.item_ids == b.item_ids and a.user_ids == b.user_ids and a.now == b.now
    for name in ("event_user", "event_item", "event_weight", "event_time", "event_type"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
    assert (a.user_items != b.user_items).nnz == 0


def test_training_data_from_columns_equals_it_from_events(events: list[Event]) -> None:
    log = LogColumns.read(iter(events), _polarities)
    item_ids = sorted({e.item_id for e in events if e.item_id})[5:]  # some items left the catalog
    vectors = np.eye(len(item_ids), 8, dtype=np.float32)
    polarity = _polarities([e for e in events if e.type.value in ("review", "rate")])
    _same(log.training_data(item_ids, vectors, DEFAULT_EVENT_WEIGHTS),
          TrainingData.from_events(events, item_ids, vectors, DEFAULT_EVENT_WEIGHTS, polarity=polarity))
    assert len(log) == len(events) and {e.event_id for e in log.texts} == {e.event_id for e in events if e.text}


@pytest.mark.parametrize(("max_users", "seed"), [(10, 0), (25, 3), (1000, 1)])
def test_the_holdout_on_columns_is_the_one_on_event_objects(events: list[Event], max_users: int, seed: int) -> None:
    log = LogColumns.read(iter(events), _polarities)
    held = log.holdout(max_users, seed)
    train, targets = _holdout_by_objects(events, max_users, seed)
    assert held.targets == {u: e.item_id for u, e in targets.items()}
    assert [e.event_id for e, keep in zip(events, held.train, strict=True) if keep] == [e.event_id for e in train]
    for user in targets:
        assert held.kept[user] == sum(e.user_id == user for e in train)
    assert held.times == {u: e.timestamp for u, e in targets.items()}
    item_ids = sorted({e.item_id for e in events if e.item_id})
    vectors = np.eye(len(item_ids), 8, dtype=np.float32)
    polarity = _polarities([e for e in events if e.type.value in ("review", "rate")])
    _same(log.training_data(item_ids, vectors, DEFAULT_EVENT_WEIGHTS, held.train),
          TrainingData.from_events(train, item_ids, vectors, DEFAULT_EVENT_WEIGHTS, polarity=polarity))


def test_an_empty_log_reads_as_no_rows() -> None:
    log = LogColumns.read(iter([]), _polarities)
    assert len(log) == 0 and log.holdout(10, 0).targets == {} and log.latest(1e9, default=5.0) == 5.0

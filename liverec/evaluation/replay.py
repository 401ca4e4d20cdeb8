"""Streaming replay (prequential evaluation): recommend before each event, then apply it.

Events are replayed in time order after a warm-up. Before each replayed event on an item the
user has not had, the user's top ``k`` is asked for and scored against that item; then the
event happens. Two liverec engines replay the same stream with the same training cadence:

* ``realtime`` ingests every event as it happens, so the user's state (short-term interest,
  session, tags, seen items) moves before the next request — the product as built;
* ``frozen`` receives the events only at the next training, so between trainings it serves
  from what it knew at the last one — a batch recommender retrained on a schedule;
* ``frozen+seen`` is the frozen engine asked to leave out the items the user had since its last
  training — the batch recommender with a live seen-items filter, as most are deployed.

``realtime`` against ``frozen+seen`` is the value of real-time interest capture itself (the
profile, session and tags moving at once); ``frozen+seen`` against ``frozen`` is what only the
live seen-filter buys. All are measured on the same events and paired per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.datasets.base import Dataset
from liverec.evaluation.results import ReplayResult
from liverec.evaluation.systems import Liverec, item_events

Progress = Callable[[str, int, int], None]
DAY = 86400.0
MODES = ("realtime", "frozen", "frozen+seen")


def replay(
    ds: Dataset,
    *,
    fraction: float = 0.2,
    cadence: float = 7 * DAY,
    k: int = 10,
    max_events: int | None = None,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[ReplayResult]:
    """Replay the last ``fraction`` of ``ds.events`` through a real-time and a frozen engine.

    Both train on the warm-up first and retrain every ``cadence`` seconds of event time.
    ``max_events`` caps the replayed events (the earliest are kept) to bound the run.
    """
    if not 0 < fraction < 1:
        raise InvalidInputError(f"replay fraction {fraction!r} must be between 0 and 1", field="fraction")
    if cadence <= 0:
        raise InvalidInputError(f"cadence {cadence!r} must be a positive number of seconds", field="cadence")
    events = ds.events
    if not events or events[0].timestamp == events[-1].timestamp:
        raise InvalidInputError(f"{ds.name} has no spread of timestamps: replay needs real times",
                                field="protocol", value="replay")
    cut = int(len(events) * (1 - fraction))
    warm, stream = events[:cut], events[cut:]
    if max_events is not None:
        stream = stream[:max_events]
    step = progress or (lambda _t, _d, _n: None)
    config = config or {}
    engines = {"realtime": Liverec(seed=seed, **config), "frozen": Liverec(seed=seed, **config)}
    started = time.perf_counter()
    for n, engine in enumerate(engines.values()):
        step("replay: warm-up training", n, 2)
        engine.fit(ds.items, warm)
    step("replay: warm-up training", 2, 2)
    had: dict[str, set[str]] = {}
    for e in item_events(warm):
        had.setdefault(e.user_id, set()).add(e.item_id or "")
    rows: dict[str, tuple[list[float], list[float], list[float]]] = {m: ([], [], []) for m in MODES}
    pending: list = []  # events the frozen engine has not been shown yet
    trainings = 0
    next_training = stream[0].timestamp + cadence if stream else 0.0
    since_training: dict[str, set[str]] = {}  # items each user had that the frozen engine was not shown
    trained_users = {e.user_id for e in warm}  # users the frozen engine has been shown at all
    known: list[bool] = []  # per scored event: was its user among them
    for n, e in enumerate(stream):
        if e.timestamp >= next_training:
            trained_users.update(p.user_id for p in pending)
            engines["frozen"].observe(pending)
            pending = []
            since_training = {}
            for engine in engines.values():
                engine.engine.train()
            trainings += 1
            while next_training <= e.timestamp:
                next_training += cadence
        seen = had.setdefault(e.user_id, set())
        if e.item_id is not None and e.item_id not in seen and seen and e.type.value != "search":
            known.append(e.user_id in trained_users)
            asks = (("realtime", engines["realtime"], ()), ("frozen", engines["frozen"], ()),
                    ("frozen+seen", engines["frozen"], since_training.get(e.user_id, ())))
            for mode, engine, exclude in asks:
                top = engine.recommend([e.user_id], k, now={e.user_id: e.timestamp},
                                       exclude={e.user_id: exclude} if exclude else None)[e.user_id]
                rank = top.index(e.item_id) if e.item_id in top else -1
                times, hits, ndcg = rows[mode]
                times.append(e.timestamp)
                hits.append(1.0 if rank >= 0 else 0.0)
                ndcg.append(1.0 / np.log2(rank + 2) if rank >= 0 else 0.0)
        if e.item_id is not None and e.type.value != "search":
            seen.add(e.item_id)
            since_training.setdefault(e.user_id, set()).add(e.item_id)
        engines["realtime"].observe([e])
        pending.append(e)
        if n % 200 == 0 or n == len(stream) - 1:
            step("replay: events", n + 1, len(stream))
    seconds = time.perf_counter() - started
    for engine in engines.values():
        engine.close()
    return [ReplayResult(mode, np.array(rows[mode][0]), np.array(rows[mode][1]), np.array(rows[mode][2]),
                         trainings, seconds, np.array(known, dtype=bool)) for mode in MODES]

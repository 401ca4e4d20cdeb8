"""Engines over a demo world, for tests that need their own (the session's is in conftest.py), and
human-paced timestamps for tests that send many events of one user."""

from __future__ import annotations

import time

import pytest

from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine


def world_engine(world: DemoWorld, *, train: bool = False, url: str = "memory://") -> Engine:
    """An engine on the store at ``url`` holding ``world``'s items and events, trained on them if ``train``."""
    eng = Engine.open(url)
    eng.ingest_items(world.items)
    eng.ingest_events(world.events)
    if train:
        eng.train()
    return eng


def paced(n: int, start: float | None = None) -> list[float]:
    """``n`` timestamps a person could make, ending about now (or from ``start``): gaps of 7 to 29 s,
    uneven, so cleaning's burst, timer and duplicate rules take the events for a human's."""
    gaps = [7.0 + (k * 37) % 23 for k in range(n)]
    first = time.time() - sum(gaps) - 1 if start is None else start
    out, t = [], first
    for gap in gaps:
        t += gap
        out.append(t)
    return out


def assert_trending_takes_the_others_events_once(a: Engine, b: Engine, item: str) -> None:
    """Two engines on one store, serving one snapshot: events ``a`` stores reach ``b``'s trending
    at its sync, once (a second sync reads them again, and ``a``'s own sync reads back its own)."""
    assert b.snapshot is not None and a.snapshot is not None and b.snapshot.version == a.snapshot.version
    trending = b.snapshot.models["trending"]
    before = float(trending.score_of([item])[0])  # type: ignore[attr-defined]
    now = time.time()
    a.ingest_events([{"event_id": f"t{n}", "user_id": f"buyer{n}", "type": "purchase", "item_id": item,
                      "timestamp": now} for n in range(30)])
    assert b.sync().items == 0
    after = float(trending.score_of([item])[0])  # type: ignore[attr-defined]
    assert after > before
    b.sync()  # read again (PostgreSQL's look-back window): folded once only
    assert float(trending.score_of([item])[0]) == pytest.approx(after)  # type: ignore[attr-defined]
    mine = float(a.snapshot.models["trending"].score_of([item])[0])  # type: ignore[attr-defined]
    assert after == pytest.approx(mine, rel=1e-3)  # both engines' trending saw the same events
    a.sync()  # its own events come back in the log: not folded in a second time
    assert float(a.snapshot.models["trending"].score_of([item])[0]) == pytest.approx(mine)  # type: ignore[attr-defined]

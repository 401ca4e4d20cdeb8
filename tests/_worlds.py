"""Engines over a demo world, for tests that need their own (the session's is in conftest.py), and
human-paced timestamps for tests that send many events of one user."""

from __future__ import annotations

import time

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

"""Engines over a demo world, for tests that need their own (the session's is in conftest.py)."""

from __future__ import annotations

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

"""Refitting the language centring at a training's start (issue 16): the new text index is built
without the engine's write lock (at a million items an HNSW build takes minutes, and events must keep
flowing), and an item written meanwhile is not lost from it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from liverec.datasets.demo import DemoWorld, build_demo_world
from liverec.engine import Engine
from tests._hooks import before_first_call, free_on_another_thread
from tests._worlds import world_engine


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(seed=12, n_items=80, n_users=6)


@pytest.fixture
def engine(world: DemoWorld) -> Iterator[Engine]:
    eng = world_engine(world)
    yield eng
    eng.close()


def _during_prepare(engine: Engine, action: Any) -> None:
    """Run ``action`` once, while ``refit_centering`` builds its index from the catalog it read."""
    before_first_call(engine.items, "_prepare", action)


def test_the_index_is_built_without_the_write_lock(engine: Engine) -> None:
    free: list[bool] = []
    _during_prepare(engine, lambda: free.append(free_on_another_thread(engine.items.lock)))
    ids, vectors = engine.items.refit_centering()
    assert free == [True]
    assert len(ids) == len(engine.items) == vectors.shape[0]


def test_an_item_written_while_the_index_is_built_is_in_the_index_served(engine: Engine, world: DemoWorld) -> None:
    extra = {**world.items[0].to_dict(), "item_id": "new-during-refit", "title": "Brand new trail tent"}
    _during_prepare(engine, lambda: engine.ingest_items([extra]))
    ids, vectors = engine.items.refit_centering()
    assert "new-during-refit" in ids and vectors.shape[0] == len(ids)
    assert "new-during-refit" in engine.items.content
    found = [i for i, _ in engine.items.content.search(engine.items.vectors_of(["new-during-refit"])[0], 1)]
    assert found == ["new-during-refit"]

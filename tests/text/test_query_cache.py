"""Query vectors live in a bounded in-memory LRU, never in the store: reads must not grow the disk.

Item and review texts (passages) stay in the durable cache, so retraining never re-encodes them.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from liverec.datasets.demo import build_demo_world  # noqa: E402
from liverec.engine import Engine  # noqa: E402
from liverec.storage import MemoryStore  # noqa: E402
from liverec.testing.encoder_contract import shared_encoder  # noqa: E402
from liverec.text import space as space_module  # noqa: E402
from liverec.text.base import Encoder, TextKind  # noqa: E402
from liverec.text.space import TextSpace  # noqa: E402


def _vector_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        rows = int(conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
    conn.close()
    return rows


def _disk(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())


def test_distinct_searches_write_nothing_to_the_store(tmp_path: Path) -> None:
    world = build_demo_world(seed=3, n_items=40, n_users=5)
    with Engine.open(f"sqlite:///{tmp_path / 'shop.db'}") as engine:
        engine.ingest_items(world.items)
        items = _vector_rows(tmp_path / "shop.db")
        assert items == 40  # item texts are cached durably
        engine.search("warm-up query")
        size = _disk(tmp_path)
        for n in range(60):
            assert engine.search(f"distinct query {n}: trail shoes under {n * 7} dollars", k=3)
        assert _vector_rows(tmp_path / "shop.db") == items
        assert _disk(tmp_path) == size


class CountingEncoder:
    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.calls: list[tuple[list[str], TextKind]] = []

    def encode(self, texts: Sequence[str], *, kind: TextKind = "passage") -> np.ndarray:
        self.calls.append((list(texts), kind))
        return self.inner.encode(texts, kind=kind)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingEncoder:
    encoder = CountingEncoder(shared_encoder("use"))
    monkeypatch.setattr(space_module, "get_encoder", lambda name, threads: encoder)
    return encoder


def test_the_query_cache_is_a_bounded_lru(counting: CountingEncoder) -> None:
    store = MemoryStore()
    space = TextSpace("use", 1, store.vectors, query_cache=2)
    first = space.query_vector("one")
    space.text_vectors(["two"], "query")
    space.query_vector("one")  # "one" is now the most recent
    space.query_vector("three")  # evicts "two"
    counting.calls.clear()
    assert np.array_equal(space.query_vector("one"), first) and counting.calls == []
    space.query_vector("two")
    assert counting.calls == [(["two"], "query")]
    assert store.vectors.get_many(counting.name, [space.encoder.key(t, "query") for t in ("one", "two")]) == {}


def test_passages_are_cached_durably_and_a_batch_reads_the_query_cache(counting: CountingEncoder) -> None:
    store = MemoryStore()
    space = TextSpace("use", 1, store.vectors)
    space.text_vectors(["a long review of a kettle"], "passage")
    assert store.vectors.get_many(counting.name, [space.encoder.key("a long review of a kettle")]).keys() == {
        space.encoder.key("a long review of a kettle")}
    space.query_vector("kettle")
    counting.calls.clear()
    vectors = space.text_vectors(["kettle", "teapot", "kettle"], "query")
    assert counting.calls == [(["teapot"], "query")]
    assert vectors.shape == (3, counting.dim) and np.array_equal(vectors[0], vectors[2])


def test_forgetting_texts_drops_them_from_memory_and_the_store(counting: CountingEncoder) -> None:
    store = MemoryStore()
    space = TextSpace("use", 1, store.vectors)
    space.text_vectors(["my review"], "passage")
    space.query_vector("my search")
    assert space.forget_texts([("my review", "passage"), ("my search", "query")]) == 1
    assert store.vectors.get_many(counting.name, [space.encoder.key("my review")]) == {}
    counting.calls.clear()
    space.query_vector("my search")
    space.text_vectors(["my review"], "passage")
    assert counting.calls == [(["my search"], "query"), (["my review"], "passage")]

"""Maximum inner-product search: the HNSW path against the exact one, and the models that use it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError
from liverec.models import ALSRecommender
from liverec.models.mips import INDEX_FILE, MaxInnerProduct
from tests.models.test_models import make_data


def _table(n: int = 3000, d: int = 32, seed: int = 0) -> np.ndarray:
    """Rows of very different lengths, as ALS factors have (popular items are long): the case where
    a plain L2 or cosine graph answers a different question than the inner product."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, d)).astype(np.float32)
    return rows * rng.lognormal(0.0, 0.6, size=(n, 1)).astype(np.float32)


def test_the_graph_finds_what_the_exact_search_finds_and_scores_exactly() -> None:
    table = _table()
    exact = MaxInnerProduct(table, kind="flat")
    graph = MaxInnerProduct(table, kind="hnsw")
    assert (exact.kind, graph.kind) == ("flat", "hnsw")
    rng = np.random.default_rng(1)
    recalls = []
    for _ in range(30):
        query = rng.standard_normal(32).astype(np.float32)
        want, want_scores = exact.top(query, 100, np.empty(0, dtype=np.int64))
        got, got_scores = graph.top(query, 100, np.empty(0, dtype=np.int64))
        recalls.append(len(set(want.tolist()) & set(got.tolist())) / 100)
        np.testing.assert_allclose(got_scores, table[got] @ query, rtol=1e-5)  # re-scored, not the graph's distance
        assert np.all(np.diff(got_scores) <= 0)  # best first
        assert got[0] == want[0]
    assert np.mean(recalls) >= 0.95


def test_banned_and_unusable_rows_never_come_back_from_either_search() -> None:
    table = _table(n=2000)
    usable = np.ones(2000, dtype=bool)
    usable[::3] = False
    query = table[:50].sum(axis=0)
    banned = np.arange(1, 400, 2, dtype=np.int64)
    for kind in ("flat", "hnsw"):
        rows, scores = MaxInnerProduct(table, usable, kind=kind).top(query, 50, banned)
        assert len(rows) == 50 and len(scores) == 50
        assert usable[rows].all(), kind
        assert not set(rows.tolist()) & set(banned.tolist()), kind
    # Asking for more than qualify returns only what qualifies.
    few = np.zeros(2000, dtype=bool)
    few[[5, 7, 11]] = True
    for kind in ("flat", "hnsw"):
        rows, _ = MaxInnerProduct(table, few, kind=kind).top(query, 10, np.array([7], dtype=np.int64))
        assert sorted(rows.tolist()) == [5, 11], kind


def test_a_saved_graph_loads_for_its_own_table_and_is_refused_for_another(tmp_path: Path) -> None:
    table = _table(n=1500)
    graph = MaxInnerProduct(table, kind="hnsw")
    graph.save(tmp_path / INDEX_FILE)
    again = MaxInnerProduct(table, kind="hnsw", index=tmp_path / INDEX_FILE)
    query = table[3] + table[9]
    none = np.empty(0, dtype=np.int64)
    np.testing.assert_array_equal(graph.top(query, 20, none)[0], again.top(query, 20, none)[0])
    with pytest.raises(InvalidInputError, match="another table"):
        MaxInnerProduct(table[:1000], kind="hnsw", index=tmp_path / INDEX_FILE)
    flat = MaxInnerProduct(table, kind="flat")
    flat.save(tmp_path / "flat.faiss")
    assert not (tmp_path / "flat.faiss").exists()  # an exact search has nothing to keep
    with pytest.raises(InvalidInputError, match="index must be one of"):
        MaxInnerProduct(table, kind="ivf")


def test_als_past_the_flat_bound_recommends_from_a_graph_it_saves_and_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("liverec.models.mips.FLAT_MAX_ITEMS", 50)  # "a large catalog", at test size
    rng = np.random.default_rng(4)
    items = [f"i{j}" for j in range(200)]
    rows: list[tuple[str, str | None, float, float]] = []
    for u in range(150):
        for j in rng.choice(180, size=8, replace=False):  # i180..i199 never trained: never recommended
            rows.append((f"u{u}", items[j], 1.0, float(len(rows))))
    data = make_data(rows, items, now=float(len(rows)))
    model = ALSRecommender(factors=16, iterations=5, seed=1).fit(data)
    assert model.item_search_.kind == "hnsw"
    history = [("i1", 1.0), ("i2", 1.0), ("i3", 1.0)]
    got = model.recommend(history, k=20)
    vector = model.user_vector(history)
    exact = MaxInnerProduct(model.item_factors_, model.item_known_, kind="flat")
    want, _ = exact.top(vector, 20, np.array([1, 2, 3], dtype=np.int64))
    assert len(got) == 20
    assert len({model.item_ids_[i] for i in want.tolist()} & {i for i, _ in got}) >= 18
    assert not {i for i, _ in got} & ({f"i{j}" for j in range(180, 200)} | {"i1", "i2", "i3"})
    model.save(tmp_path)
    assert (tmp_path / INDEX_FILE).exists()
    loaded = ALSRecommender.load(tmp_path)
    assert loaded.item_search_.kind == "hnsw" and loaded.recommend(history, k=20) == got

"""Versioned model snapshots: write, swap CURRENT, load back identical models, prune old versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from liverec.core.errors import NotFoundError, StorageError
from liverec.models import ALSRecommender, CoVisitation, TrendingPopularity
from liverec.models.base import TrainingData
from liverec.ranking.fusion import LinearFusion
from liverec.ranking.snapshot import (
    KEEP_SNAPSHOTS,
    ModelSnapshot,
    current_version,
    load_snapshot,
    write_snapshot,
)
from liverec.testing.model_contract import GROUP_A, GROUP_B, checkerboard_data

HISTORIES: list[list[tuple[str, float]]] = [[("a0", 1.0), ("a1", 1.0)], [("b4", 3.0)], [("a2", 1.0), ("b1", 5.0)]]


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return checkerboard_data()


def make_snapshot(data: TrainingData, factors: int = 4, fusion_weight: float = 1.0) -> ModelSnapshot:
    fusion = LinearFusion()
    fusion.weights_, fusion.validation_ = {"content": fusion_weight, "covisit": 2.0}, {"ndcg@10": 0.5}
    return ModelSnapshot(
        version="",
        models={
            "trending": TrendingPopularity(half_life=3600.0).fit(data),
            "covisit": CoVisitation().fit(data),
            "als": ALSRecommender(factors=factors, iterations=5, seed=1, threads=1).fit(data),
        },
        scorer=fusion,
        catalog_items=frozenset(GROUP_A + GROUP_B),
    )


def outputs(snapshot: ModelSnapshot) -> dict[str, object]:
    """Everything a snapshot's models answer on the checkerboard."""
    models = snapshot.models
    return {
        "trending": models["trending"].recommend([], k=10),
        "covisit": [models["covisit"].recommend(h, k=6) for h in HISTORIES],
        "covisit_similar": [models["covisit"].similar_items(i, k=4) for i in GROUP_A + GROUP_B],
        "als": [models["als"].recommend(h, k=6, exclude={"a3"}) for h in HISTORIES],
        "als_similar": [models["als"].similar_items(i, k=4) for i in GROUP_A + GROUP_B],
        "scorer": snapshot.scorer.describe(),
    }


def test_two_writes_make_the_second_current_and_both_load_identically(tmp_path: Path, data: TrainingData) -> None:
    first = make_snapshot(data, factors=4, fusion_weight=1.0)
    second = make_snapshot(data, factors=6, fusion_weight=0.25)
    expected_first, expected_second = outputs(first), outputs(second)
    assert expected_first["als"] != expected_second["als"]  # so loading the wrong version would show

    written = write_snapshot(tmp_path, first, {"note": "first"})
    assert written is first and first.version == "v0001"
    assert current_version(tmp_path) == "v0001"
    write_snapshot(tmp_path, second, {"note": "second", "events": 43})
    assert second.version == "v0002"
    assert current_version(tmp_path) == "v0002"
    assert (tmp_path / "CURRENT").read_text() == "v0002"
    assert second.manifest["version"] == "v0002"
    assert second.manifest["events"] == 43

    loaded = load_snapshot(tmp_path)
    assert loaded.version == "v0002"
    assert outputs(loaded) == expected_second
    assert loaded.manifest["models"] == {"trending": "TrendingPopularity", "covisit": "CoVisitation",
                                         "als": "ALSRecommender"}
    assert loaded.catalog_items == frozenset(GROUP_A + GROUP_B)
    assert loaded.manifest["note"] == "second"
    assert loaded.manifest["created_at"] == second.manifest["created_at"]
    assert loaded.models["als"].factors == 6  # type: ignore[attr-defined]

    older = load_snapshot(tmp_path, "v0001")
    assert older.version == "v0001"
    assert outputs(older) == expected_first
    assert older.scorer.describe()["weights"] == {"content": 1.0, "covisit": 2.0}
    assert older.manifest["note"] == "first"


def test_only_the_newest_three_are_kept_and_no_tmp_is_left(tmp_path: Path, data: TrainingData) -> None:
    snapshot = make_snapshot(data)
    for n in range(4):
        write_snapshot(tmp_path, snapshot, {"n": n})
    assert KEEP_SNAPSHOTS == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", "v0002", "v0003", "v0004"]
    assert not list(tmp_path.rglob("*.tmp"))
    assert load_snapshot(tmp_path).manifest["n"] == 3
    assert load_snapshot(tmp_path, "v0002").manifest["n"] == 1
    with pytest.raises(NotFoundError, match="model snapshot v0001 is missing under"):
        load_snapshot(tmp_path, "v0001")


def test_version_numbers_continue_after_pruning(tmp_path: Path, data: TrainingData) -> None:
    snapshot = make_snapshot(data)
    for _ in range(5):
        write_snapshot(tmp_path, snapshot, {})
    assert snapshot.version == "v0005"
    assert sorted(p.name for p in tmp_path.glob("v*")) == ["v0003", "v0004", "v0005"]


def test_a_leftover_tmp_dir_from_a_crash_is_replaced(tmp_path: Path, data: TrainingData) -> None:
    crashed = tmp_path / ".v0001.tmp"
    crashed.mkdir()
    (crashed / "half-written").write_text("x")
    write_snapshot(tmp_path, make_snapshot(data), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", "v0001"]
    assert not (tmp_path / "v0001" / "half-written").exists()


def test_load_from_an_empty_or_missing_dir_raises_not_found(tmp_path: Path) -> None:
    assert current_version(tmp_path) is None
    with pytest.raises(NotFoundError, match="no model snapshot under .*; run train first") as info:
        load_snapshot(tmp_path)
    assert info.value.kind == "snapshot"
    with pytest.raises(NotFoundError, match="no model snapshot under"):
        load_snapshot(tmp_path / "never-created")


def test_pruning_is_numeric_past_v9999(tmp_path: Path, data: TrainingData) -> None:
    for name in ("v9998", "v9999"):
        (tmp_path / name).mkdir()
    snapshot = make_snapshot(data)
    write_snapshot(tmp_path, snapshot, {})
    assert snapshot.version == "v10000"
    write_snapshot(tmp_path, snapshot, {})
    assert snapshot.version == "v10001"
    assert sorted(p.name for p in tmp_path.glob("v*")) == ["v10000", "v10001", "v9999"]


def test_a_snapshot_naming_a_model_not_registered_here_is_refused(tmp_path: Path, data: TrainingData) -> None:
    write_snapshot(tmp_path, make_snapshot(data), {})
    manifest = tmp_path / "v0001" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"als": "ALSRecommender"', '"itemknn": "ItemKNN"'))
    with pytest.raises(StorageError, match="v0001 holds model 'itemknn', which is not registered here"):
        load_snapshot(tmp_path)
    manifest.write_text(manifest.read_text().replace('"itemknn": "ItemKNN"', '"als": "OtherALS"'))
    with pytest.raises(StorageError, match="holds 'als' as a OtherALS, but 'als' is registered as ALSRecommender"):
        load_snapshot(tmp_path)


def test_a_snapshot_of_format_1_still_loads(tmp_path: Path, data: TrainingData) -> None:
    """Written before models were registered: one directory per model and fusion.json at the top."""
    snapshot = make_snapshot(data)
    write_snapshot(tmp_path, snapshot, {})
    path = tmp_path / "v0001"
    for name in ("trending", "covisit", "als"):
        (path / "models" / name).rename(path / name)
    (path / "fusion.json").write_text('{"weights": {"content": 1.0, "covisit": 2.0}, "validation": {"ndcg@10": 0.5}}')
    manifest = (path / "manifest.json").read_text().replace('"format": 2', '"format": 1')
    (path / "manifest.json").write_text(manifest)
    assert outputs(load_snapshot(tmp_path)) == outputs(snapshot)

"""The model snapshots' manifests in PostgreSQL: which snapshot is current is a row every worker
reads, each training's manifest stays queryable after its files are pruned, and the row never names
a snapshot whose files are not all written."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from liverec.core.errors import StorageError
from liverec.core.settings import Settings
from liverec.datasets.demo import build_demo_world
from liverec.engine import Engine
from liverec.ranking.snapshot import KEEP_SNAPSHOTS, current_version, kept_versions, read_manifest
from liverec.realtime.store import MemoryStateStore
from liverec.storage import open_store
from liverec.storage.postgres import PostgresStore

pytestmark = pytest.mark.services

WORLD = build_demo_world(seed=4, n_items=40, n_users=8)


def _engine(url: str, **settings: object) -> Engine:
    return Engine(open_store(url), Settings.from_mapping(settings), state_store=MemoryStateStore())


@pytest.fixture
def trained(postgres_url: str) -> Iterator[Engine]:
    engine = _engine(postgres_url)
    engine.ingest_items(WORLD.items)
    engine.ingest_events(WORLD.events)
    engine.train()
    yield engine
    engine.close()


def _sql(store: PostgresStore, statement: str) -> None:
    with store.database.transaction("a test's own change") as conn:
        conn.execute(statement)


def test_a_training_records_its_manifest_and_makes_its_version_current(trained: Engine) -> None:
    index = trained.store.snapshots
    assert index is not None
    version = trained.snapshot.version  # type: ignore[union-attr]
    assert index.current() == version
    recorded = index.manifests()[version]
    on_disk = read_manifest(trained.model_dir, version)
    assert recorded == json.loads(json.dumps(on_disk, default=str))  # the same manifest, figures and all
    assert recorded["report"]["events"] == len(WORLD.events) and "pruned_at" not in recorded


def test_workers_follow_the_database_not_the_directorys_current_file(trained: Engine, postgres_url: str) -> None:
    other = _engine(postgres_url)
    try:
        first = trained.snapshot.version  # type: ignore[union-attr]
        assert other.snapshot is not None and other.snapshot.version == first
        trained.train()
        second = trained.snapshot.version  # type: ignore[union-attr]
        # A shared file system that has not shown the rename yet: the file still names the old version.
        (trained.model_dir / "CURRENT").write_text(first)
        assert current_version(trained.model_dir) == first
        assert other.sync().adopted == second
        assert other.snapshot.version == second  # type: ignore[union-attr]
    finally:
        other.close()


def test_pruned_snapshots_keep_their_record(trained: Engine) -> None:
    versions = [trained.snapshot.version]  # type: ignore[union-attr]
    for _ in range(KEEP_SNAPSHOTS):
        trained.train()
        versions.append(trained.snapshot.version)  # type: ignore[union-attr]
    index = trained.store.snapshots
    assert index is not None
    recorded = index.manifests()
    assert list(recorded) == versions  # oldest first, the pruned one included
    assert kept_versions(trained.model_dir) == versions[1:]
    assert recorded[versions[0]]["pruned_at"] > 0
    assert all("pruned_at" not in recorded[v] for v in versions[1:])
    assert index.current() == versions[-1]


def test_an_erasure_updates_the_recorded_manifests(trained: Engine) -> None:
    index = trained.store.snapshots
    assert index is not None
    version = trained.snapshot.version  # type: ignore[union-attr]
    before = index.manifests()[version]["erasure_epoch"]
    trained.forget_user(WORLD.events[0].user_id)
    after = index.manifests()[version]["erasure_epoch"]
    assert after > before
    assert after == read_manifest(trained.model_dir, version)["erasure_epoch"]


def test_a_training_the_database_refuses_to_publish_leaves_the_old_snapshot_current(trained: Engine) -> None:
    store = trained.store
    assert isinstance(store, PostgresStore) and store.snapshots is not None
    first = trained.snapshot.version  # type: ignore[union-attr]
    _sql(store, "ALTER TABLE snapshots ADD CONSTRAINT only_the_first CHECK (number < 2)")
    with pytest.raises(StorageError):
        trained.train()
    assert store.snapshots.current() == first
    assert current_version(trained.model_dir) == first  # CURRENT moves only after the row does
    assert trained.snapshot.version == first  # type: ignore[union-attr]


def test_a_model_directory_from_before_the_index_is_adopted_as_it_stands(trained: Engine, postgres_url: str) -> None:
    store = trained.store
    assert isinstance(store, PostgresStore) and store.snapshots is not None
    version = trained.snapshot.version  # type: ignore[union-attr]
    _sql(store, "DELETE FROM snapshot_current; DELETE FROM snapshots")
    assert store.snapshots.current() is None
    reopened = _engine(postgres_url)
    try:
        assert reopened.snapshot is not None and reopened.snapshot.version == version
        assert store.snapshots.current() == version
        assert store.snapshots.manifests()[version]["version"] == version
    finally:
        reopened.close()


def test_a_worker_with_another_model_directory_is_told_to_share_one(trained: Engine, postgres_url: str,
                                                                     tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="share one model directory"):
        _engine(postgres_url, model_dir=str(tmp_path / "elsewhere"))


def test_a_manifest_with_figures_json_cannot_hold_is_recorded_with_nulls(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        index = store.snapshots
        assert index is not None
        index.publish("v0001", {"version": "v0001", "created_at": 1.5, "ndcg": math.nan, "path": Path("/x"),
                                "nested": {"inf": math.inf, "ok": [1, 2.5]}})
        assert index.manifests()["v0001"] == {"version": "v0001", "created_at": 1.5, "ndcg": None, "path": "/x",
                                             "nested": {"inf": None, "ok": [1, 2.5]}}
        assert index.adopt("v0007", {}) == "v0001"  # a version is current already: nothing adopted
        assert index.current() == "v0001"
    finally:
        store.close()

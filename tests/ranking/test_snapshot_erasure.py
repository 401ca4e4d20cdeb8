"""Snapshots after an erasure: rewritten in place without the user, crash-safe, one holder at a time."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from liverec.core.types import DEFAULT_EVENT_WEIGHTS
from liverec.models.base import TrainingData
from liverec.ranking.snapshot import (
    ModelSnapshot,
    load_snapshot,
    read_manifest,
    rewrite_snapshot,
    snapshot_lock,
    user_keyed_models,
    write_snapshot,
)
from liverec.storage import MemoryStore
from liverec.testing.model_contract import (
    CHECKERBOARD_NOW,
    GROUP_A,
    GROUP_B,
    checkerboard_events,
    checkerboard_vectors,
)
from liverec.training.erasure import scrub_model_dir, scrub_snapshot
from tests.ranking.test_snapshot import make_snapshot, outputs

USER = "erasable-u2"


@pytest.fixture(scope="module")
def data() -> TrainingData:
    events = [dataclasses.replace(e, user_id=f"erasable-{e.user_id}") for e in checkerboard_events()]
    return TrainingData.from_events(events, list(GROUP_A + GROUP_B), checkerboard_vectors(), DEFAULT_EVENT_WEIGHTS,
                                    now=CHECKERBOARD_NOW)


def _files_holding(root: Path, needle: str) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_a_snapshot_knows_its_users_and_forgets_them_in_every_user_keyed_model(data: TrainingData) -> None:
    snapshot = make_snapshot(data)
    assert USER in snapshot.users()
    assert snapshot.forget_users([USER]) == ["covisit", "als"]
    assert USER not in snapshot.users()
    assert snapshot.forget_users([USER]) == []


def test_rewrite_replaces_only_the_models_named_and_the_manifest(tmp_path: Path, data: TrainingData) -> None:
    written = write_snapshot(tmp_path, make_snapshot(data), {"erasure_epoch": 0})
    before = outputs(written)
    trending = tmp_path / "v0001" / "models" / "trending" / "state.npz"
    inode = trending.stat().st_ino
    assert _files_holding(tmp_path, USER)

    partial = load_snapshot(tmp_path, "v0001", models=user_keyed_models(written.manifest))
    assert set(partial.models) == {"covisit", "als"}
    changed = partial.forget_users([USER])
    partial.manifest["erasure_epoch"] = 7
    rewrite_snapshot(tmp_path, partial, changed)

    assert _files_holding(tmp_path, USER) == []
    assert trending.stat().st_ino == inode  # a model that kept nothing of the user is not rewritten
    loaded = load_snapshot(tmp_path)
    assert loaded.version == "v0001" and loaded.erasure_epoch == 7
    assert USER not in loaded.users()
    assert outputs(loaded) == before  # recommendations come from item-side state, untouched
    assert sorted(p.name for p in (tmp_path / "v0001" / "models").iterdir()) == ["als", "covisit", "trending"]


def _half_swapped(root: Path, data: TrainingData, *, moved_aside: bool) -> None:
    """Leave ``als`` of v0001 as a crash during its rewrite would: the new copy written beside it, and
    (``moved_aside``) the old one already renamed away."""
    snapshot = write_snapshot(root, make_snapshot(data), {})
    snapshot.forget_users([USER])
    models = root / "v0001" / "models"
    snapshot.models["als"].save(models / ".als.new")
    if moved_aside:
        (models / "als").rename(models / ".als.old")


def test_a_crash_between_the_two_renames_is_completed_by_the_next_holder(tmp_path: Path,
                                                                         data: TrainingData) -> None:
    _half_swapped(tmp_path, data, moved_aside=True)
    loaded = load_snapshot(tmp_path)
    assert USER not in loaded.models["als"].known_users()  # type: ignore[attr-defined]
    assert sorted(p.name for p in (tmp_path / "v0001" / "models").iterdir()) == ["als", "covisit", "trending"]


def test_a_crash_before_the_swap_keeps_the_old_model_and_drops_the_new(tmp_path: Path, data: TrainingData) -> None:
    _half_swapped(tmp_path, data, moved_aside=False)
    loaded = load_snapshot(tmp_path)
    assert USER in loaded.models["als"].known_users()  # type: ignore[attr-defined]
    assert sorted(p.name for p in (tmp_path / "v0001" / "models").iterdir()) == ["als", "covisit", "trending"]


def test_scrub_model_dir_rewrites_every_kept_snapshot_older_than_the_stores_epoch(tmp_path: Path,
                                                                                  data: TrainingData) -> None:
    store = MemoryStore()
    events = [dataclasses.replace(e, user_id=f"erasable-{e.user_id}") for e in checkerboard_events()]
    store.events.append(events)
    for _ in range(2):
        write_snapshot(tmp_path, make_snapshot(data), {"erasure_epoch": store.events.erasure_epoch()})
    assert scrub_model_dir(tmp_path, store.events) == []  # nothing erased since they were written
    store.events.delete_user(USER)
    assert len(_files_holding(tmp_path, USER)) == 4  # two snapshots, two user-keyed models each
    assert scrub_model_dir(tmp_path, store.events) == ["v0001", "v0002"]
    assert _files_holding(tmp_path, USER) == []
    assert {read_manifest(tmp_path, v)["erasure_epoch"] for v in ("v0001", "v0002")} == {1}
    assert scrub_model_dir(tmp_path, store.events) == []  # clean now: not loaded again


def test_scrubbing_in_memory_names_the_users_and_models_and_advances_the_epoch(data: TrainingData) -> None:
    store = MemoryStore()
    store.events.append([dataclasses.replace(e, user_id=f"erasable-{e.user_id}") for e in checkerboard_events()])
    snapshot: ModelSnapshot = make_snapshot(data)
    assert scrub_snapshot(snapshot, store.events).advanced is False
    store.events.delete_user(USER)
    store.events.delete_user("erasable-u9")  # only a dismissal and a search: in no model, but a candidate
    scrubbed = scrub_snapshot(snapshot, store.events, candidates=["erasable-u9"])
    assert scrubbed.users == {USER, "erasable-u9"} and set(scrubbed.models) == {"covisit", "als"}
    assert scrubbed.advanced and snapshot.erasure_epoch == 2


def test_the_directory_is_held_against_other_processes(tmp_path: Path) -> None:
    probe = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY)\n"
             "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n")
    with snapshot_lock(tmp_path), snapshot_lock(tmp_path):  # re-entrant in one thread
        held = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], check=False)
    assert held.returncode == 3
    free = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], check=False)
    assert free.returncode == 0


def test_a_half_written_snapshot_of_a_dead_writer_is_removed_by_the_next_holder(tmp_path: Path,
                                                                               data: TrainingData) -> None:
    write_snapshot(tmp_path, make_snapshot(data), {})
    shutil.copytree(tmp_path / "v0001", tmp_path / ".v0002.tmp")  # it holds the user's id
    assert load_snapshot(tmp_path).version == "v0001"
    assert not (tmp_path / ".v0002.tmp").exists()

"""The store, its side files (-wal/-shm included) and the model snapshots are readable by their owner
only (0600, directories 0700), whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from liverec.core.types import Event, EventType
from liverec.ranking.snapshot import write_snapshot
from liverec.storage import SqliteStore
from liverec.testing.model_contract import checkerboard_data
from tests.ranking.test_snapshot import make_snapshot


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """A umask that lets everyone read what is created (the usual 022), so modes come from the code."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in sorted(root.rglob("*"))}


def _not_private(root: Path) -> dict[str, str]:
    return {name: mode for name, mode in _modes(root).items()
            if mode != (oct(0o700) if (root / name).is_dir() else oct(0o600))}


def test_a_store_and_its_side_files_are_created_private(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data" / "shop.db")
    store.events.append([Event("e1", "u1", EventType.VIEW, "i1", timestamp=1.0)])
    feedback = store.feedback_log()
    feedback.record_served("r1", "default", "u1", ["i1"])
    feedback.flush()
    keys = store.key_store()
    keys.create("ops", ["admin"])
    files = {p.name for p in (tmp_path / "data").iterdir()}
    assert {"shop.db", "shop.db-wal", "shop.db-shm", "shop.db.feedback.db", "shop.db.feedback.db-wal",
            "shop.db.keys.db"} <= files
    assert _not_private(tmp_path) == {}  # the directory it created too
    keys.close()
    feedback.close()
    store.close()


def test_an_existing_store_written_world_readable_is_narrowed_when_opened(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "shop.db").close()
    for name in ("shop.db", "shop.db-wal"):
        path = tmp_path / name
        path.touch()
        path.chmod(0o644)
    store = SqliteStore(tmp_path / "shop.db")
    assert _not_private(tmp_path) == {}
    store.close()


def test_an_existing_directory_of_the_operators_is_left_as_it_is(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    SqliteStore(tmp_path / "shop.db").close()
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_snapshots_are_written_private(tmp_path: Path) -> None:
    root = tmp_path / "shop.db.models"
    write_snapshot(root, make_snapshot(checkerboard_data()), {})
    write_snapshot(root, make_snapshot(checkerboard_data()), {})
    assert "CURRENT" in _modes(root) and "v0002/models/als/factors.npz" in _modes(root)
    assert _not_private(root) == {}
    assert stat.S_IMODE(root.stat().st_mode) == 0o700

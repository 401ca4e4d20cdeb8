"""What an erasure leaves in the SQLite files: nothing, once the rows are deleted and the log emptied.

Every connection runs with ``secure_delete``, so deleted rows are zeroed in the pages that held
them, and :meth:`SqliteStore.checkpoint` (the feedback log does it itself) empties the write-ahead
log, whose older frames still hold the rows as they were written.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np

from liverec.core.types import Event, EventType
from liverec.storage import SqliteFeedbackLog, SqliteStore
from liverec.storage.sqlite import SCHEMA_VERSION
from liverec.text.cache import text_key

USER = "erase-me-7f3c9a@example.org"
TEXT = "a one-off review: the brass quokka kettle whistles in B flat"
VECTOR = np.linspace(-1.0, 1.0, 64, dtype=np.float32) + np.float32(0.123)


def _raw(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _holding(directory: Path, needle: bytes) -> list[str]:
    return [name for name, data in _raw(directory).items() if needle in data]


def test_deleted_events_and_vectors_are_in_no_file_after_a_checkpoint(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "shop.db")
    others = [Event(f"o{n}", f"other-{n}", EventType.VIEW, "i1", timestamp=float(n)) for n in range(300)]
    store.events.append(others)
    store.events.append([Event("x1", USER, EventType.REVIEW, "i1", text=TEXT, timestamp=5.0),
                         Event("x2", USER, EventType.SEARCH, None, text=TEXT + " again", timestamp=6.0)])
    key = text_key(TEXT, salt=store.vectors.key_salt)
    store.vectors.put_many("use", {key: VECTOR})
    assert _holding(tmp_path, USER.encode()) and _holding(tmp_path, VECTOR.tobytes()[:32])

    assert store.events.delete_user(USER) == 2
    assert store.vectors.delete([key]) == 1
    store.checkpoint()
    for needle in (USER.encode(), TEXT.encode(), VECTOR.tobytes()[:32], VECTOR.tobytes()[-32:]):
        assert _holding(tmp_path, needle) == [], needle  # while the store is open: the WAL included
    assert store.events.count() == 300  # the others are untouched
    store.close()
    assert _holding(tmp_path, USER.encode()) == []


def test_without_the_checkpoint_the_write_ahead_log_would_keep_the_rows(tmp_path: Path) -> None:
    """Why the checkpoint is needed: zeroing happens in new frames; old frames keep the row."""
    store = SqliteStore(tmp_path / "shop.db")
    store.events.append([Event("x1", USER, EventType.REVIEW, "i1", text=TEXT, timestamp=5.0)])
    store.events.delete_user(USER)
    assert "shop.db-wal" in _holding(tmp_path, TEXT.encode())
    store.checkpoint()
    assert _holding(tmp_path, TEXT.encode()) == []
    store.close()


def test_an_erasure_keeps_a_keyed_digest_never_the_id(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "shop.db")
    store.events.append([Event("x1", USER, EventType.VIEW, "i1", timestamp=5.0)])
    store.events.delete_user(USER)
    store.checkpoint()
    assert store.events.erased_since(0, [USER, "someone-else"]) == {USER}
    store.close()
    assert _holding(tmp_path, USER.encode()) == []
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        (digest,) = conn.execute("SELECT digest FROM erasures").fetchone()
    conn.close()
    assert len(digest) == 16
    assert SqliteStore(tmp_path / "shop.db").events.erased_since(0, [USER]) == {USER}  # the salt is kept


def test_the_feedback_log_leaves_no_trace_of_an_erased_users_lists(tmp_path: Path) -> None:
    log = SqliteFeedbackLog(tmp_path / "shop.db.feedback.db")
    for n in range(50):
        log.record_served(f"r{n}", "default", f"other-{n}", ["i1", "i2"])
    log.record_served("mine", "default", USER, ["i7", "i8"])
    log.record("mine", "click", ["i7"])
    assert _holding(tmp_path, USER.encode())
    assert log.forget_user(USER) == 1
    assert _holding(tmp_path, USER.encode()) == []
    assert _holding(tmp_path, b"mine") == []
    log.close()


def test_a_version_1_store_is_upgraded_and_its_unsalted_vectors_dropped(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:  # as liverec wrote it before: unsalted keys, no salt, no erasures
        conn.execute("DROP TABLE erasures")
        conn.execute("DROP TABLE meta")
        conn.execute("INSERT INTO vectors VALUES ('use-m3', ?, 64, ?)", (text_key(TEXT), VECTOR.tobytes()))
        conn.execute("INSERT INTO events (event_id, user_id, type, item_id, ts) VALUES ('e1', 'u1', 'view', 'i1', 1)")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    store = SqliteStore(path)
    assert store.vectors.get_many("use-m3", [text_key(TEXT)]) == {}
    assert [e.event_id for e in store.events.all()] == ["e1"]
    assert len(store.vectors.key_salt) == 32 and store.events.erasure_epoch() == 0
    store.checkpoint()
    store.close()
    assert _holding(tmp_path, VECTOR.tobytes()[:32]) == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_two_stores_key_one_text_differently(tmp_path: Path) -> None:
    first, second = SqliteStore(tmp_path / "a.db"), SqliteStore(tmp_path / "b.db")
    assert text_key(TEXT, salt=first.vectors.key_salt) != text_key(TEXT, salt=second.vectors.key_salt)
    assert text_key(TEXT, salt=first.vectors.key_salt) != text_key(TEXT)  # a guess cannot be checked unkeyed
    first.close()
    second.close()


def test_a_store_opened_after_a_crash_before_the_checkpoint_checkpoints_at_once(tmp_path: Path) -> None:
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    live.mkdir()
    store = SqliteStore(live / "shop.db")
    store.events.append([Event("x1", USER, EventType.REVIEW, "i1", text=TEXT, timestamp=5.0)])
    store.events.delete_user(USER)  # committed; the process dies before its checkpoint
    shutil.copytree(live, crashed)  # the files as the crash left them
    store.close()
    assert "shop.db-wal" in _holding(crashed, TEXT.encode())
    reopened = SqliteStore(crashed / "shop.db")
    assert _holding(crashed, TEXT.encode()) == []
    reopened.close()

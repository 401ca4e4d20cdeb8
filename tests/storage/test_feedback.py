"""The feedback log contract against memory and SQLite, plus what only the SQLite log promises."""

from __future__ import annotations

import sqlite3
import time
from itertools import count
from pathlib import Path

import pytest

from liverec.core.errors import NotFoundError, StorageError
from liverec.storage import MemoryFeedbackLog, MemoryStore, SqliteFeedbackLog, SqliteStore
from liverec.storage.feedback import DEFAULT_CAPACITY
from liverec.testing.feedback_contract import FeedbackLogContract, FeedbackLogFactory, run_threads, totals


class TestMemoryFeedbackLog(FeedbackLogContract):
    @pytest.fixture
    def make_log(self) -> FeedbackLogFactory:
        return MemoryFeedbackLog


class TestSqliteFeedbackLog(FeedbackLogContract):
    @pytest.fixture
    def make_log(self, tmp_path: Path) -> FeedbackLogFactory:
        files = count()
        return lambda capacity=DEFAULT_CAPACITY: SqliteFeedbackLog(tmp_path / f"log{next(files)}.db", capacity)


# ---------------------------------------------------------------- what only SQLite promises


def test_counts_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "feedback" / "log.db"
    with SqliteFeedbackLog(path) as log:
        log.record_served("r1", "control", "u1", ["a", "b"])
        log.record_served("r2", "mmr", "u2", ["c"])
        log.record("r1", "click", ["a"])
    with SqliteFeedbackLog(path) as log:
        assert totals(log) == {"control": (1, 1, 1), "mmr": (1, 0, 0)}
        assert log.record("r1", "click", ["a"]).clicks == 0  # still idempotent after the restart
        assert log.record("r2", "impression").impressions == 1
    with SqliteFeedbackLog(path, capacity=1) as log:  # reopening with less room evicts at once
        with pytest.raises(NotFoundError):
            log.record("r1", "impression")
        assert totals(log) == {"control": (1, 1, 1), "mmr": (1, 1, 0)}


def test_lists_queued_at_close_are_written_and_survive(tmp_path: Path) -> None:
    threads_n, requests_n = 6, 60
    path = tmp_path / "log.db"
    log = SqliteFeedbackLog(path)
    run_threads(lambda t: [log.serve_later(f"t{t}-r{r}", f"v{t % 2}", f"u{t}", ["a", "b"])
                           for r in range(requests_n)], threads_n)
    log.serve_later("last", "v0", "u9", ["z"])
    log.close()  # writes the queue before closing
    with pytest.raises(StorageError):
        log.serve_later("after", "v0", "u9", ["z"])
    with SqliteFeedbackLog(path) as reopened:
        per_variant = threads_n // 2 * requests_n
        assert totals(reopened) == {"v0": (per_variant + 1, 0, 0), "v1": (per_variant, 0, 0)}
        assert reopened.record("last", "impression").impressions == 1


def test_the_writer_thread_commits_queued_lists_without_a_read(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with SqliteFeedbackLog(path) as log:
        log.serve_later("r1", "control", "u1", ["a"])
        other = sqlite3.connect(path)
        try:
            for _ in range(200):  # the writer commits every 50 ms
                if other.execute("SELECT COUNT(*) FROM served").fetchone()[0] == 1:
                    break
                time.sleep(0.01)
            assert other.execute("SELECT request_id, variant, user_id FROM served").fetchall() == [
                ("r1", "control", "u1")]
        finally:
            other.close()
        assert log.flush() == 0


def test_a_file_that_is_not_a_database_raises_storage_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StorageError, match=f"feedback log {path}"):
        SqliteFeedbackLog(path)


# ---------------------------------------------------------------- where stores keep it


def test_a_sqlite_store_keeps_its_feedback_log_beside_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "shop.db")
    with store.feedback_log() as log:
        assert isinstance(log, SqliteFeedbackLog)
        assert log.path == tmp_path.resolve() / "shop.db.feedback.db"
        log.record_served("r1", "control", "u1", ["a"])
    with store.feedback_log() as again:
        assert totals(again) == {"control": (1, 0, 0)}
    elsewhere = tmp_path / "elsewhere" / "fb.db"
    with store.feedback_log(elsewhere) as log:
        assert (log.path, log.counts()) == (elsewhere, [])
    store.close()


def test_a_memory_store_keeps_its_feedback_log_in_memory_unless_given_a_file(tmp_path: Path) -> None:
    store = MemoryStore()
    with store.feedback_log() as log:
        assert isinstance(log, MemoryFeedbackLog)
    with store.feedback_log(tmp_path / "fb.db") as log:
        assert isinstance(log, SqliteFeedbackLog)
        assert log.path == tmp_path / "fb.db"
    assert (tmp_path / "fb.db").exists()

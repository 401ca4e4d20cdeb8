"""The feedback log contract on PostgreSQL, plus what only a log shared by several workers promises:
lists served through one worker take feedback through another, totals add up across workers,
eviction stays exact under concurrent writers, and the schema is migrated once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from liverec.core.errors import InvalidInputError, NotFoundError, StorageError
from liverec.storage.feedback import DEFAULT_CAPACITY, FeedbackResult
from liverec.storage.postgres import PostgresUrl
from liverec.storage.postgres_feedback import PostgresFeedbackLog
from liverec.testing.feedback_contract import FeedbackLogContract, FeedbackLogFactory, run_threads, totals

pytestmark = pytest.mark.services


class TestPostgresFeedbackLog(FeedbackLogContract):
    @pytest.fixture
    def make_log(self, postgres_url: str) -> FeedbackLogFactory:
        return lambda capacity=DEFAULT_CAPACITY: PostgresFeedbackLog(PostgresUrl(postgres_url), capacity)


def sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``query`` run in the URL's schema on a connection of its own (another process's view);
    the key store's tests use it too."""
    parsed = PostgresUrl(url)
    with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {parsed.schema}")
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _open(url: str, capacity: int = DEFAULT_CAPACITY) -> PostgresFeedbackLog:
    return PostgresFeedbackLog(PostgresUrl(url), capacity)


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ---------------------------------------------------------------- two workers, one database


def test_a_list_served_through_one_worker_takes_feedback_through_another(postgres_url: str) -> None:
    with _open(postgres_url) as a, _open(postgres_url) as b:
        a.record_served("r1", "control", "u1", ["x", "y", "z"])
        assert b.record("r1", "click", ["y"]) == FeedbackResult("r1", "control", 1, 1)
        assert a.record("r1", "click", ["y"]) == FeedbackResult("r1", "control", 0, 0)  # a retry, elsewhere
        assert a.record("r1", "impression").impressions == 2
        b.record_served("r2", "mmr", "u2", ["x"])
        assert totals(a) == totals(b) == {"control": (1, 3, 1), "mmr": (1, 0, 0)}


def test_a_list_queued_in_one_worker_reaches_the_others_with_its_next_batch(postgres_url: str) -> None:
    with _open(postgres_url) as a, _open(postgres_url) as b:
        a.serve_later("r1", "control", "u1", ["x"])  # no read through a: its writer thread commits it

        def clicked() -> bool:
            try:
                return b.record("r1", "click", ["x"]).clicks == 1
            except NotFoundError:
                return False

        assert _until(clicked, seconds=2.0)
        assert totals(b) == totals(a) == {"control": (1, 1, 1)}
        assert a.flush() == 0


def test_workers_recording_at_once_add_up_to_exact_totals(postgres_url: str) -> None:
    logs = [_open(postgres_url), _open(postgres_url)]
    threads_n, requests_n = 8, 30
    errors: list[BaseException] = []

    def work(t: int) -> None:
        served, reporter = logs[t % 2], logs[(t + 1) % 2]
        try:
            for r in range(requests_n):
                rid = f"t{t}-r{r}"
                if r % 2:
                    served.record_served(rid, f"v{t % 4}", f"u{t}", ["a", "b", "c"])
                else:  # queued here: this worker's own report writes it first
                    served.serve_later(rid, f"v{t % 4}", f"u{t}", ["a", "b", "c"])
                    assert served.record(rid, "impression", ["c"]).impressions == 1
                assert reporter.record(rid, "click", ["a"]).clicks == 1
                assert served.record(rid, "click", ["a", "b"]).clicks == 1  # a retried click plus one new
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    run_threads(work, threads_n)
    assert errors == []
    lists = threads_n // 4 * requests_n
    halves = lists // 2
    expected = {f"v{v}": (lists, 2 * lists + halves, 2 * lists) for v in range(4)}
    assert totals(logs[0]) == totals(logs[1]) == expected
    for log in logs:
        log.close()


def test_concurrent_writers_past_the_capacity_keep_exactly_the_newest_lists(postgres_url: str) -> None:
    capacity, threads_n, requests_n = 50, 8, 60
    logs = [_open(postgres_url, capacity), _open(postgres_url, capacity)]
    clicks = [0] * threads_n

    def work(t: int) -> None:
        log, other = logs[t % 2], logs[(t + 1) % 2]
        for r in range(requests_n):
            log.serve_later(f"t{t}-r{r}", f"v{t % 2}", f"u{t}", ["a", "b"])
            if r % 5 == 0:
                try:  # the other worker's lists may push this one out before the click arrives
                    clicks[t] += log.record(f"t{t}-r{r}", "click", ["a"]).clicks
                except NotFoundError:
                    pass
            if r % 7 == 0:
                other.flush()

    run_threads(work, threads_n)
    for log in logs:
        log.flush()
    kept = sql(postgres_url, "SELECT seq FROM feedback_served ORDER BY seq")
    assert len(kept) == capacity
    assert sql(postgres_url, "SELECT served FROM feedback_size") == [(capacity,)]
    assert sql(postgres_url, "SELECT COUNT(*) FROM feedback_reports WHERE seq < %s", (kept[0][0],)) == [(0,)]
    assert sum(clicks) > 0
    per_variant = threads_n // 2 * requests_n
    assert totals(logs[0]) == {
        "v0": (per_variant, sum(clicks[0::2]), sum(clicks[0::2])),
        "v1": (per_variant, sum(clicks[1::2]), sum(clicks[1::2])),
    }
    newest = sql(postgres_url, "SELECT request_id FROM feedback_served ORDER BY seq DESC LIMIT 1")[0][0]
    assert logs[1].record(newest, "impression", ["b"]).impressions == 1
    for log in logs:
        log.close()


def test_forget_user_reaches_lists_served_through_another_worker(postgres_url: str) -> None:
    with _open(postgres_url) as a, _open(postgres_url) as b:
        a.record_served("r1", "control", "u1", ["x"])
        a.record("r1", "click", ["x"])
        a.record_served("r2", "control", "u2", ["x"])
        b.serve_later("r3", "control", "u1", ["y"])
        assert b.forget_user("u1") == 2
        assert sql(postgres_url, "SELECT request_id FROM feedback_served") == [("r2",)]
        assert sql(postgres_url, "SELECT COUNT(*) FROM feedback_reports") == [(0,)]
        with pytest.raises(NotFoundError):
            a.record("r1", "impression")
        assert totals(a) == {"control": (3, 1, 1)}
        assert sql(postgres_url, "SELECT served FROM feedback_size") == [(1,)]


# ---------------------------------------------------------------- opening, reopening, failing


def test_a_reopened_log_sees_everything_and_a_smaller_capacity_evicts_at_once(postgres_url: str) -> None:
    log = _open(postgres_url)
    log.record_served("r1", "control", "u1", ["a", "b"])
    log.record("r1", "click", ["a"])
    log.serve_later("r2", "mmr", "u2", ["c"])
    log.close()
    log.close()
    with _open(postgres_url) as reopened:
        assert totals(reopened) == {"control": (1, 1, 1), "mmr": (1, 0, 0)}
        assert reopened.record("r1", "click", ["a"]).clicks == 0  # still counted once
        assert reopened.record("r2", "impression").impressions == 1
    with _open(postgres_url, capacity=1) as smaller:
        with pytest.raises(NotFoundError):
            smaller.record("r1", "impression")
        assert totals(smaller) == {"control": (1, 1, 1), "mmr": (1, 1, 0)}
    assert sql(postgres_url, "SELECT request_id FROM feedback_served") == [("r2",)]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda log: log.serve_later("r\x00", "control", "u1", ["a"]), "request_id"),
        (lambda log: log.record_served("r1", "con\x00trol", "u1", ["a"]), "variant"),
        (lambda log: log.serve_later("r1", "control", "u\x00", ["a"]), "user_id"),
        (lambda log: log.record_served("r1", "control", "u1", ["a", "b\x00"]), "item_ids"),
        (lambda log: log.record_served("r1", "control", "u1", ["\ud800"]), "item_ids"),
        (lambda log: log.record("r\x00", "impression"), "request_id"),
        (lambda log: log.record("r0", "click", ["a\x00"]), "item_ids"),
        (lambda log: log.forget_user("u\x00"), "user_id"),
    ],
)
def test_text_postgresql_cannot_hold_is_refused_naming_the_field(
    postgres_url: str, call: Callable[[PostgresFeedbackLog], object], field: str
) -> None:
    with _open(postgres_url) as log:
        log.record_served("r0", "control", "u0", ["a"])
        with pytest.raises(InvalidInputError) as err:
            call(log)
        assert err.value.field == field
        assert totals(log) == {"control": (1, 0, 0)}


def test_a_batch_whose_commit_failed_is_written_by_the_next_flush(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _open(postgres_url) as log:
        real = log._db.transaction

        def unreachable(action: str) -> Any:
            raise StorageError(f"feedback log: {action} failed: the server went away")

        monkeypatch.setattr(log._db, "transaction", unreachable)
        log.serve_later("r1", "control", "u1", ["a"])
        with pytest.raises(StorageError, match="went away"):
            log.flush()
        monkeypatch.setattr(log._db, "transaction", real)
        assert log.flush() == 1
        assert log.record("r1", "click", ["a"]).clicks == 1
        assert totals(log) == {"control": (1, 1, 1)}


def test_a_driver_failure_is_a_storage_error(postgres_url: str) -> None:
    with _open(postgres_url) as log:
        log.record_served("r1", "control", "u1", ["a"])
        sql(postgres_url, "DROP TABLE feedback_variants")
        with pytest.raises(StorageError, match="reading the counts"):
            log.counts()
        with pytest.raises(StorageError, match="recording click"):
            log.record("r1", "click", ["a"])
        assert sql(postgres_url, "SELECT COUNT(*) FROM feedback_reports") == [(0,)]  # nothing half-counted

"""The contract every :class:`~liverec.storage.base.FeedbackLog` keeps, as one reusable test suite.

Subclass :class:`FeedbackLogContract` in a test module and override the ``make_log`` fixture to
return a function that opens a new, empty log of the implementation under test, taking the
log's ``capacity`` as a keyword::

    class TestSqliteFeedbackLog(FeedbackLogContract):
        @pytest.fixture
        def make_log(self, tmp_path):
            files = iter(range(1_000))
            return lambda capacity=DEFAULT_CAPACITY: SqliteFeedbackLog(tmp_path / f"{next(files)}.db", capacity)

Each test serves a few hand-made lists and asserts the counts exactly, so an implementation
passes only if it counts what the reference :class:`MemoryFeedbackLog` counts.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pytest

from liverec.core.errors import ConflictError, InvalidInputError, NotFoundError, StorageError
from liverec.storage.base import FeedbackLog
from liverec.storage.feedback import DEFAULT_CAPACITY, FeedbackResult, VariantCounts


class FeedbackLogFactory(Protocol):
    def __call__(self, capacity: int = DEFAULT_CAPACITY) -> FeedbackLog: ...


def totals(log: FeedbackLog) -> dict[str, tuple[int, int, int]]:
    """``{variant: (requests, impressions, clicks)}`` from ``log.counts()``."""
    return {c.name: (c.requests, c.impressions, c.clicks) for c in log.counts()}


def run_threads(work: Callable[[int], Any], n: int) -> None:
    """Run ``work(0)`` … ``work(n - 1)`` in ``n`` threads at once and wait for all."""
    workers = [threading.Thread(target=work, args=(t,)) for t in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


class FeedbackLogContract:
    """Tests every feedback log must pass; subclasses override :meth:`make_log`."""

    @pytest.fixture
    def make_log(self) -> FeedbackLogFactory:
        """Return a function that opens a new, empty log with the given ``capacity``."""
        raise NotImplementedError("override the make_log fixture in the subclass")

    @pytest.fixture
    def log(self, make_log: FeedbackLogFactory) -> Iterator[FeedbackLog]:
        with make_log() as opened:
            yield opened

    def test_is_a_feedback_log_that_starts_empty(self, log: FeedbackLog) -> None:
        assert isinstance(log, FeedbackLog)
        assert log.counts() == []
        assert log.flush() == 0

    # --- counting ------------------------------------------------------------------------------

    def test_impression_without_items_counts_the_whole_list(self, log: FeedbackLog) -> None:
        log.record_served("r1", "control", "u1", ["a", "b", "c"])
        result = log.record("r1", "impression")
        assert result == FeedbackResult("r1", "control", 3, 0)
        assert totals(log) == {"control": (1, 3, 0)}

    def test_retried_feedback_counts_once(self, log: FeedbackLog) -> None:
        log.record_served("r1", "control", "u1", ["a", "b", "c"])
        assert log.record("r1", "click", ["b"]).to_dict() == {
            "request_id": "r1", "variant": "control", "impressions": 1, "clicks": 1,
        }
        retry = log.record("r1", "click", ["b"])
        assert (retry.impressions, retry.clicks) == (0, 0)
        assert log.record("r1", "impression").impressions == 2  # b's impression is already counted
        assert log.record("r1", "impression", ["a", "a"]).impressions == 0
        assert totals(log) == {"control": (1, 3, 1)}

    def test_a_click_implies_its_impression(self, log: FeedbackLog) -> None:
        log.record_served("r1", "control", "u1", ["a", "b"])
        result = log.record("r1", "click", ["a", "b"])
        assert (result.impressions, result.clicks) == (2, 2)
        assert log.counts() == [VariantCounts("control", 1, 2, 2)]

    def test_counts_come_in_the_order_variants_were_first_served(self, log: FeedbackLog) -> None:
        items = [f"i{j}" for j in range(10)]
        for i in range(10):  # control: 100 impressions, 10 clicks; treatment: 100 and 20
            log.record_served(f"c{i}", "control", "u", items)
            log.record(f"c{i}", "impression")
            log.record_served(f"t{i}", "treatment", "u", items)
            log.record(f"t{i}", "impression")
            log.record(f"t{i}", "click", items[:2])
        log.record("c0", "click", items)
        log.record_served("q1", "quiet", "u", items)
        assert log.counts() == [
            VariantCounts("control", 10, 100, 10),
            VariantCounts("treatment", 10, 100, 20),
            VariantCounts("quiet", 1, 0, 0),
        ]

    def test_a_variant_keeps_its_place_when_served_again(self, log: FeedbackLog) -> None:
        log.record_served("r1", "b", "u", ["x"])
        log.record_served("r2", "a", "u", ["x"])
        log.record_served("r3", "b", "u", ["x"])
        assert [c.name for c in log.counts()] == ["b", "a"]

    # --- refusals ------------------------------------------------------------------------------

    def test_unknown_request_is_not_found(self, log: FeedbackLog) -> None:
        with pytest.raises(NotFoundError, match="'nope'") as err:
            log.record("nope", "impression")
        assert (err.value.kind, err.value.key) == ("request", "nope")

    def test_feedback_on_an_item_not_served_counts_nothing(self, log: FeedbackLog) -> None:
        log.record_served("r1", "control", "u1", ["a", "b"])
        with pytest.raises(InvalidInputError) as err:
            log.record("r1", "click", ["a", "zzz"])
        assert (err.value.field, err.value.value) == ("item_ids", ["zzz"])
        assert totals(log) == {"control": (1, 0, 0)}

    @pytest.mark.parametrize(
        ("kind", "item_ids", "field"),
        [("clik", ["a"], "type"), ("click", None, "item_ids"), ("click", "a", "item_ids"),
         ("impression", [1], "item_ids")],
    )
    def test_bad_feedback_names_the_field(self, log: FeedbackLog, kind: str, item_ids: Any, field: str) -> None:
        log.record_served("r1", "control", "u1", ["a"])
        with pytest.raises(InvalidInputError) as err:
            log.record("r1", kind, item_ids)
        assert err.value.field == field
        assert totals(log) == {"control": (1, 0, 0)}

    def test_record_served_retry_is_a_no_op_and_other_content_a_conflict(self, log: FeedbackLog) -> None:
        log.record_served("r1", "control", "u1", ["a", "b"])
        log.record_served("r1", "control", "u1", ["a", "b"])
        assert totals(log) == {"control": (1, 0, 0)}
        with pytest.raises(ConflictError, match="'r1'"):
            log.record_served("r1", "control", "u1", ["b", "a"])
        with pytest.raises(ConflictError):
            log.record_served("r1", "other", "u1", ["a", "b"])
        with pytest.raises(InvalidInputError) as err:
            log.record_served("r2", "control", "u1", ["a", "a"])
        assert (err.value.field, err.value.value) == ("item_ids", ["a"])
        assert totals(log) == {"control": (1, 0, 0)}

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            (("", "control", "u1", ["a"]), "request_id"),
            (("r1", "", "u1", ["a"]), "variant"),
            (("r1", "control", None, ["a"]), "user_id"),
            (("r1", "control", "u1", "a"), "item_ids"),
            (("r1", "control", "u1", ["a", ""]), "item_ids"),
        ],
    )
    def test_a_bad_served_list_names_the_field(self, log: FeedbackLog, args: tuple[Any, ...], field: str) -> None:
        for record in (log.record_served, log.serve_later):
            with pytest.raises(InvalidInputError) as err:
                record(*args)
            assert err.value.field == field
        assert log.counts() == []

    @pytest.mark.parametrize("ts", [math.nan, math.inf, "1", True])
    def test_a_served_list_needs_a_finite_time(self, log: FeedbackLog, ts: Any) -> None:
        with pytest.raises(InvalidInputError, match="finite number of seconds") as err:
            log.record_served("r1", "control", "u1", ["a"], ts=ts)
        assert err.value.field == "ts"
        log.record_served("r1", "control", "u1", ["a"], ts=5)
        assert totals(log) == {"control": (1, 0, 0)}

    # --- capacity and erasure ------------------------------------------------------------------

    def test_capacity_evicts_the_oldest_lists_but_keeps_their_counts(self, make_log: FeedbackLogFactory) -> None:
        with make_log(capacity=2) as log:
            for i in range(3):
                log.record_served(f"r{i}", "control", "u1", ["a"])
            log.record("r1", "click", ["a"])
            with pytest.raises(NotFoundError):
                log.record("r0", "impression")
            log.record("r2", "impression")
            assert totals(log) == {"control": (3, 2, 1)}
            log.record_served("r3", "control", "u1", ["a"])
            with pytest.raises(NotFoundError):
                log.record("r1", "impression")
            assert log.record("r3", "impression").impressions == 1

    @pytest.mark.parametrize("capacity", [0, -1, 1.5, True])
    def test_capacity_must_be_a_positive_integer(self, make_log: FeedbackLogFactory, capacity: Any) -> None:
        with pytest.raises(InvalidInputError) as err:
            make_log(capacity=capacity)
        assert err.value.field == "capacity"

    def test_forget_user_erases_their_lists_but_not_the_totals(self, log: FeedbackLog) -> None:
        log.record_served("r1", "control", "u1", ["a"])
        log.record_served("r2", "control", "u1", ["b"])
        log.record_served("r3", "control", "u2", ["a"])
        log.record("r1", "click", ["a"])
        assert log.forget_user("u1") == 2
        assert log.forget_user("u1") == 0
        with pytest.raises(NotFoundError):
            log.record("r1", "click", ["a"])
        assert log.record("r3", "impression").impressions == 1
        assert totals(log) == {"control": (3, 2, 1)}

    def test_forget_user_reaches_lists_served_later(self, log: FeedbackLog) -> None:
        log.serve_later("r1", "control", "u1", ["a"])
        assert log.forget_user("u1") == 1
        with pytest.raises(NotFoundError):
            log.record("r1", "impression")
        assert totals(log) == {"control": (1, 0, 0)}

    # --- the request path ----------------------------------------------------------------------

    def test_a_bad_list_is_refused_when_queued_not_when_written(self, log: FeedbackLog) -> None:
        with pytest.raises(InvalidInputError) as err:
            log.serve_later("r1", "control", "u1", ["a", "a"])
        assert err.value.field == "item_ids"
        assert log.flush() == 0

    def test_a_list_served_later_is_counted_and_takes_feedback(self, log: FeedbackLog) -> None:
        log.serve_later("r1", "control", "u1", ["a", "b"])
        assert log.record("r1", "click", ["b"]) == FeedbackResult("r1", "control", 1, 1)
        log.serve_later("r2", "mmr", "u1", ["c"])
        assert totals(log) == {"control": (1, 1, 1), "mmr": (1, 0, 0)}
        assert log.flush() == 0  # reads wrote everything queued

    def test_a_list_served_later_again_with_other_content_is_dropped_not_raised(self, log: FeedbackLog) -> None:
        log.serve_later("r1", "control", "u1", ["a"])
        log.serve_later("r1", "mmr", "u2", ["z"])
        log.serve_later("r2", "control", "u1", ["b"])
        assert totals(log) == {"control": (2, 0, 0)}
        assert log.record("r1", "impression", ["a"]).variant == "control"

    @pytest.mark.parametrize("later", [False, True])
    def test_concurrent_recording_gives_exact_totals(self, log: FeedbackLog, later: bool) -> None:
        threads_n, requests_n = 8, 40
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for r in range(requests_n):
                    rid = f"t{t}-r{r}"
                    (log.serve_later if later else log.record_served)(rid, f"v{t % 2}", f"u{t}", ["a", "b", "c"])
                    log.record(rid, "click", ["a"])
                    log.record(rid, "impression")
                    log.record(rid, "click", ["a", "b"])  # a retried click plus one new
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)

        run_threads(work, threads_n)
        assert errors == []
        per_variant = threads_n // 2 * requests_n
        assert totals(log) == {"v0": (per_variant, 3 * per_variant, 2 * per_variant),
                               "v1": (per_variant, 3 * per_variant, 2 * per_variant)}

    def test_lists_served_later_are_never_missing_from_feedback_or_counts(self, log: FeedbackLog) -> None:
        """The request path queues its list; a click arriving before the batch is written still finds it."""
        threads_n, requests_n = 6, 60
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for r in range(requests_n):
                    rid = f"t{t}-r{r}"
                    log.serve_later(rid, f"v{t % 2}", f"u{t}", ["a", "b"])
                    if r % 3 == 0:  # some clicks come at once, racing the writer
                        assert log.record(rid, "click", ["b"]).clicks == 1
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)

        run_threads(work, threads_n)
        assert errors == []
        per_variant = threads_n // 2 * requests_n
        clicks = threads_n // 2 * len(range(0, requests_n, 3))
        assert totals(log) == {"v0": (per_variant, clicks, clicks), "v1": (per_variant, clicks, clicks)}

    # --- lifetime ------------------------------------------------------------------------------

    def test_a_closed_log_raises_storage_error(self, make_log: FeedbackLogFactory) -> None:
        log = make_log()
        log.record_served("r1", "control", "u1", ["a"])
        log.close()
        log.close()
        with pytest.raises(StorageError, match="closed"):
            log.counts()
        with pytest.raises(StorageError, match="closed"):
            log.record("r1", "impression")
        with pytest.raises(StorageError, match="closed"):
            log.record_served("r2", "control", "u1", ["a"])
        with pytest.raises(StorageError, match="closed"):
            log.serve_later("r3", "control", "u1", ["a"])
        with pytest.raises(StorageError, match="closed"):
            log.forget_user("u1")

    def test_close_writes_what_was_queued(self, make_log: FeedbackLogFactory) -> None:
        log = make_log()
        log.serve_later("last", "v0", "u9", ["z"])
        log.close()  # must not lose the queued list, nor fail
        with pytest.raises(StorageError):
            log.serve_later("after", "v0", "u9", ["z"])

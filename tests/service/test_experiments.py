"""A/B variants and per-variant CTR: assignment, config validation, feedback counting, statistics."""

from __future__ import annotations

import hashlib
import math
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from liverec.core.errors import ConflictError, InvalidInputError, NotFoundError, StorageError
from liverec.service.experiments import (
    Experiment,
    Variant,
    newcombe_interval,
    two_proportion_p_value,
    wilson_interval,
)
from liverec.service.feedback_log import FeedbackLog

THREE_WAY = [{"name": "control", "share": 0.5}, {"name": "b", "share": 0.3}, {"name": "c", "share": 0.2}]


# ---------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (10, 100, (0.0552, 0.1744)),  # p=0.1, z=1.96: (0.1 + 0.0192)/1.0384 -/+ 0.0596
        (0, 10, (0.0, 0.2775)),  # upper = z^2 / (n + z^2) = 3.8415 / 13.8415
        (10, 10, (0.7225, 1.0)),  # the mirror of 0 of 10
        (0, 0, (0.0, 1.0)),  # nothing observed: everything possible
    ],
)
def test_wilson_interval_matches_hand_computed_values(successes: int, n: int, expected: tuple[float, float]) -> None:
    low, high = wilson_interval(successes, n)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_interval_is_exact_at_the_edges() -> None:
    assert wilson_interval(0, 50)[0] == 0.0
    assert wilson_interval(50, 50)[1] == 1.0


def test_newcombe_interval_matches_newcombe_1998_example() -> None:
    # Newcombe (1998), Stat. Med. 17:873, table II: 56/70 vs 48/80, method 10 gives 0.0524 to 0.3339.
    low, high = newcombe_interval(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_two_proportion_p_value_on_a_hand_case() -> None:
    # 20/100 vs 10/100: pooled p = 0.15, se = sqrt(0.15 * 0.85 * 0.02) = 0.050498, z = 1.98030,
    # two-sided p = erfc(1.98030 / sqrt 2) = 0.04767.
    assert two_proportion_p_value(20, 100, 10, 100) == pytest.approx(0.04767, abs=1e-5)
    assert two_proportion_p_value(10, 100, 20, 100) == two_proportion_p_value(20, 100, 10, 100)
    assert two_proportion_p_value(0, 100, 0, 50) == 1.0
    assert two_proportion_p_value(7, 70, 7, 70) == 1.0


# ---------------------------------------------------------------------------- assignment


def test_assign_uses_salted_sha256_and_cumulative_shares() -> None:
    exp = Experiment.from_config(THREE_WAY, salt="exp-1")
    # Fixed answers: they were computed in another process, so they also pin cross-process stability.
    expected = {"alice": "control", "bob": "b", "carol": "control", "dave": "c", "erin": "b", "u42": "c"}
    assert {u: exp.assign(u).name for u in expected} == expected
    point = int.from_bytes(hashlib.sha256(b"exp-1bob").digest()[:8], "big") / 2**64
    assert exp.bucket("bob") == point
    assert 0.5 <= point < 0.8  # b's slice


def test_assignment_is_stable_and_respects_shares() -> None:
    exp = Experiment.from_config(THREE_WAY, salt="exp-1")
    users = [f"user-{i}" for i in range(100_000)]
    counts = Counter(exp.assign(u).name for u in users)
    assert set(counts) == {"control", "b", "c"}
    for variant in exp.variants:
        assert counts[variant.name] / len(users) == pytest.approx(variant.share, abs=0.01)
    again = Experiment.from_config(THREE_WAY, salt="exp-1")
    assert all(again.assign(u) == exp.assign(u) for u in users[:1000])


def test_a_new_salt_reshuffles_users() -> None:
    a = Experiment.from_config([{"name": "x"}, {"name": "y"}], salt="one")
    b = Experiment.from_config([{"name": "x"}, {"name": "y"}], salt="two")
    users = [f"user-{i}" for i in range(2000)]
    moved = sum(a.assign(u).name != b.assign(u).name for u in users)
    assert 0.4 < moved / len(users) < 0.6  # independent halves: about half move


def test_shares_are_normalised_and_default_to_an_equal_split() -> None:
    exp = Experiment.from_config([{"name": "a", "share": 3}, {"name": "b", "share": 1}])
    assert [v.share for v in exp.variants] == [0.75, 0.25]
    exp = Experiment.from_config([{"name": "a"}, {"name": "b"}])
    assert [v.share for v in exp.variants] == [0.5, 0.5]
    assert exp.control.name == "a"


def test_single_serves_everyone_with_the_defaults() -> None:
    exp = Experiment.single()
    assert exp.variants == (Variant("default", 1.0, None, None),)
    assert exp.assign("anyone") is exp.control


def test_variant_config_round_trips() -> None:
    config = [{"name": "a", "share": 0.5, "weights": {"als": 2.0, "content": 0.0}, "diversity": 0.3},
              {"name": "b", "share": 0.5, "weights": None, "diversity": None}]
    exp = Experiment.from_config(config, salt="s")
    assert exp.to_dict() == {"salt": "s", "variants": config}
    assert exp.variant("a").weights == {"als": 2.0, "content": 0.0}
    with pytest.raises(NotFoundError) as err:
        exp.variant("zzz")
    assert err.value.kind == "variant"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ([], "variants"),
        ({"name": "a"}, "variants"),
        (["a"], "variants[0]"),
        ([{"share": 1}], "variants[0].name"),
        ([{"name": ""}], "variants[0].name"),
        ([{"name": 3}], "variants[0].name"),
        ([{"name": "a"}, {"name": "a"}], "variants[1].name"),
        ([{"name": "a", "share": 0}], "variants[0].share"),
        ([{"name": "a", "share": -1}], "variants[0].share"),
        ([{"name": "a", "share": math.inf}], "variants[0].share"),
        ([{"name": "a", "share": True}], "variants[0].share"),
        ([{"name": "a", "divresity": 0.5}], "variants[0].divresity"),
        ([{"name": "a"}, {"name": "b", "weights": {"als": -1}}], "variants[1].weights.als"),
        ([{"name": "a"}, {"name": "b", "weights": {"als": math.nan}}], "variants[1].weights.als"),
        ([{"name": "a"}, {"name": "b", "weights": {"als": "2"}}], "variants[1].weights.als"),
        ([{"name": "a", "weights": {"bm25": 1.0}}], "variants[0].weights.bm25"),
        ([{"name": "a", "weights": {"als": 0.0}}], "variants[0].weights"),
        ([{"name": "a", "weights": {}}], "variants[0].weights"),
        ([{"name": "a", "weights": [1.0]}], "variants[0].weights"),
        ([{"name": "a", "diversity": 1.5}], "variants[0].diversity"),
        ([{"name": "a", "diversity": -0.1}], "variants[0].diversity"),
    ],
)
def test_bad_config_names_the_field(config: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        Experiment.from_config(config)
    assert err.value.field == field
    assert field.split(".")[-1].split("[")[0] in str(err.value)


# ---------------------------------------------------------------------------- feedback log


@pytest.fixture
def log() -> Any:
    with FeedbackLog() as feedback:
        yield feedback


def _totals(log: FeedbackLog) -> dict[str, tuple[int, int, int]]:
    return {s.name: (s.requests, s.impressions, s.clicks) for s in log.stats()}


def test_impression_without_items_counts_the_whole_list(log: FeedbackLog) -> None:
    log.record_served("r1", "control", "u1", ["a", "b", "c"])
    result = log.record("r1", "impression")
    assert (result.variant, result.impressions, result.clicks) == ("control", 3, 0)
    assert _totals(log) == {"control": (1, 3, 0)}


def test_retried_feedback_counts_once(log: FeedbackLog) -> None:
    log.record_served("r1", "control", "u1", ["a", "b", "c"])
    assert log.record("r1", "click", ["b"]).to_dict() == {
        "request_id": "r1", "variant": "control", "impressions": 1, "clicks": 1,
    }
    retry = log.record("r1", "click", ["b"])
    assert (retry.impressions, retry.clicks) == (0, 0)
    assert log.record("r1", "impression").impressions == 2  # b's impression is already counted
    assert log.record("r1", "impression", ["a", "a"]).impressions == 0
    assert _totals(log) == {"control": (1, 3, 1)}


def test_a_click_implies_its_impression(log: FeedbackLog) -> None:
    log.record_served("r1", "control", "u1", ["a", "b"])
    result = log.record("r1", "click", ["a", "b"])
    assert (result.impressions, result.clicks) == (2, 2)
    stats = log.stats()[0]
    assert (stats.impressions, stats.clicks, stats.ctr) == (2, 2, 1.0)


def test_unknown_request_is_not_found(log: FeedbackLog) -> None:
    with pytest.raises(NotFoundError) as err:
        log.record("nope", "impression")
    assert (err.value.kind, err.value.key) == ("request", "nope")


def test_feedback_on_an_item_not_served_counts_nothing(log: FeedbackLog) -> None:
    log.record_served("r1", "control", "u1", ["a", "b"])
    with pytest.raises(InvalidInputError) as err:
        log.record("r1", "click", ["a", "zzz"])
    assert (err.value.field, err.value.value) == ("item_ids", ["zzz"])
    assert _totals(log) == {"control": (1, 0, 0)}


@pytest.mark.parametrize(
    ("kind", "item_ids", "field"),
    [("clik", ["a"], "type"), ("click", None, "item_ids"), ("click", "a", "item_ids"), ("impression", [1], "item_ids")],
)
def test_bad_feedback_names_the_field(log: FeedbackLog, kind: str, item_ids: Any, field: str) -> None:
    log.record_served("r1", "control", "u1", ["a"])
    with pytest.raises(InvalidInputError) as err:
        log.record("r1", kind, item_ids)
    assert err.value.field == field


def test_record_served_retry_is_a_no_op_and_other_content_a_conflict(log: FeedbackLog) -> None:
    log.record_served("r1", "control", "u1", ["a", "b"])
    log.record_served("r1", "control", "u1", ["a", "b"])
    assert _totals(log) == {"control": (1, 0, 0)}
    with pytest.raises(ConflictError):
        log.record_served("r1", "control", "u1", ["b", "a"])
    with pytest.raises(InvalidInputError) as err:
        log.record_served("r2", "control", "u1", ["a", "a"])
    assert err.value.field == "item_ids"


def test_capacity_evicts_the_oldest_lists_but_keeps_their_counts() -> None:
    with FeedbackLog(capacity=2) as log:
        for i in range(3):
            log.record_served(f"r{i}", "control", "u1", ["a"])
        log.record("r1", "click", ["a"])
        with pytest.raises(NotFoundError):
            log.record("r0", "impression")
        log.record("r2", "impression")
        assert _totals(log) == {"control": (3, 2, 1)}
        log.record_served("r3", "control", "u1", ["a"])
        with pytest.raises(NotFoundError):
            log.record("r1", "impression")


def test_counts_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "feedback" / "log.db"
    with FeedbackLog(path) as log:
        log.record_served("r1", "control", "u1", ["a", "b"])
        log.record_served("r2", "mmr", "u2", ["c"])
        log.record("r1", "click", ["a"])
    with FeedbackLog(path) as log:
        assert _totals(log) == {"control": (1, 1, 1), "mmr": (1, 0, 0)}
        assert log.record("r1", "click", ["a"]).clicks == 0  # still idempotent after the restart
        assert log.record("r2", "impression").impressions == 1
    with FeedbackLog(path, capacity=1) as log:  # reopening with less room evicts at once
        with pytest.raises(NotFoundError):
            log.record("r1", "impression")
        assert _totals(log) == {"control": (1, 1, 1), "mmr": (1, 1, 0)}


def test_stats_compare_every_variant_with_the_control(log: FeedbackLog) -> None:
    items = [f"i{j}" for j in range(10)]
    for i in range(10):  # control: 100 impressions, 10 clicks; treatment: 100 and 20
        log.record_served(f"c{i}", "control", "u", items)
        log.record("c0" if i == 0 else f"c{i}", "impression")
        log.record_served(f"t{i}", "treatment", "u", items)
        log.record(f"t{i}", "impression")
        log.record(f"t{i}", "click", items[:2])
    log.record("c0", "click", items)
    log.record_served("q1", "quiet", "u", items)
    control, treatment, quiet = log.stats()
    assert control.control and control.lift is None and control.p_value is None
    assert (control.impressions, control.clicks, control.ctr) == (100, 10, 0.1)
    assert (round(control.ci_low, 4), round(control.ci_high, 4)) == (0.0552, 0.1744)
    assert treatment.lift == pytest.approx(0.1)
    assert treatment.p_value == pytest.approx(0.04767, abs=1e-5)
    assert (treatment.lift_ci_low, treatment.lift_ci_high) == newcombe_interval(20, 100, 10, 100)
    assert quiet.to_dict() == {
        "name": "quiet", "requests": 1, "impressions": 0, "clicks": 0, "ctr": 0.0, "ci_low": 0.0, "ci_high": 1.0,
        "control": False, "lift": None, "lift_ci_low": None, "lift_ci_high": None, "p_value": None,
    }


def test_stats_put_the_named_control_first_even_before_it_served(log: FeedbackLog) -> None:
    log.record_served("r1", "b", "u", ["a"])
    assert [(s.name, s.control) for s in log.stats(control="a")] == [("a", True), ("b", False)]
    assert [s.name for s in log.stats()] == ["b"]


def _run_threads(work: Any, n: int) -> None:
    workers = [threading.Thread(target=work, args=(t,)) for t in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


@pytest.mark.parametrize("persistent", [False, True])
def test_concurrent_recording_gives_exact_totals(tmp_path: Path, persistent: bool) -> None:
    threads_n, requests_n = 8, 40
    log = FeedbackLog(tmp_path / "log.db" if persistent else None)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for r in range(requests_n):
                rid = f"t{t}-r{r}"
                log.record_served(rid, f"v{t % 2}", f"u{t}", ["a", "b", "c"])
                log.record(rid, "click", ["a"])
                log.record(rid, "impression")
                log.record(rid, "click", ["a", "b"])  # a retried click plus one new
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    _run_threads(work, threads_n)
    assert errors == []
    per_variant = threads_n // 2 * requests_n
    assert _totals(log) == {"v0": (per_variant, 3 * per_variant, 2 * per_variant),
                            "v1": (per_variant, 3 * per_variant, 2 * per_variant)}
    log.close()


def test_a_closed_log_raises_storage_error() -> None:
    log = FeedbackLog()
    log.close()
    log.close()
    with pytest.raises(StorageError):
        log.stats()


def test_capacity_must_be_positive() -> None:
    with pytest.raises(InvalidInputError) as err:
        FeedbackLog(capacity=0)
    assert err.value.field == "capacity"


def test_forget_user_erases_their_lists_but_not_the_totals(log: FeedbackLog) -> None:
    log.record_served("r1", "control", "u1", ["a"])
    log.record_served("r2", "control", "u1", ["b"])
    log.record_served("r3", "control", "u2", ["a"])
    log.record("r1", "click", ["a"])
    assert log.forget_user("u1") == 2
    assert log.forget_user("u1") == 0
    with pytest.raises(NotFoundError):
        log.record("r1", "click", ["a"])
    assert log.record("r3", "impression").impressions == 1
    assert _totals(log) == {"control": (3, 2, 1)}


@pytest.mark.parametrize("persistent", [False, True])
def test_lists_served_later_are_never_missing_from_feedback_or_stats(tmp_path: Path, persistent: bool) -> None:
    """The request path queues its list; a click arriving before the batch is written still finds it."""
    threads_n, requests_n = 6, 60
    path = tmp_path / "log.db" if persistent else None
    log = FeedbackLog(path)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for r in range(requests_n):
                rid = f"t{t}-r{r}"
                log.serve_later(rid, f"v{t % 2}", f"u{t}", ["a", "b"])
                if r % 3 == 0:  # some clicks come at once, racing the writer thread
                    assert log.record(rid, "click", ["b"]).clicks == 1
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    _run_threads(work, threads_n)
    assert errors == []
    per_variant = threads_n // 2 * requests_n
    clicks = threads_n // 2 * len(range(0, requests_n, 3))
    assert _totals(log) == {"v0": (per_variant, clicks, clicks), "v1": (per_variant, clicks, clicks)}
    log.serve_later("last", "v0", "u9", ["z"])
    log.close()  # writes the queue before closing
    with pytest.raises(StorageError):
        log.serve_later("after", "v0", "u9", ["z"])
    if persistent:
        with FeedbackLog(path) as reopened:
            assert _totals(reopened)["v0"][0] == per_variant + 1
            assert reopened.record("last", "impression").impressions == 1


def test_a_bad_list_is_refused_when_queued_not_when_written(log: FeedbackLog) -> None:
    with pytest.raises(InvalidInputError) as err:
        log.serve_later("r1", "control", "u1", ["a", "a"])
    assert err.value.field == "item_ids"
    assert log.flush() == 0

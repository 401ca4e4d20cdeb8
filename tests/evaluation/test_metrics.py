"""Metrics and statistics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liverec.evaluation.metrics import (
    by_history_length,
    catalog_coverage,
    history_bin,
    intra_list_diversity,
    metric_table,
    novelty,
    per_user_metrics,
)
from liverec.evaluation.stats import bootstrap_ci, paired_test


def test_single_target_at_rank_three() -> None:
    # target at 0-based rank 2: DCG = 1/log2(4) = 0.5, ideal 1; reciprocal rank 1/3
    row = per_user_metrics(["a", "b", "t", "c"], {"t"}, ks=(2, 3, 5))
    assert row["recall@2"] == 0.0 and row["ndcg@2"] == 0.0 and row["mrr@2"] == 0.0
    assert row["recall@3"] == 1.0
    assert row["ndcg@3"] == pytest.approx(0.5)
    assert row["mrr@3"] == pytest.approx(1 / 3)
    assert row["ndcg@5"] == pytest.approx(0.5)


def test_two_targets_ndcg_uses_the_ideal_of_two_hits() -> None:
    # hits at ranks 0 and 3; ideal = 1 + 1/log2(3)
    row = per_user_metrics(["x", "a", "b", "y"], {"x", "y"}, ks=(4,))
    ideal = 1 + 1 / math.log2(3)
    assert row["ndcg@4"] == pytest.approx((1 + 1 / math.log2(5)) / ideal)
    assert row["recall@4"] == 1.0
    assert row["mrr@4"] == 1.0
    # with K below the number of targets the ideal only counts K hits
    assert per_user_metrics(["x", "y"], {"x", "y", "z"}, ks=(2,))["ndcg@2"] == pytest.approx(1.0)
    assert per_user_metrics(["x", "y"], {"x", "y", "z"}, ks=(2,))["recall@2"] == pytest.approx(2 / 3)


def test_a_user_without_a_list_scores_zero_not_dropped() -> None:
    table = metric_table({"u1": ["t"]}, {"u1": {"t"}, "u2": {"t"}}, ["u1", "u2"], ks=(10,))
    assert table["recall@10"].tolist() == [1.0, 0.0]
    assert table["ndcg@10"].mean() == 0.5


def test_beyond_accuracy() -> None:
    lists = {"u1": ["a", "b"], "u2": ["a", "c"]}
    assert catalog_coverage(lists, n_items=6, k=2) == pytest.approx(0.5)
    assert catalog_coverage(lists, n_items=6, k=1) == pytest.approx(1 / 6)
    vecs = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [1.0, 0.0]}
    lookup = lambda items: np.array([vecs[i] for i in items])  # noqa: E731
    # u1: orthogonal pair, distance 1; u2: identical pair, distance 0
    assert intra_list_diversity(lists, lookup, k=2) == pytest.approx(0.5)
    # a: 4 of 8 users -> 1 bit; b: 1 of 8 -> 3 bits; c: nobody -> counts as 1 user -> 3 bits
    assert novelty(lists, {"a": 4, "b": 1}, n_users=8, k=2) == pytest.approx((1 + 3 + 1 + 3) / 4)


def test_history_buckets() -> None:
    assert [history_bin(n) for n in (1, 4, 5, 9, 10, 49, 50, 500)] == [
        "1-4", "1-4", "5-9", "5-9", "10-19", "20-49", "50+", "50+"]
    out = by_history_length(np.array([1.0, 0.0, 0.5]), np.array([2, 3, 60]))
    assert out == {"1-4": (0.5, 2), "50+": (0.5, 1)}


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_users() -> None:
    rng = np.random.default_rng(1)
    small = rng.binomial(1, 0.3, 100).astype(float)
    large = rng.binomial(1, 0.3, 10_000).astype(float)
    lo_s, hi_s = bootstrap_ci(small, seed=0)
    lo_l, hi_l = bootstrap_ci(large, seed=0)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 5
    assert bootstrap_ci(small, seed=0) == bootstrap_ci(small, seed=0)  # same seed, same interval


def test_paired_test_separates_a_real_difference_from_noise() -> None:
    rng = np.random.default_rng(2)
    base = rng.random(2000)
    better = base + 0.05
    noisy = base + rng.normal(0, 0.01, base.size) * np.where(rng.random(base.size) < 0.5, 1, -1)
    strong = paired_test(better, base, seed=0)
    assert strong.difference == pytest.approx(0.05)
    assert strong.p_value < 0.001 and strong.ci_low > 0
    weak = paired_test(noisy, base, seed=0)
    assert weak.p_value > 0.05 and weak.ci_low < 0 < weak.ci_high
    # identical systems: no difference, p = 1
    same = paired_test(base, base, seed=0)
    assert same.difference == 0 and same.p_value == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        paired_test(base, base[:-1])

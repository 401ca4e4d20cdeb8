"""A/B variants and per-variant CTR: assignment, config validation, statistics of the feedback counts."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

import pytest

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.experiments import (
    Assignment,
    Experiment,
    Variant,
    newcombe_interval,
    two_proportion_p_value,
    variant_stats,
    wilson_interval,
)
from liverec.ranking.fusion import LinearFusion
from liverec.storage import VariantCounts

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
    assert exp.variants == (Variant("default", 1.0, None, None, None),)
    assert exp.scorer(exp.control) is None  # the trained scorer serves
    assert exp.assign("anyone") is exp.control


def test_variant_config_round_trips() -> None:
    config = [{"name": "a", "share": 0.5, "weights": {"als": 2.0, "content": 0.0}, "diversity": 0.3, "scorer": None},
              {"name": "b", "share": 0.5, "weights": None, "diversity": None, "scorer": None}]
    exp = Experiment.from_config(config, salt="s")
    assert exp.to_dict() == {"salt": "s", "variants": config}
    assert exp.variant("a").weights == {"als": 2.0, "content": 0.0}
    with pytest.raises(NotFoundError) as err:
        exp.variant("zzz")
    assert err.value.kind == "variant"


def test_a_variant_names_a_scorer_configuration_built_once() -> None:
    exp = Experiment.from_config([
        {"name": "control"},
        {"name": "als-heavy", "weights": {"als": 4.0, "content": 1.0}},
        {"name": "fixed", "scorer": {"kind": "linear", "weights": {"covisit": 1.0}}},
    ])
    control, heavy, fixed = exp.variants
    assert exp.scorer(control) is None
    built = exp.scorer(heavy)
    assert isinstance(built, LinearFusion) and built.weights == {"als": 4.0, "content": 1.0}
    assert exp.scorer(heavy) is built  # the same object on every request
    assert heavy.scorer_config() == {"kind": "linear", "weights": {"als": 4.0, "content": 1.0}}
    assert fixed.scorer_config() == {"kind": "linear", "weights": {"covisit": 1.0}}
    assert isinstance(exp, Assignment)


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
        ([{"name": "a", "scorer": {"kind": "xgboost"}}], "variants[0].scorer.kind"),
        ([{"name": "a", "scorer": {"kind": "linear", "wieghts": {}}}], "variants[0].scorer.wieghts"),
        ([{"name": "a", "scorer": {"weights": {"bm25": 1.0}}}], "variants[0].scorer.weights.bm25"),
        ([{"name": "a", "scorer": "linear"}], "variants[0].scorer"),
        ([{"name": "a", "weights": {"als": 1.0}, "scorer": {"kind": "linear"}}], "variants[0].weights"),
    ],
)
def test_bad_config_names_the_field(config: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        Experiment.from_config(config)
    assert err.value.field == field
    assert field.split(".")[-1].split("[")[0] in str(err.value)


# ---------------------------------------------------------------------------- statistics of counts
# (the counting itself is the feedback log contract: liverec/testing/feedback_contract.py)


def test_variant_stats_compare_every_variant_with_the_control() -> None:
    # What the feedback contract's first-served-order test counts: control 100 impressions and 10
    # clicks, treatment 100 and 20, quiet served once and never shown.
    counts = [VariantCounts("control", 10, 100, 10), VariantCounts("treatment", 10, 100, 20),
              VariantCounts("quiet", 1, 0, 0)]
    control, treatment, quiet = variant_stats(counts)
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


def test_variant_stats_put_the_named_control_first_even_before_it_served() -> None:
    counts = [VariantCounts("b", 1, 0, 0)]
    assert [(s.name, s.control) for s in variant_stats(counts, control="a")] == [("a", True), ("b", False)]
    assert variant_stats(counts, control="a")[0].to_dict() == {
        "name": "a", "requests": 0, "impressions": 0, "clicks": 0, "ctr": 0.0, "ci_low": 0.0, "ci_high": 1.0,
        "control": True, "lift": None, "lift_ci_low": None, "lift_ci_high": None, "p_value": None,
    }
    assert [s.name for s in variant_stats(counts)] == ["b"]
    assert variant_stats([]) == []


def test_variant_stats_move_a_named_control_to_the_front() -> None:
    counts = [VariantCounts("b", 5, 100, 20), VariantCounts("a", 5, 100, 10), VariantCounts("c", 1, 0, 0)]
    a, b, c = variant_stats(counts, control="a")
    assert [(s.name, s.control) for s in (a, b, c)] == [("a", True), ("b", False), ("c", False)]
    assert b.lift == pytest.approx(0.1)
    assert c.lift is None


def test_a_ctr_of_clicks_on_every_impression_is_one() -> None:
    [stats] = variant_stats([VariantCounts("control", 1, 2, 2)])
    assert (stats.impressions, stats.clicks, stats.ctr) == (2, 2, 1.0)
    assert (round(stats.ci_low, 4), stats.ci_high) == (0.3424, 1.0)

"""Fusion: min-max scaling, weighted sums, and weights learned by coordinate ascent on NDCG@10."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from liverec.ranking.fusion import (
    WEIGHT_GRID,
    Case,
    FusionWeights,
    candidate_matrix,
    scale,
    tune_weights,
    weight_vector,
)
from liverec.ranking.recalls import RECALLS


def test_scale_is_min_max() -> None:
    assert scale({"a": 3.0, "b": 1.0, "c": 2.0}) == {"a": 1.0, "b": 0.0, "c": 0.5}
    assert scale({"a": -2.0, "b": 2.0}) == {"a": 0.0, "b": 1.0}


def test_scale_single_equal_and_empty() -> None:
    assert scale({"a": 0.37}) == {"a": 1.0}
    assert scale({"a": 0.0}) == {"a": 1.0}
    assert scale({"a": 2.0, "b": 2.0}) == {"a": 1.0, "b": 1.0}
    assert scale({}) == {}


def test_candidate_matrix_scales_each_recall_and_unions_candidates() -> None:
    recalls = {"content": {"a": 3.0, "b": 1.0}, "covisit": {"c": 5.0, "a": 1.0}, "trending": {"e": 0.2}}
    ids, matrix = candidate_matrix(recalls)
    assert ids == ["a", "b", "c", "e"]
    col = {name: n for n, name in enumerate(RECALLS)}
    assert matrix[:, col["content"]].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert matrix[:, col["covisit"]].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert matrix[:, col["trending"]].tolist() == [0.0, 0.0, 0.0, 1.0]
    totals = matrix @ weight_vector({"content": 2.0, "covisit": 0.5, "trending": -1.0})
    assert totals.tolist() == [2.0, 0.0, 0.5, 0.0]  # negative weights count as zero
    assert candidate_matrix({}) == ([], pytest.approx(np.zeros((0, len(RECALLS)))))


def test_default_weights_are_one_per_recall() -> None:
    assert dict(FusionWeights().weights) == dict.fromkeys(RECALLS, 1.0)
    assert tuple(FusionWeights().weights) == RECALLS
    assert {"content", "als", "covisit", "trending", "fresh"} <= set(RECALLS)


CONTENT_OFF = {**dict.fromkeys(RECALLS, 1.0), "content": 0.0}


def _case(n: int) -> Case:
    """covisit ranks the target first, content ranks it last; other recalls say nothing."""
    t, x, y = f"t{n}", f"x{n}", f"y{n}"
    scaled: Mapping[str, Mapping[str, float]] = {
        "covisit": {t: 1.0, x: 0.5, y: 0.0},
        "content": {x: 1.0, y: 0.5, t: 0.0},
    }
    return scaled, t


def test_tune_weights_learns_to_trust_the_recall_that_finds_the_target() -> None:
    cases = [_case(n) for n in range(3)]
    tuned = tune_weights(cases)
    assert tuned.weights["covisit"] > tuned.weights["content"]
    # coordinate ascent visits content before covisit: content at 0 already puts every target first
    assert RECALLS.index("content") < RECALLS.index("covisit")
    assert dict(tuned.weights) == CONTENT_OFF
    # equal weights: t scores 1.0, x 1.5, y 0.5 -> the target is second: 1 / log2(3)
    assert dict(tuned.validation) == {
        "ndcg@10": 1.0,
        "ndcg@10_equal_weights": round(1.0 / math.log2(3.0), 5),
        "users": 3,
    }
    assert tuned.validation["ndcg@10_equal_weights"] < tuned.validation["ndcg@10"]
    for recalls, target in cases:  # the tuned weights do what the figure says
        ids, matrix = candidate_matrix(recalls)
        assert ids[int(np.argmax(matrix @ weight_vector(tuned.weights)))] == target


def test_tune_weights_keeps_weights_when_nothing_helps() -> None:
    # every recall ranks the target first already: no change can improve, ties keep the start
    cases: list[Case] = [({"covisit": {"t": 1.0, "x": 0.0}, "content": {"t": 1.0, "x": 0.5}}, "t")]
    tuned = tune_weights(cases)
    assert dict(tuned.weights) == dict.fromkeys(RECALLS, 1.0)
    assert tuned.validation["ndcg@10"] == tuned.validation["ndcg@10_equal_weights"] == 1.0


def test_tune_weights_counts_a_target_no_recall_found_as_zero() -> None:
    found, _ = _case(0)
    cases: list[Case] = [(found, "t0"), ({"content": {"a": 1.0}}, "missing")]
    tuned = tune_weights(cases)
    assert tuned.validation["ndcg@10"] == 0.5  # one case at 1.0, one impossible
    assert tuned.validation["users"] == 2
    assert set(tuned.weights.values()) <= set(WEIGHT_GRID)


def test_fusion_weights_save_load_round_trip(tmp_path: Path) -> None:
    weights = FusionWeights(
        weights={"content": 0.25, "als": 2.0, "covisit": 4.0, "trending": 0.0, "fresh": 1.0},
        validation={"ndcg@10": 0.71234, "ndcg@10_equal_weights": 0.5, "users": 12},
    )
    path = tmp_path / "fusion.json"
    weights.save(path)
    loaded = FusionWeights.load(path)
    assert loaded == weights
    assert dict(loaded.weights) == {"content": 0.25, "als": 2.0, "covisit": 4.0, "trending": 0.0, "fresh": 1.0}
    assert loaded.validation["users"] == 12


def test_fusion_weights_load_without_validation(tmp_path: Path) -> None:
    path = tmp_path / "fusion.json"
    path.write_text('{"weights": {"content": 3.0}}')
    assert FusionWeights.load(path) == FusionWeights(weights={"content": 3.0}, validation={})


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_tune_weights_result_does_not_depend_on_extra_rounds_here(rounds: int) -> None:
    tuned = tune_weights([_case(0)], rounds=rounds)
    assert dict(tuned.weights) == CONTENT_OFF

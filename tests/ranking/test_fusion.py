"""Features and linear fusion: min-max scaling, reciprocal ranks, weighted sums, and weights
learned by coordinate ascent on NDCG@10."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError
from liverec.models.base import Ranked
from liverec.ranking.features import Features, build_features, minmax
from liverec.ranking.fusion import WEIGHT_GRID, LinearFusion
from liverec.ranking.recalls import recall_names
from liverec.ranking.scoring import load_scorer, save_scorer, scorer_from_config

RECALLS = recall_names()


def ranked(scores: Mapping[str, float]) -> Ranked:
    return list(scores), np.array(list(scores.values()), dtype=np.float64)


def features(recalls: Mapping[str, Mapping[str, float]]) -> Features:
    """Features of hand-made recall lists, in the registry's recall order (as the ranker builds them)."""
    return build_features({name: ranked(recalls.get(name, {})) for name in RECALLS})


def test_minmax() -> None:
    assert minmax(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]
    assert minmax(np.array([-2.0, 2.0])).tolist() == [0.0, 1.0]
    assert minmax(np.array([0.37])).tolist() == [1.0]  # a single candidate, and equal values, get 1
    assert minmax(np.array([2.0, 2.0])).tolist() == [1.0, 1.0]
    assert minmax(np.zeros(0)).tolist() == []


def test_features_union_candidates_and_hold_each_recalls_scaled_score_and_reciprocal_rank() -> None:
    f = features({"content": {"a": 3.0, "b": 1.0}, "covisit": {"c": 5.0, "a": 1.0}, "trending": {"e": 0.2}})
    assert f.item_ids == ["a", "b", "c", "e"]  # first seen, recalls in registry order
    scores, ranks = f.block("recall_score"), f.block("recall_rank")
    assert scores.columns == ranks.columns == RECALLS
    col = {name: n for n, name in enumerate(RECALLS)}
    assert scores.values[:, col["content"]].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert scores.values[:, col["covisit"]].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert scores.values[:, col["trending"]].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert ranks.values[:, col["covisit"]].tolist() == [0.5, 0.0, 1.0, 0.0]
    assert ranks.values[:, col["content"]].tolist() == [1.0, 0.5, 0.0, 0.0]
    width = sum(len(b.columns) for b in f.blocks.values())
    assert f.matrix.shape == (4, width) and width > 2 * len(RECALLS)  # the user and item blocks too
    assert f.names[:2] == ("recall_score:content", "recall_score:session")
    assert f.sources[: 2 * len(RECALLS)] == RECALLS + RECALLS
    # without a user (no context) the other blocks are there, and say nothing
    assert not f.matrix[:, 2 * len(RECALLS) :].any() or set(np.unique(f.matrix[:, 2 * len(RECALLS):])) <= {0.0, -1.0}
    empty = features({})
    assert empty.item_ids == [] and empty.matrix.shape == (0, width)
    sub = f.subset([2, 0])  # a second stage's rows: the same values for those rows
    assert sub.item_ids == ["c", "a"]
    np.testing.assert_array_equal(sub.matrix, f.matrix[[2, 0]])


def test_linear_fusion_scores_the_weighted_sum_and_explains_it_by_recall() -> None:
    f = features({"content": {"a": 3.0, "b": 1.0}, "covisit": {"c": 5.0, "a": 1.0}, "trending": {"e": 0.2}})
    fusion = LinearFusion(weights={"content": 2.0, "covisit": 0.5, "trending": 0.0})
    assert fusion.score(f).tolist() == [2.0, 0.0, 0.5, 0.0]
    assert fusion.contributions(f, [0, 2, 3]) == [{"content": 2.0}, {"covisit": 0.5}, {}]
    # unfitted and unweighted: every recall weighs 1
    assert LinearFusion().score(f).tolist() == [1.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize(("weights", "field"), [
    ({"nope": 1.0}, "weights.nope"),
    ({"als": -1.0}, "weights.als"),
    ({"als": float("nan")}, "weights.als"),
    ({"als": True}, "weights.als"),
    ({"als": 0.0, "content": 0.0}, "weights"),
])
def test_bad_weights_are_refused_naming_the_field(weights: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        LinearFusion(weights=weights)
    assert info.value.field == field


CONTENT_OFF = {**dict.fromkeys(RECALLS, 1.0), "content": 0.0}


def _case(n: int) -> tuple[Features, str]:
    """covisit ranks the target first, content ranks it last; other recalls say nothing."""
    t, x, y = f"t{n}", f"x{n}", f"y{n}"
    return features({"covisit": {t: 1.0, x: 0.5, y: 0.0}, "content": {x: 1.0, y: 0.5, t: 0.0}}), t


def test_fit_learns_to_trust_the_recall_that_finds_the_target() -> None:
    cases = [_case(n) for n in range(3)]
    tuned = LinearFusion().fit(cases)
    assert tuned.weights_["covisit"] > tuned.weights_["content"]
    # coordinate ascent visits content before covisit: content at 0 already puts every target first
    assert RECALLS.index("content") < RECALLS.index("covisit")
    assert tuned.weights_ == CONTENT_OFF
    # equal weights: t scores 1.0, x 1.5, y 0.5 -> the target is second: 1 / log2(3)
    assert tuned.validation_ == {"ndcg@10": 1.0, "ndcg@10_equal_weights": round(1.0 / math.log2(3.0), 5), "users": 3}
    for f, target in cases:  # the tuned weights do what the figure says
        assert f.item_ids[int(np.argmax(tuned.score(f)))] == target
    assert tuned.describe() == {"kind": "linear", "weights": CONTENT_OFF, "validation": tuned.validation_}


def test_fit_keeps_weights_when_nothing_helps() -> None:
    # every recall ranks the target first already: no change can improve, ties keep the start
    cases = [(features({"covisit": {"t": 1.0, "x": 0.0}, "content": {"t": 1.0, "x": 0.5}}), "t")]
    tuned = LinearFusion().fit(cases)
    assert tuned.weights_ == dict.fromkeys(RECALLS, 1.0)
    assert tuned.validation_["ndcg@10"] == tuned.validation_["ndcg@10_equal_weights"] == 1.0


def test_fit_counts_a_target_no_recall_found_as_zero() -> None:
    found, _ = _case(0)
    cases = [(found, "t0"), (features({"content": {"a": 1.0}}), "missing")]
    tuned = LinearFusion().fit(cases)
    assert tuned.validation_["ndcg@10"] == 0.5  # one case at 1.0, one impossible
    assert tuned.validation_["users"] == 2
    assert set(tuned.weights_.values()) <= set(WEIGHT_GRID)


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_fit_result_does_not_depend_on_extra_rounds_here(rounds: int) -> None:
    assert LinearFusion(rounds=rounds).fit([_case(0)]).weights_ == CONTENT_OFF


def _content_case(n: int) -> tuple[Features, str]:
    """Equal weights rank the target first; any less weight on content puts it second."""
    t, x, y = f"c{n}", f"d{n}", f"e{n}"
    return features({"content": {t: 1.0, x: 0.0}, "covisit": {x: 1.0, t: 0.5, y: 0.0}}), t


def test_with_a_caution_a_gain_within_the_noise_of_few_users_leaves_the_weights_be() -> None:
    # less content lifts three users' targets from second to first and drops two users' as far:
    # a mean gain of 0.07 NDCG, within its standard error (0.18) on five users
    few = [_case(n) for n in range(3)] + [_content_case(n) for n in range(2)]
    assert LinearFusion(caution=1).fit(few).weights_ == dict.fromkeys(RECALLS, 1.0)
    assert LinearFusion().fit(few).weights_["content"] < 1.0  # the default takes any gain: it moves
    # the same split among 50 users is beyond the noise (standard error 0.05): the step is taken
    many = [_case(n) for n in range(30)] + [_content_case(n) for n in range(20)]
    assert LinearFusion(caution=1).fit(many).weights_["content"] < 1.0


def test_save_load_round_trip_through_the_scorer_registry(tmp_path: Path) -> None:
    tuned = LinearFusion(rounds=1).fit([_case(0), _case(1)])
    save_scorer(tuned, tmp_path / "scorer")
    loaded = load_scorer(tmp_path / "scorer")
    assert isinstance(loaded, LinearFusion)
    assert (loaded.weights_, loaded.validation_, loaded.rounds) == (tuned.weights_, tuned.validation_, 1)
    f, _ = _case(7)
    assert loaded.score(f).tolist() == tuned.score(f).tolist()
    unfitted = LinearFusion(weights={"als": 2.0})
    save_scorer(unfitted, tmp_path / "fixed")
    assert load_scorer(tmp_path / "fixed").describe() == unfitted.describe()


def test_a_snapshot_of_format_1_loads_its_fusion_json(tmp_path: Path) -> None:
    path = tmp_path / "fusion.json"
    path.write_text('{"weights": {"content": 3.0}}')
    legacy = LinearFusion.from_fusion_json(path)
    assert (legacy.weights_, legacy.validation_) == ({"content": 3.0}, {})


def test_scorer_configs_name_a_registered_kind_and_its_parameters() -> None:
    scorer = scorer_from_config({"kind": "linear", "weights": {"als": 2.0}})
    assert isinstance(scorer, LinearFusion) and scorer.weights == {"als": 2.0}
    assert isinstance(scorer_from_config(None), LinearFusion)
    with pytest.raises(InvalidInputError, match="scorer kind 'xgboost' is not one of linear, gbdt") as info:
        scorer_from_config({"kind": "xgboost"})
    assert info.value.field == "scorer.kind"
    with pytest.raises(InvalidInputError, match="has no parameter 'wieghts'") as info:
        scorer_from_config({"wieghts": {}}, where="variants[1].scorer")
    assert info.value.field == "variants[1].scorer.wieghts"
    with pytest.raises(InvalidInputError) as info:
        scorer_from_config({"weights": {"nope": 1.0}}, where="variants[0].scorer")
    assert info.value.field == "variants[0].scorer.weights.nope"

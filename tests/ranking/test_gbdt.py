"""The learned ranker: trees exported from LightGBM score and explain as LightGBM does, and the
ranker keeps them only when the held-out users say they beat fusion."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pytest

from liverec.ranking.features import Features, build_features
from liverec.ranking.gbdt import GBDTRanker, TreeEnsemble
from liverec.ranking.recalls import recall_names
from liverec.ranking.scoring import load_scorer, save_scorer


@pytest.fixture(scope="module")
def booster() -> lightgbm.Booster:
    rng = np.random.default_rng(0)
    x = rng.random((3000, 6))
    y = (x[:, 0] > 0.5) * 2.0 + x[:, 1] * x[:, 2] + rng.normal(0, 0.1, 3000)
    return lightgbm.train({"objective": "regression", "num_leaves": 15, "max_depth": 6, "verbose": -1,
                           "num_threads": 1, "seed": 0}, lightgbm.Dataset(x, y), num_boost_round=40)


def test_the_exported_trees_predict_what_lightgbm_predicts(booster: lightgbm.Booster) -> None:
    trees = TreeEnsemble.from_lightgbm(booster)
    x = np.random.default_rng(1).random((500, 6))
    assert trees.predict(x) == pytest.approx(booster.predict(x, raw_score=True), abs=1e-9)
    assert trees.predict(np.zeros((0, 6))).shape == (0,)


def test_each_row_s_shares_and_the_bias_add_up_to_its_output(booster: lightgbm.Booster) -> None:
    trees = TreeEnsemble.from_lightgbm(booster)
    x = np.random.default_rng(2).random((20, 6))
    shares, bias = trees.contributions(x)
    assert shares.sum(axis=1) + bias == pytest.approx(trees.predict(x), abs=1e-9)
    # feature 0 decides most of the output: its share has the largest spread over rows
    assert int(np.argmax(shares.std(axis=0))) == 0
    assert trees.contributions(np.zeros((0, 6)))[0].shape == (0, 6)


def _case(n: int, rng: np.random.Generator) -> tuple[Features, str]:
    """The target is the only item in both the content and the co-visitation lists, low in each;
    decoys lead one list each, so no weighted sum of the two puts the target first (it scores
    0.3 of each list's range, a decoy 1 of one)."""
    t, x, y = f"t{n}", f"x{n}", f"y{n}"
    noise = [f"n{n}-{j}" for j in range(6)]
    lists = {
        "content": ([x, noise[0], noise[1], t, noise[2]], np.array([1.0, 0.8, 0.5, 0.3, 0.0]) + rng.normal(0, 0.01, 5)),
        "covisit": ([y, noise[3], noise[4], t, noise[5]], np.array([1.0, 0.8, 0.5, 0.3, 0.0]) + rng.normal(0, 0.01, 5)),
    }
    recalls = {name: lists.get(name, ([], np.zeros(0))) for name in recall_names()}
    return build_features(recalls), t


def test_trees_are_chosen_when_they_beat_fusion_on_held_out_users(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    cases = [_case(n, rng) for n in range(240)]
    ranker = GBDTRanker(trees=80, threads=1, min_child_samples=5).fit(cases)
    validation = ranker.describe()["validation"]
    assert validation["chosen"] == "trees"
    assert validation["ndcg@10_trees"] > validation["ndcg@10_linear"]
    assert validation["ndcg@10_trees"] == 1.0  # the interaction is learnt exactly
    for features, target in [_case(n, rng) for n in range(1000, 1020)]:
        scores = ranker.score(features)
        assert features.item_ids[int(np.argmax(scores))] == target
        assert scores.max() > 0
        row = features.item_ids.index(target)
        [parts] = ranker.contributions(features, [row])
        assert set(parts) <= set(recall_names()) and max(parts.values()) > 0
    save_scorer(ranker, tmp_path / "scorer")
    loaded = load_scorer(tmp_path / "scorer")
    features, _ = _case(2000, rng)
    assert loaded.score(features).tolist() == ranker.score(features).tolist()
    assert loaded.describe() == ranker.describe()


def test_trees_must_beat_fusion_beyond_the_noise_of_the_held_out_users() -> None:
    """The world above, where only trees rank the target first, with a third of the users whose
    target leads both lists (either scorer ranks it first): trees win on the mean, by a gain that
    varies over users, and are taken only when it exceeds ``caution`` standard errors."""
    rng = np.random.default_rng(5)

    def easy(n: int) -> tuple[Features, str]:
        t, x = f"t{n}", f"x{n}"
        lists = {"content": ([t, x], np.array([0.9, 0.1])), "covisit": ([t, x], np.array([0.8, 0.2]))}
        return build_features({name: lists.get(name, ([], np.zeros(0))) for name in recall_names()}), t

    cases = [_case(n, rng) if n % 3 else easy(n) for n in range(240)]
    fitted = {caution: GBDTRanker(trees=80, threads=1, min_child_samples=5, caution=caution).fit(cases)
              for caution in (0.0, 1.0, 1e6)}
    gain = fitted[0.0].describe()["validation"]
    assert gain["ndcg@10_trees"] > gain["ndcg@10_linear"]
    assert [fitted[c].describe()["validation"]["chosen"] for c in (0.0, 1.0, 1e6)] == ["trees", "trees", "linear"]


def test_validation_breaks_ties_against_the_target() -> None:
    """Trees that give every candidate one score (a single leaf) rank nothing: validation must not
    credit them with the target first, or a one-tree ensemble of few leaves wins validation on its
    ties and serves at random among them. Fusion's ties count the same way."""
    rng = np.random.default_rng(6)
    ranker = GBDTRanker(trees=20, threads=1, min_child_samples=5).fit([_case(n, rng) for n in range(60)])
    leaf = TreeEnsemble(np.array([-1]), np.zeros(1), np.array([0]), np.array([0]), np.array([0.5]),
                        np.array([0]), 0)
    features, target = _case(999, rng)
    candidates = len(ranker._top(features))
    assert candidates > 1 and ranker._rank_cascade(features, target, leaf) == candidates - 1
    alike = build_features({name: (["decoy", "t"], np.array([1.0, 1.0])) for name in recall_names()})
    assert ranker._rank_linear(alike, "t") == 1


def test_fusion_is_kept_when_the_trees_do_not_beat_it() -> None:
    rng = np.random.default_rng(4)

    def linear_case(n: int) -> tuple[Features, str]:
        t, x = f"t{n}", f"x{n}"
        lists = {"content": ([t, x], np.array([0.9, 0.1])), "covisit": ([t, x], np.array([0.8, 0.2]))}
        return build_features({name: lists.get(name, ([], np.zeros(0))) for name in recall_names()}), t

    ranker = GBDTRanker(trees=20, threads=1).fit([linear_case(n) for n in range(100)])
    assert ranker.describe()["validation"]["chosen"] == "linear"  # fusion is already perfect: no tie-break to trees
    features, target = linear_case(999)
    assert features.item_ids[int(np.argmax(ranker.score(features)))] == target
    assert rng is not None


def test_a_store_with_no_validation_user_trains_saves_and_serves(tmp_path: Path) -> None:
    """The README's first snippet (two items, one user): no validation case, so the cascade is never
    fitted; it must still save (it raised AttributeError on ``names_``) and serve its default fusion."""
    from liverec.engine import Engine

    engine = Engine.open(f"sqlite:///{tmp_path}/shop.db")
    try:
        engine.ingest_items([{"item_id": "i1", "title": "Ultralight trekking poles", "categories": ["hiking"]},
                             {"item_id": "i2", "title": "轻薄笔记本电脑 14英寸", "categories": ["laptops"]}])
        engine.ingest_events([{"user_id": "u1", "type": "view", "item_id": "i1"}])
        report = engine.train()
        assert report.validation_users == 0
        assert [r.item_id for r in engine.recommend("u1", k=2)] == ["i2"]  # i1 was seen
    finally:
        engine.close()
    unfitted = GBDTRanker()
    save_scorer(unfitted, tmp_path / "scorer")
    again = load_scorer(tmp_path / "scorer")
    assert isinstance(again, GBDTRanker) and again.ensemble_ is None and again.names_ == ()

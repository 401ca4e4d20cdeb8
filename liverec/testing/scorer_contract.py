"""The contract every :class:`~liverec.ranking.scoring.Scorer` keeps, as one reusable test suite.

Subclass :class:`ScorerContract` and provide a ``scorer_factory`` fixture::

    class TestLinearFusion(ScorerContract):
        @pytest.fixture
        def scorer_factory(self):
            return LinearFusion

The cases are hand-made features whose right answer is known: in every case the co-visitation
recall puts the item the user acted on next first and the content recall puts it last, so any
scorer that learns must rank the target first on new cases of the same kind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from liverec.ranking.features import Features, build_features
from liverec.ranking.recalls import recall_names
from liverec.ranking.scoring import SCORERS, Case, Scorer, load_scorer, save_scorer

ScorerFactory = Callable[[], Scorer]


def make_case(n: int) -> Case:
    """Co-visitation finds the target first, content finds it last; trending proposes noise."""
    target, near, far, noise = f"t{n}", f"x{n}", f"y{n}", f"z{n}"
    lists = {
        "covisit": ([target, near, far], np.array([0.9, 0.5, 0.1])),
        "content": ([near, far, target], np.array([0.8, 0.6, 0.2])),
        "trending": ([noise, near], np.array([5.0, 1.0])),
    }
    recalls = {name: lists.get(name, ([], np.zeros(0))) for name in recall_names()}
    return build_features(recalls), target


def make_cases(start: int, count: int) -> list[Case]:
    return [make_case(n) for n in range(start, start + count)]


class ScorerContract:
    """Tests every scorer must pass; subclasses override :meth:`scorer_factory`."""

    #: Whether an item's contributions add up to its score (true of linear and of tree SHAP values).
    additive: ClassVar[bool] = True

    @pytest.fixture
    def scorer_factory(self) -> ScorerFactory:
        raise NotImplementedError("subclasses provide the scorer under test")

    @pytest.fixture
    def fitted(self, scorer_factory: ScorerFactory) -> Scorer:
        return scorer_factory().fit(make_cases(0, 20))

    def test_is_a_registered_scorer(self, scorer_factory: ScorerFactory) -> None:
        scorer = scorer_factory()
        assert isinstance(scorer, Scorer)
        assert SCORERS[scorer.kind] is type(scorer)

    def test_fit_returns_self(self, scorer_factory: ScorerFactory) -> None:
        scorer = scorer_factory()
        assert scorer.fit(make_cases(0, 5)) is scorer

    def test_scores_one_float_per_row(self, fitted: Scorer) -> None:
        features, _ = make_case(99)
        scores = fitted.score(features)
        assert scores.shape == (len(features),) and scores.dtype == np.float64
        assert np.isfinite(scores).all()

    def test_learns_to_rank_the_target_first_on_new_cases(self, fitted: Scorer) -> None:
        for features, target in make_cases(100, 10):
            scores = fitted.score(features)
            assert features.item_ids[int(np.argmax(scores))] == target
            assert scores.max() > 0  # a listed item scores above zero

    def test_contributions_name_sources_for_the_rows_asked(self, fitted: Scorer) -> None:
        features, target = make_case(7)
        rows = [features.item_ids.index(target), 0]
        parts = fitted.contributions(features, rows)
        assert len(parts) == 2
        assert "covisit" in parts[0]  # what put the target first is named
        assert all(source in recall_names() for part in parts for source in part)
        assert all(value != 0 for part in parts for value in part.values())

    def test_contributions_add_up_to_the_score(self, fitted: Scorer) -> None:
        if not self.additive:
            pytest.skip("this scorer's contributions are not additive")
        features, _ = make_case(8)
        scores = fitted.score(features)
        parts = fitted.contributions(features, list(range(len(features))))
        assert [sum(p.values()) for p in parts] == pytest.approx(scores.tolist())

    def test_save_and_load_give_the_same_scores(self, fitted: Scorer, tmp_path: Path) -> None:
        save_scorer(fitted, tmp_path / "scorer")
        loaded = load_scorer(tmp_path / "scorer")
        assert type(loaded) is type(fitted)
        assert loaded.describe() == fitted.describe()
        for features, _ in make_cases(200, 3):
            assert loaded.score(features).tolist() == fitted.score(features).tolist()

    def test_the_same_cases_give_the_same_scorer(self, scorer_factory: ScorerFactory) -> None:
        a, b = scorer_factory().fit(make_cases(0, 10)), scorer_factory().fit(make_cases(0, 10))
        features: Features = make_case(300)[0]
        assert a.score(features).tolist() == b.score(features).tolist()

    def test_describe_names_its_kind(self, fitted: Scorer) -> None:
        assert fitted.describe()["kind"] == fitted.kind

    def test_no_cases_and_no_candidates_are_harmless(self, scorer_factory: ScorerFactory) -> None:
        scorer = scorer_factory().fit([])
        empty = build_features({name: ([], np.zeros(0)) for name in recall_names()})
        assert scorer.score(empty).shape == (0,)
        assert scorer.contributions(empty, []) == []

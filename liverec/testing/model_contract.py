"""One behaviour suite that every model in ``liverec.models`` must pass.

Subclass :class:`ModelContract` in a test module and provide a ``model_factory`` fixture::

    class TestMyModel(ModelContract):
        @pytest.fixture
        def model_factory(self):
            return lambda: MyModel(seed=3)

The default ``data`` fixture is :func:`checkerboard_data` (implicit's checkerboard idea): two
disjoint item groups whose users and text vectors never mix, so for any model with a notion
of items the right answer is known and exact ids are asserted. A model without that notion
(popularity) sets ``separates_groups = False``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError, NotTrainedError
from liverec.core.types import DEFAULT_EVENT_WEIGHTS, Event, EventType
from liverec.models.base import Model, TrainingData, UserKeyedModel

GROUP_A = tuple(f"a{j}" for j in range(5))
GROUP_B = tuple(f"b{j}" for j in range(5))
CHECKERBOARD_DIM = 8
CHECKERBOARD_NOW = 100_000.0

ModelFactory = Callable[[], Model]


def checkerboard_vectors() -> np.ndarray:
    """Unit vectors: group A leans on axis 0, group B on axis 1, each item has its own small axis."""
    vectors = np.zeros((len(GROUP_A) + len(GROUP_B), CHECKERBOARD_DIM), dtype=np.float32)
    for j in range(len(GROUP_A)):
        vectors[j, 0] = 1.0
        vectors[len(GROUP_A) + j, 1] = 1.0
        vectors[[j, len(GROUP_A) + j], 2 + j] = 0.3
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def checkerboard_events() -> list[Event]:
    """Four users view all of group A, four all of group B, each in a rotated order a minute apart.

    Events are interleaved across users and in time order, as in an event log. One dismissal
    per group and one search are mixed in: no model may learn a positive signal from them.
    """
    events = []
    for u in range(8):
        group = GROUP_A if u < 4 else GROUP_B
        start = 10_000.0 * u
        for step in range(len(group)):
            item_id = group[(u + step) % len(group)]
            events.append(Event.create(f"u{u}", EventType.VIEW, item_id, timestamp=start + 60.0 * step))
    events.append(Event.create("u8", EventType.DISMISS, "a0", timestamp=85_000.0))
    events.append(Event.create("u9", EventType.DISMISS, "b0", timestamp=85_001.0))
    events.append(Event.create("u9", EventType.SEARCH, text="trail shoes", timestamp=85_002.0))
    return sorted(events, key=lambda e: e.timestamp)


def checkerboard_data() -> TrainingData:
    return TrainingData.from_events(
        checkerboard_events(),
        list(GROUP_A + GROUP_B),
        checkerboard_vectors(),
        DEFAULT_EVENT_WEIGHTS,
        now=CHECKERBOARD_NOW,
    )


def _ids(scored: list[tuple[str, float]]) -> list[str]:
    return [item_id for item_id, _ in scored]


class ModelContract:
    """The behaviour every model keeps; subclass it and override ``model_factory``."""

    separates_groups: ClassVar[bool] = True
    history: ClassVar[list[tuple[str, float]]] = [("a0", 1.0), ("a1", 1.0)]

    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        raise NotImplementedError("override the model_factory fixture")

    @pytest.fixture
    def data(self) -> TrainingData:
        return checkerboard_data()

    @pytest.fixture
    def fitted(self, model_factory: ModelFactory, data: TrainingData) -> Model:
        return model_factory().fit(data)

    def test_is_a_registered_model(self, model_factory: ModelFactory) -> None:
        from liverec.models import MODELS

        model = model_factory()
        assert isinstance(model, Model)
        assert MODELS[model.name] is type(model)

    def test_fit_returns_self(self, model_factory: ModelFactory, data: TrainingData) -> None:
        model = model_factory()
        assert model.fit(data) is model

    def test_use_before_fit_raises(self, model_factory: ModelFactory, tmp_path: Path) -> None:
        model = model_factory()
        with pytest.raises(NotTrainedError):
            model.recommend(self.history)
        with pytest.raises(NotTrainedError):
            model.similar_items("a0")
        with pytest.raises(NotTrainedError):
            model.save(tmp_path / "model")

    @pytest.mark.parametrize("k", [0, 1, 3, 50])
    def test_recommend_returns_at_most_k_sorted(self, fitted: Model, k: int) -> None:
        result = fitted.recommend(self.history, k=k)
        assert len(result) <= k
        scores = [score for _, score in result]
        assert scores == sorted(scores, reverse=True)
        assert len(set(_ids(result))) == len(result)
        assert all(isinstance(item_id, str) and isinstance(score, float) for item_id, score in result)

    def test_recommend_never_returns_excluded(self, fitted: Model) -> None:
        everything = fitted.recommend(self.history, k=50)
        assert everything, "the checkerboard history should yield some recommendation"
        excluded = {everything[0][0], "a4", "b3"}
        result = fitted.recommend(self.history, k=50, exclude=excluded)
        assert not excluded & set(_ids(result))
        assert fitted.recommend(self.history, k=50, exclude=list(GROUP_A + GROUP_B)) == []

    def test_unknown_history_items_are_ignored(self, fitted: Model) -> None:
        with_unknown = [("nope", 5.0), *self.history, ("missing", 1.0)]
        assert fitted.recommend(with_unknown, k=5) == fitted.recommend(self.history, k=5)
        assert len(fitted.recommend([("nope", 1.0)], k=5)) <= 5

    def test_similar_items_never_self_and_empty_for_unknown(self, fitted: Model) -> None:
        for item_id in ("a0", "b2"):
            result = fitted.similar_items(item_id, k=20)
            assert item_id not in _ids(result)
            assert len(result) <= 9
            scores = [score for _, score in result]
            assert scores == sorted(scores, reverse=True)
        assert fitted.similar_items("no-such-item") == []
        assert fitted.similar_items("a0", k=0) == []

    def test_save_load_gives_identical_outputs(self, fitted: Model, tmp_path: Path) -> None:
        fitted.save(tmp_path / "model")
        loaded = type(fitted).load(tmp_path / "model")
        assert loaded.name == fitted.name
        for history in (self.history, [("b4", 3.0)], [("a2", 1.0), ("b1", -3.0)]):
            assert loaded.recommend(history, k=6, exclude={"a3"}) == fitted.recommend(history, k=6, exclude={"a3"})
        for item_id in GROUP_A + GROUP_B:
            assert loaded.similar_items(item_id, k=4) == fitted.similar_items(item_id, k=4)

    def test_erased_users_leave_no_trace_in_what_is_saved(self, model_factory: ModelFactory, tmp_path: Path) -> None:
        """A model that keeps anything per user is a UserKeyedModel, and forgets it on erasure; no
        other model may save a user id at all."""
        events = [dataclasses.replace(e, user_id=f"erasable-{e.user_id}") for e in checkerboard_events()]
        data = TrainingData.from_events(events, list(GROUP_A + GROUP_B), checkerboard_vectors(),
                                        DEFAULT_EVENT_WEIGHTS, now=CHECKERBOARD_NOW)
        model = model_factory().fit(data)
        erased = {"erasable-u0", "erasable-u5"}
        if isinstance(model, UserKeyedModel):
            assert erased <= set(model.known_users())
            assert model.forget_users([*erased, "never-seen"]) == 2
            assert not erased & set(model.known_users())
        model.save(tmp_path / "model")
        for path in (tmp_path / "model").rglob("*"):
            if path.is_file():
                saved = path.read_bytes()
                assert not [u for u in erased if u.encode() in saved], f"{path.name} keeps an erased user"
        loaded = type(model).load(tmp_path / "model")
        if isinstance(loaded, UserKeyedModel):
            assert not erased & set(loaded.known_users())
            assert "erasable-u1" in loaded.known_users()
        assert loaded.recommend(self.history, k=6) == model.recommend(self.history, k=6)

    def test_same_seed_same_output(self, model_factory: ModelFactory, data: TrainingData) -> None:
        first, second = model_factory().fit(data), model_factory().fit(data)
        assert first.recommend(self.history, k=8) == second.recommend(self.history, k=8)
        assert first.similar_items("b1", k=8) == second.similar_items("b1", k=8)

    def test_group_a_history_recommends_group_a(self, fitted: Model) -> None:
        if not self.separates_groups:
            pytest.skip(f"{fitted.name} has no notion of similar items")
        assert set(_ids(fitted.recommend(self.history, k=3))) == {"a2", "a3", "a4"}
        assert set(_ids(fitted.recommend([("b0", 1.0)], k=4))) == {"b1", "b2", "b3", "b4"}

    def test_similar_items_stay_in_group(self, fitted: Model) -> None:
        if not self.separates_groups:
            assert fitted.similar_items("a0") == []
            return
        assert set(_ids(fitted.similar_items("a0", k=4))) == {"a1", "a2", "a3", "a4"}
        assert set(_ids(fitted.similar_items("b3", k=4))) == {"b0", "b1", "b2", "b4"}

    def test_bad_history_weight_is_named(self, fitted: Model) -> None:
        if not self.separates_groups:
            pytest.skip(f"{fitted.name} ignores history")
        with pytest.raises(InvalidInputError, match="'a1'"):
            fitted.recommend([("a0", 1.0), ("a1", float("nan"))])

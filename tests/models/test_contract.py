"""Every model against the shared contract in ``liverec.testing.model_contract``."""

from __future__ import annotations

import pytest

from liverec.core.types import DEFAULT_EVENT_WEIGHTS, Event, EventType
from liverec.models import (
    ALSRecommender,
    ClickThrough,
    ContentModel,
    CoVisitation,
    SequenceModel,
    TrendingPopularity,
)
from liverec.models.base import TrainingData
from liverec.testing.model_contract import (
    CHECKERBOARD_NOW,
    GROUP_A,
    GROUP_B,
    ModelContract,
    ModelFactory,
    checkerboard_events,
    checkerboard_vectors,
)


class TestTrendingContract(ModelContract):
    separates_groups = False

    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        return lambda: TrendingPopularity(half_life=3600.0)


class TestClickThroughContract(ModelContract):
    separates_groups = False

    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        return lambda: ClickThrough(half_life=3600.0)

    @pytest.fixture
    def data(self) -> TrainingData:
        """The checkerboard with every item shown a few times and some clicked, so there are rates."""
        extra = [Event.create(f"u{n % 7}", EventType.IMPRESSION, item, timestamp=80_000.0 + 10 * n + k)
                 for n, item in enumerate(GROUP_A + GROUP_B) for k in range(3)]
        extra += [Event.create("u1", EventType.CLICK, item, timestamp=80_500.0 + n)
                  for n, item in enumerate(GROUP_A[:3])]
        events = sorted(checkerboard_events() + extra, key=lambda e: e.timestamp)
        return TrainingData.from_events(events, list(GROUP_A + GROUP_B), checkerboard_vectors(),
                                        DEFAULT_EVENT_WEIGHTS, now=CHECKERBOARD_NOW)


class TestCoVisitationContract(ModelContract):
    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        return lambda: CoVisitation()


class TestALSContract(ModelContract):
    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        return lambda: ALSRecommender(factors=4, regularization=0.01, iterations=10, seed=7)


class TestContentFlatContract(ModelContract):
    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        return lambda: ContentModel(index="flat")


class TestContentHNSWContract(ModelContract):
    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        return lambda: ContentModel(index="hnsw", hnsw_m=4)


class TestSequenceContract(ModelContract):
    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        return lambda: SequenceModel(dim=16, heads=2, max_epochs=40, patience=40, validation_users=2, threads=1,
                                     dropout=0.1, lr=3e-3, seed=5)


class TestSequenceSampledSoftmaxContract(ModelContract):
    """The loss a large catalog trains with (sampled negatives, only the rows a step reads embedded)."""

    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        return lambda: SequenceModel(dim=16, heads=2, max_epochs=40, patience=40, validation_users=2, threads=1,
                                     dropout=0.1, lr=3e-3, seed=5, full_softmax_items=1, negatives=8)

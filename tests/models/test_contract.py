"""Every model against the shared contract in ``liverec.testing.model_contract``."""

from __future__ import annotations

import pytest

from liverec.models import ALSRecommender, ContentModel, CoVisitation, SequenceModel, TrendingPopularity
from liverec.testing.model_contract import ModelContract, ModelFactory


class TestTrendingContract(ModelContract):
    separates_groups = False

    @pytest.fixture
    def model_factory(self) -> ModelFactory:
        return lambda: TrendingPopularity(half_life=3600.0)


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

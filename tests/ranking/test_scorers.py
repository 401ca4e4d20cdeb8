"""Every registered scorer against the shared contract in ``liverec.testing.scorer_contract``."""

from __future__ import annotations

import pytest

from liverec.ranking.fusion import LinearFusion
from liverec.ranking.gbdt import GBDTRanker
from liverec.testing.scorer_contract import ScorerContract, ScorerFactory


class TestLinearFusionContract(ScorerContract):
    @pytest.fixture
    def scorer_factory(self) -> ScorerFactory:
        return LinearFusion


class TestGBDTRankerContract(ScorerContract):
    additive = False  # the trees' rows are shifted above fusion's: shares explain, they do not add up

    @pytest.fixture
    def scorer_factory(self) -> ScorerFactory:
        return lambda: GBDTRanker(trees=50, threads=1)

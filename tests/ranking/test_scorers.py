"""Every registered scorer against the shared contract in ``liverec.testing.scorer_contract``."""

from __future__ import annotations

import pytest

from liverec.ranking.fusion import LinearFusion
from liverec.testing.scorer_contract import ScorerContract, ScorerFactory


class TestLinearFusionContract(ScorerContract):
    @pytest.fixture
    def scorer_factory(self) -> ScorerFactory:
        return LinearFusion

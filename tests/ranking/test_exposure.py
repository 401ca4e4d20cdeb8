"""The exposure control (issue 19): popularity calibration of each list against its user's history."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from liverec.core.errors import InvalidInputError
from liverec.core.settings import Settings
from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from liverec.models.base import TrainingData
from liverec.models.popularity import TrendingPopularity
from liverec.ranking.exposure import groups_of, js_divergence, shares


def _trending(weights: list[float]) -> TrendingPopularity:
    n = len(weights)
    data = TrainingData([f"i{k}" for k in range(n)], ["u"], sp.csr_matrix((1, n), dtype=np.float32),
                        np.zeros(n, np.int32), np.arange(n, dtype=np.int32), np.array(weights, np.float32),
                        np.full(n, 100.0), np.zeros((n, 1), np.float32), now=100.0)
    return TrendingPopularity(half_life=50.0).fit(data)


def test_quantiles_rank_items_by_popularity_now() -> None:
    model = _trending([5.0, 1.0, 0.0, 3.0])
    q = model.quantiles(["i0", "i1", "i2", "i3", "unknown"])
    assert q.tolist() == [0.75, 0.25, 0.0, 0.5, 0.0]  # the share of items trending less; unknown: the tail


def test_quantiles_follow_new_events_after_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("liverec.models.popularity.time.monotonic", lambda: clock[0])
    model = _trending([5.0, 1.0, 0.0, 3.0])
    assert model.quantiles(["i3"])[0] == 0.5
    model.update("i1", 100.0, timestamp=100.0)  # i1 overtakes i3
    assert model.quantiles(["i3"])[0] == 0.5  # the table is at most a second old ...
    clock[0] += 1.0
    assert model.quantiles(["i3", "i1"]).tolist() == [0.25, 0.75]  # ... then i3 is behind i1 too


def test_exposure_must_lie_between_0_and_1(engine: Engine) -> None:
    with pytest.raises(InvalidInputError, match="exposure"):
        engine.recommend("u0", exposure=1.5)
    with pytest.raises(InvalidInputError, match="exposure"):
        Settings(exposure=-0.1)


def test_calibration_brings_each_list_to_its_users_popularity_mix(engine: Engine, world: DemoWorld) -> None:
    assert engine.snapshot is not None
    trending = engine.snapshot.models["trending"]
    users = sorted({e.user_id for e in world.events})[:60]
    now = max(e.timestamp for e in world.events) + 60

    def miscalibration(strength: float) -> float:
        values = []
        for user in users:
            ids = [r.item_id for r in engine.recommend(user, k=10, now=now, exposure=strength)]
            assert len(ids) == 10
            had = [a.item_id for a in engine.state(user).positive_actions() if a.item_id]
            mine, theirs = shares(groups_of(trending.quantiles(had))), shares(groups_of(trending.quantiles(ids)))
            values.append(float(js_divergence(mine, theirs[None, :])[0]))
        return float(np.mean(values))

    off, on = miscalibration(0.0), miscalibration(1.0)
    assert on < 0.7 * off  # the lists' mix of head, middle and tail is far nearer their users'
    assert miscalibration(engine.settings.exposure) == pytest.approx(off)  # the setting: off by default


def test_no_calibration_without_a_history(engine: Engine) -> None:
    cold = [r.item_id for r in engine.recommend("nobody-yet", k=10)]
    assert [r.item_id for r in engine.recommend("nobody-yet", k=10, exposure=1.0)] == cold

"""TrendingPopularity.update_many: a batch gives the model that one update per event gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liverec.core.errors import InvalidInputError
from liverec.models import TrendingPopularity
from liverec.testing.model_contract import checkerboard_data

T0 = checkerboard_data().now  # the fitted models' reference time

events = st.lists(
    st.tuples(
        st.sampled_from(["a0", "b1", "b4", "new1", "new2"]),
        st.sampled_from([2.0, 1.0, 0.5, 0.0, -3.0]),
        # Before and after the reference time; with a half-life of 1 s, past 60 s rebases.
        st.integers(-100, 300).map(lambda dt: T0 + dt),
    ),
    max_size=30,
)


def _fitted(half_life: float) -> TrendingPopularity:
    return TrendingPopularity(half_life=half_life).fit(checkerboard_data())


def _assert_same(batched: TrendingPopularity, single: TrendingPopularity) -> None:
    assert batched.item_ids_ == single.item_ids_
    assert batched.item_index_ == single.item_index_
    assert (batched.t_ref_, batched.now_) == (single.t_ref_, single.now_)
    np.testing.assert_allclose(batched.reference_sums_, single.reference_sums_, rtol=1e-12, atol=0.0)
    assert batched._sums[len(batched.item_ids_) :].sum() == 0.0  # the spare buffer stays empty


@pytest.mark.parametrize("half_life", [1.0, 1000.0])
@settings(max_examples=100, deadline=None)
@given(batch=events, in_time_order=st.booleans())
def test_update_many_equals_one_update_per_event(
    half_life: float, batch: list[tuple[str, float, float]], in_time_order: bool
) -> None:
    if in_time_order:
        batch = sorted(batch, key=lambda e: e[2])
    single, batched = _fitted(half_life), _fitted(half_life)
    for item_id, weight, timestamp in batch:
        single.update(item_id, weight, timestamp)
    batched.update_many([e[0] for e in batch], [e[1] for e in batch], [e[2] for e in batch])
    _assert_same(batched, single)


def test_update_many_by_hand() -> None:
    model = TrendingPopularity(half_life=1.0).fit(checkerboard_data())
    t0, before = model.t_ref_, model.scores()
    model.update_many(["fresh", "fresh", "x", "fresh"], [1.0, 2.0, -3.0, 0.0], [t0 + 1, t0 + 2, t0 + 3, t0 + 4])
    assert model.now_ == t0 + 2  # only positive events move the clock, as in update
    assert "x" not in model.item_index_  # a dismissal does not make an item trend
    scores = model.scores()
    assert scores["fresh"] == pytest.approx(1.0 * 0.5 + 2.0)
    assert {k: v for k, v in scores.items() if k != "fresh"} == pytest.approx({k: v / 4 for k, v in before.items()})


def test_update_many_checks_everything_before_changing_anything() -> None:
    model = TrendingPopularity(half_life=1.0).fit(checkerboard_data())
    sums = model.reference_sums_.copy()
    with pytest.raises(InvalidInputError, match="must be finite, got 1.0 and nan") as caught:
        model.update_many(["a", "b"], [1.0, 1.0], [model.t_ref_, float("nan")])
    assert caught.value.field == "weight"
    np.testing.assert_array_equal(model.reference_sums_, sums)
    with pytest.raises(InvalidInputError, match="update_many got 2 item ids, 1 weights and 2 timestamps"):
        model.update_many(["a", "b"], [1.0], [0.0, 0.0])

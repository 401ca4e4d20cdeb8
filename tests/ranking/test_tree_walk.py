"""The numpy tree walk on a hand-built ensemble whose outputs and shares are known: trees of
different depths (one just a leaf), a missing value, a value on a threshold."""

from __future__ import annotations

import numpy as np

from liverec.ranking.gbdt import TreeEnsemble

NAN = float("nan")


def _ensemble() -> TreeEnsemble:
    """Tree 0: x0 <= 0.5 ? 1.0 : (x1 <= 0.2 ? 2.0 : 3.0), internal values 2.0 and 2.5. Tree 1: a leaf, 0.5."""
    #                    0     1    2     3    4    5 (tree 1)
    feature = np.array([0, -1, 1, -1, -1, -1])
    threshold = np.array([0.5, 0.0, 0.2, 0.0, 0.0, 0.0])
    left = np.array([1, 1, 3, 3, 4, 5])
    right = np.array([2, 1, 4, 3, 4, 5])
    value = np.array([2.0, 1.0, 2.5, 2.0, 3.0, 0.5])
    return TreeEnsemble(feature, threshold, left, right, value, np.array([0, 5]), depth=2)


X = np.array([[0.4, 9.0], [0.6, 0.1], [0.6, 0.3], [NAN, 0.1], [0.5, NAN]])


def test_each_row_reaches_its_leaf_in_every_tree() -> None:
    # a missing value is not <= the threshold: it goes right; a value on the threshold goes left
    assert _ensemble().predict(X).tolist() == [1.5, 2.5, 3.5, 2.5, 1.5]
    assert _ensemble().predict(np.zeros((0, 2))).shape == (0,)


def test_each_split_s_change_of_value_is_its_feature_s_share() -> None:
    shares, bias = _ensemble().contributions(X)
    assert bias == 2.5
    assert shares.tolist() == [[-1.0, 0.0], [0.5, -0.5], [0.5, 0.5], [0.5, -0.5], [-1.0, 0.0]]
    np.testing.assert_array_equal(shares.sum(axis=1) + bias, _ensemble().predict(X))
    empty, _ = _ensemble().contributions(np.zeros((0, 2)))
    assert empty.shape == (0, 2)

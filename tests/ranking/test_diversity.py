"""Maximal marginal relevance and intra-list similarity on vectors whose similarities are known."""

from __future__ import annotations

import numpy as np
import pytest

from liverec.ranking.diversity import intra_list_similarity, mmr

# item 0 and item 1 are near-duplicates (cosine 0.99); items 2 and 3 are orthogonal to everything
VECTORS = np.array(
    [[1.0, 0.0, 0.0], [0.99, np.sqrt(1 - 0.99**2), 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=np.float64
)
# item 3 is orthogonal to 0 and 2 but has cosine 0.141 with item 1
RELEVANCE = np.array([1.0, 0.9, 0.5, 0.1])


def test_no_diversity_keeps_relevance_order() -> None:
    relevance = np.array([0.2, 0.9, 0.5, 0.9])
    assert [int(i) for i in mmr(relevance, VECTORS, 4, 0.0)] == [1, 3, 2, 0]  # ties keep input order
    assert [int(i) for i in mmr(relevance, VECTORS, 2, 0.0)] == [1, 3]


def test_high_diversity_skips_the_near_duplicate() -> None:
    # λ = 0.1; relevance scaled to [1, .889, .444, 0]. Pick 0; then item 1's gain is
    # .1 · .889 − .9 · .99 < 0 while item 2 gains .044 and item 3 gains 0.
    assert mmr(RELEVANCE, VECTORS, 3, 0.9) == [0, 2, 3]
    assert mmr(RELEVANCE, VECTORS, 2, 0.9) == [0, 2]


def test_moderate_diversity_skips_the_duplicate_then_prefers_novelty() -> None:
    # λ = 0.5, after item 0: item 1 gains .5 · .889 − .5 · .99 = −.05 < item 2's .222; after items 0, 2:
    # item 3 gains 0 (unlike both picks) > item 1's −.05, so the duplicate comes last
    assert mmr(RELEVANCE, VECTORS, 4, 0.5) == [0, 2, 3, 1]


def test_low_diversity_lets_relevance_win_over_a_duplicate() -> None:
    # λ = 0.8 (the engine's default diversity 0.2), after item 0: item 1 gains .8 · .889 − .2 · .99 = .513
    # > item 2's .8 · .444 = .356
    assert mmr(RELEVANCE, VECTORS, 4, 0.2) == [0, 1, 2, 3]


def test_k_larger_than_n_returns_every_index_once() -> None:
    picked = mmr(RELEVANCE, VECTORS, 10, 0.9)
    assert picked == [0, 2, 3, 1]
    assert [int(i) for i in mmr(RELEVANCE, VECTORS, 10, 0.0)] == [0, 1, 2, 3]


@pytest.mark.parametrize("diversity", [0.0, 0.5, 1.0])
def test_degenerate_sizes(diversity: float) -> None:
    assert list(mmr(RELEVANCE, VECTORS, 0, diversity)) == []
    assert list(mmr(np.array([]), np.zeros((0, 3)), 5, diversity)) == []
    assert [int(i) for i in mmr(np.array([0.3]), VECTORS[:1], 5, diversity)] == [0]


def test_equal_relevance_full_diversity_picks_most_different() -> None:
    # all relevance equal: the first pick is index 0, then whatever is least like the picks
    relevance = np.ones(4)
    assert mmr(relevance, VECTORS, 3, 1.0) == [0, 2, 3]


def test_intra_list_similarity_known_values() -> None:
    same_same_other = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # off-diagonal pairs: (0,1) = 1, (0,2) = 0, (1,2) = 0, each counted twice over 3 · 2 ordered pairs
    assert intra_list_similarity(same_same_other) == pytest.approx(1.0 / 3.0)
    assert intra_list_similarity(np.eye(3)) == 0.0
    assert intra_list_similarity(np.array([[0.6, 0.8], [0.8, 0.6]])) == pytest.approx(0.96)
    assert intra_list_similarity(np.array([[1.0, 0.0]])) == 0.0
    assert intra_list_similarity(np.zeros((0, 2))) == 0.0


def test_mmr_lowers_intra_list_similarity() -> None:
    plain = [int(i) for i in mmr(RELEVANCE, VECTORS, 2, 0.0)]
    diverse = mmr(RELEVANCE, VECTORS, 2, 0.9)
    assert intra_list_similarity(VECTORS[plain]) == pytest.approx(0.99)
    assert intra_list_similarity(VECTORS[diverse]) == pytest.approx(0.0)

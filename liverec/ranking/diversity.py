"""Maximal marginal relevance (Carbonell & Goldstein, 1998) over item text vectors.

Kept over a DPP's greedy MAP and over MMR with the mean similarity as its penalty: on
Scientific's validation neither bought more diversity for the same NDCG@10 (docs/evaluation.md).
"""

from __future__ import annotations

import numpy as np

from liverec.ranking.exposure import Calibration


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, diversity: float,
        calibration: Calibration | None = None) -> list[int]:
    """Pick ``k`` indices greedily by λ·relevance − (1 − λ)·max similarity to those picked.

    ``diversity`` is 1 − λ: 0 keeps the relevance order, 1 picks the most mutually different
    items. Relevance is min-max scaled first so λ means the same whatever the score range.
    With a ``calibration`` of strength β (:mod:`liverec.ranking.exposure`), each step's gain is
    ``(1 − β)·gain − β·divergence``: how far the list's popularity mix, with the item, would be
    from the user's.
    """
    n = len(relevance)
    k = min(k, n)
    if k <= 0:
        return []
    if calibration is not None and calibration.strength <= 0:
        calibration = None
    if (diversity <= 0.0 or n <= 1) and calibration is None:
        return [int(i) for i in np.argsort(-relevance, kind="stable")[:k]]
    lam = 1.0 - diversity
    span = float(relevance.max() - relevance.min())
    rel = (relevance - relevance.min()) / span if span > 0 else np.ones(n)
    sims = vectors @ vectors.T if diversity > 0.0 else None
    # Nothing picked yet: no penalty, so the first pick has the best λ·relevance.
    weighted = lam * rel
    max_sim = np.zeros(n)
    counts = np.zeros(3)
    chosen: list[int] = []
    for _ in range(k):
        gain = weighted - (1.0 - lam) * max_sim
        if calibration is not None:
            beta = calibration.strength
            gain = (1.0 - beta) * gain - beta * calibration.divergence_after(counts)[calibration.groups]
        gain[chosen] = -np.inf
        pick = int(np.argmax(gain))
        chosen.append(pick)
        if sims is not None:
            np.maximum(max_sim, sims[pick], out=max_sim)
        if calibration is not None:
            counts[calibration.groups[pick]] += 1
    return chosen


def intra_list_similarity(vectors: np.ndarray) -> float:
    """Mean pairwise cosine similarity of a list (lower = more diverse)."""
    n = len(vectors)
    if n < 2:
        return 0.0
    sims = vectors @ vectors.T
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))

"""Maximal marginal relevance (Carbonell & Goldstein, 1998) over item text vectors."""

from __future__ import annotations

import numpy as np


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, diversity: float) -> list[int]:
    """Pick ``k`` indices greedily by λ·relevance − (1 − λ)·max similarity to those picked.

    ``diversity`` is 1 − λ: 0 keeps the relevance order, 1 picks the most mutually different
    items. Relevance is min-max scaled first so λ means the same whatever the score range.
    """
    n = len(relevance)
    k = min(k, n)
    if k <= 0:
        return []
    if diversity <= 0.0 or n <= 1:
        return [int(i) for i in np.argsort(-relevance, kind="stable")[:k]]
    lam = 1.0 - diversity
    span = float(relevance.max() - relevance.min())
    rel = (relevance - relevance.min()) / span if span > 0 else np.ones(n)
    sims = vectors @ vectors.T
    # Nothing picked yet: no penalty, so the first pick has the best λ·relevance.
    weighted = lam * rel
    first = int(np.argmax(weighted))
    chosen = [first]
    max_sim = sims[first].astype(np.float64)
    for _ in range(k - 1):
        gain = weighted - (1.0 - lam) * max_sim
        gain[chosen] = -np.inf
        pick = int(np.argmax(gain))
        chosen.append(pick)
        np.maximum(max_sim, sims[pick], out=max_sim)
    return chosen


def intra_list_similarity(vectors: np.ndarray) -> float:
    """Mean pairwise cosine similarity of a list (lower = more diverse)."""
    n = len(vectors)
    if n < 2:
        return 0.0
    sims = vectors @ vectors.T
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))

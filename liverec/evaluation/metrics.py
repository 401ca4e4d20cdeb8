"""Ranking metrics over full-catalog top-K lists, per user, plus beyond-accuracy measures.

Every accuracy metric is computed per user (so confidence intervals and paired tests can
resample users) from the user's ranked list and the set of relevant items:

* ``recall@K`` — relevant items in the top K over the number of relevant items (with one
  held-out target, as in leave-one-out, this is the hit rate HR@K);
* ``ndcg@K`` — DCG of the top K (gain 1 per relevant item, discount log2(rank + 2) with
  0-based ranks) over the ideal DCG of min(K, relevant) hits;
* ``mrr@K`` — 1 / (rank + 1) of the first relevant item within the top K, else 0.

>>> row = per_user_metrics(["a", "b", "c"], {"b"}, ks=(1, 2))
>>> row["recall@1"], row["recall@2"], round(row["ndcg@2"], 4), row["mrr@2"]
(0.0, 1.0, 0.6309, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np

KS = (5, 10, 20)
ACCURACY = ("recall", "ndcg", "mrr")


def metric_names(ks: Sequence[int] = KS) -> list[str]:
    return [f"{m}@{k}" for m in ACCURACY for k in ks]


def per_user_metrics(ranked: Sequence[str], relevant: Collection[str], ks: Sequence[int] = KS) -> dict[str, float]:
    """Recall, NDCG and MRR at each K for one user's ranked list (best first)."""
    if not relevant:
        raise ValueError("a user with no relevant item cannot be scored")
    hits = [rank for rank, item in enumerate(ranked[: max(ks)]) if item in relevant]
    out: dict[str, float] = {}
    for k in ks:
        within = [r for r in hits if r < k]
        ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(relevant))))
        out[f"recall@{k}"] = len(within) / len(relevant)
        out[f"ndcg@{k}"] = sum(1.0 / math.log2(r + 2) for r in within) / ideal
        out[f"mrr@{k}"] = 1.0 / (within[0] + 1) if within else 0.0
    return out


def metric_table(
    lists: Mapping[str, Sequence[str]], relevant: Mapping[str, Collection[str]], users: Sequence[str],
    ks: Sequence[int] = KS,
) -> dict[str, np.ndarray]:
    """Per-user metrics for ``users`` (in that order) as one array per metric name.

    A user without a list (the system gave nothing) scores 0 everywhere: a full-ranking
    protocol counts every user, it does not drop the ones a system could not serve.
    """
    names = metric_names(ks)
    table = {name: np.zeros(len(users)) for name in names}
    for row, user in enumerate(users):
        values = per_user_metrics(lists.get(user, ()), relevant[user], ks)
        for name in names:
            table[name][row] = values[name]
    return table


def catalog_coverage(lists: Mapping[str, Sequence[str]], n_items: int, k: int = 10) -> float:
    """Share of the catalog that appears in at least one user's top ``k``."""
    shown = {item for ranked in lists.values() for item in ranked[:k]}
    return len(shown) / n_items if n_items else 0.0


def intra_list_diversity(
    lists: Mapping[str, Sequence[str]], vectors: Callable[[Sequence[str]], np.ndarray], k: int = 10
) -> float:
    """Mean over users of the mean pairwise cosine distance (1 − cos) within their top ``k``.

    ``vectors`` maps item ids to unit text vectors; lists shorter than two items are skipped.
    """
    values = []
    for ranked in lists.values():
        top = list(ranked[:k])
        if len(top) < 2:
            continue
        v = vectors(top)
        sims = v @ v.T
        n = len(top)
        values.append(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))
    return float(np.mean(values)) if values else 0.0


def novelty(lists: Mapping[str, Sequence[str]], popularity: Mapping[str, int], n_users: int, k: int = 10) -> float:
    """Mean self-information −log2(p(i)) of recommended items, p(i) = users who had i / all users
    (Zhou et al., PNAS 2010); an item nobody had counts as one user's. Higher = less obvious."""
    values = [
        -math.log2(max(1, popularity.get(item, 0)) / n_users) for ranked in lists.values() for item in ranked[:k]
    ]
    return float(np.mean(values)) if values else 0.0


HISTORY_BINS = ((1, 4), (5, 9), (10, 19), (20, 49), (50, None))


def history_bin(length: int) -> str:
    """The label of the history-length bucket ``length`` falls in ("5-9", "50+")."""
    for lo, hi in HISTORY_BINS:
        if length >= lo and (hi is None or length <= hi):
            return f"{lo}+" if hi is None else f"{lo}-{hi}"
    return "0"


def by_history_length(values: np.ndarray, lengths: np.ndarray) -> dict[str, tuple[float, int]]:
    """Mean of ``values`` and user count per history-length bucket (buckets with users only)."""
    labels = np.array([history_bin(int(n)) for n in lengths])
    out: dict[str, tuple[float, int]] = {}
    for lo, hi in HISTORY_BINS:
        label = f"{lo}+" if hi is None else f"{lo}-{hi}"
        mask = labels == label
        if mask.any():
            out[label] = (float(values[mask].mean()), int(mask.sum()))
    return out

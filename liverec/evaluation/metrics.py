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


# ---------------------------------------------------------------------------- exposure and fairness


def exposure_counts(lists: Mapping[str, Sequence[str]], k: int = 10) -> dict[str, int]:
    """How many users' top ``k`` each item is in."""
    counts: dict[str, int] = {}
    for ranked in lists.values():
        for item in ranked[:k]:
            counts[item] = counts.get(item, 0) + 1
    return counts


def exposure_gini(lists: Mapping[str, Sequence[str]], n_items: int, k: int = 10) -> float:
    """Gini coefficient of the items' exposure in the top ``k`` over the whole catalog (an item
    never shown counts as exposed 0 times): 0 when every item is shown equally, near 1 when a
    few take every slot.

    >>> round(exposure_gini({"u": ["a", "b"], "v": ["a", "b"]}, n_items=2, k=2), 3)
    0.0
    >>> round(exposure_gini({"u": ["a"], "v": ["a"]}, n_items=4, k=1), 3)
    0.75
    """
    if n_items <= 0:
        return 0.0
    shown = np.sort(np.fromiter(exposure_counts(lists, k).values(), dtype=np.float64))
    values = np.concatenate([np.zeros(max(0, n_items - shown.size)), shown])
    total = values.sum()
    if total == 0:
        return 0.0
    ranks = np.arange(1, values.size + 1)
    return float(((2 * ranks - values.size - 1) * values).sum() / (values.size * total))


def head_items(popularity: Mapping[str, int], n_items: int, share: float = 0.2) -> set[str]:
    """The most popular ``share`` of the catalog by ``popularity`` (ties broken by id, so the
    head is the same on every run)."""
    size = int(round(share * n_items))
    ranked = sorted(popularity.items(), key=lambda kv: (-kv[1], kv[0]))
    return {item for item, count in ranked[:size] if count > 0}


def long_tail_share(lists: Mapping[str, Sequence[str]], head: Collection[str], k: int = 10) -> float:
    """Share of the top-``k`` slots given to items outside ``head`` (:func:`head_items`)."""
    slots = [item for ranked in lists.values() for item in ranked[:k]]
    return sum(item not in head for item in slots) / len(slots) if slots else 0.0


def category_exposure(
    lists: Mapping[str, Sequence[str]], categories: Mapping[str, Sequence[str]], k: int = 10,
) -> dict[str, tuple[float, float]]:
    """Per category: its share of the top-``k`` slots and its share of the catalog. An item of
    several categories counts a fraction to each; an item with none counts to "(none)".

    >>> out = category_exposure({"u": ["a", "a2"]}, {"a": ["x"], "a2": ["x"], "b": ["y"], "c": ["x", "y"]}, k=2)
    >>> {c: (round(e, 3), round(s, 3)) for c, (e, s) in sorted(out.items())}
    {'x': (1.0, 0.625), 'y': (0.0, 0.375)}
    """
    def shares(items: Sequence[str]) -> dict[str, float]:
        out: dict[str, float] = {}
        for item in items:
            cats = categories.get(item) or ("(none)",)
            for cat in cats:
                out[cat] = out.get(cat, 0.0) + 1.0 / len(cats)
        total = sum(out.values()) or 1.0
        return {c: v / total for c, v in out.items()}

    catalog = shares(list(categories))
    shown = shares([item for ranked in lists.values() for item in ranked[:k]])
    return {c: (shown.get(c, 0.0), catalog.get(c, 0.0)) for c in catalog.keys() | shown.keys()}


def miscalibration(shares: Mapping[str, tuple[float, float]]) -> float:
    """Total variation distance between exposure and catalog shares (:func:`category_exposure`):
    0 when lists show each category as often as the catalog holds it, 1 at most."""
    return 0.5 * sum(abs(shown - catalog) for shown, catalog in shares.values())


def popularity_groups(popularity: Mapping[str, int], item_ids: Sequence[str]) -> dict[str, int]:
    """Each catalog item's popularity group by its share of training users (0 head: the top 20% of
    items, 2 tail: the bottom half, 1 between; :mod:`liverec.ranking.exposure`'s cut-offs)."""
    from liverec.ranking.exposure import groups_of

    counts = np.array([popularity.get(i, 0) for i in item_ids], dtype=np.float64)
    ordered = np.sort(counts)
    quantiles = np.searchsorted(ordered, counts, side="left") / max(1, counts.size)
    return dict(zip(item_ids, groups_of(quantiles).tolist(), strict=True))


def popularity_miscalibration(lists: Mapping[str, Sequence[str]], histories: Mapping[str, Sequence[str]],
                              groups: Mapping[str, int], k: int = 10) -> float:
    """Mean over users with a history of the Jensen–Shannon divergence (bits) between the shares of
    head, middle and tail items in their history and in their top ``k`` (Abdollahpouri et al.,
    UMAP 2021): 0 when every list has its user's popularity mix.

    >>> groups = {"h": 0, "m": 1, "t": 2, "t2": 2}
    >>> popularity_miscalibration({"u": ["t", "t2"]}, {"u": ["t"]}, groups, k=2)
    0.0
    >>> round(popularity_miscalibration({"u": ["h", "m"]}, {"u": ["t"]}, groups, k=2), 3)
    1.0
    """
    from liverec.ranking.exposure import js_divergence, shares

    values = []
    for user, ranked in lists.items():
        had = [groups[i] for i in histories.get(user, ()) if i in groups]
        shown = [groups[i] for i in ranked[:k] if i in groups]
        if had and shown:
            values.append(float(js_divergence(shares(np.array(had)), shares(np.array(shown))[None, :])[0]))
    return float(np.mean(values)) if values else 0.0

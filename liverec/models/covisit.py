"""Co-visitation: items that the same users touch close together in time."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from liverec.core.errors import InvalidInputError, StorageError
from liverec.models._common import (
    check_k,
    history_weight,
    indices_of,
    read_ids,
    read_params,
    require_fitted,
    top_k,
    write_ids,
    write_params,
)
from liverec.models.base import Ranked, ScoredItems, TrainingData, as_scored


def covisit_counts(data: TrainingData, window: float, max_gap_items: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Symmetric co-visit weights and each item's total positive weight.

    For every user, positive-weight item events are taken in time order; two events at most
    ``max_gap_items`` positions apart and at most ``window`` seconds apart, on different items
    ``i`` and ``j``, add ``min(w_a, w_b)`` to both ``C[i, j]`` and ``C[j, i]`` — the weaker of
    the two actions bounds the evidence the pair gives (a view next to a purchase counts as a
    view). Every qualifying pair of events counts, so a user alternating ``i, j, i`` adds two.

    The work is ``max_gap_items`` vectorised passes over the events (O(events · max_gap_items)),
    never a loop over events or pairs in Python.

    Returns
    -------
    counts
        float64 CSR ``[n_items, n_items]``, zero diagonal.
    item_weight
        float64 ``[n_items]``: the sum of the positive event weights on each item.
    """
    n_items = len(data.item_ids)
    keep = (data.event_item >= 0) & (data.event_weight > 0)
    users, items = data.event_user[keep], data.event_item[keep]
    weights = data.event_weight[keep].astype(np.float64)
    times = data.event_time[keep]
    order = np.lexsort((times, users))  # stable: equal times keep log order
    users, items, weights, times = users[order], items[order], weights[order], times[order]

    rows, cols, vals = [], [], []
    for gap in range(1, max_gap_items + 1):
        if gap >= users.size:
            break
        a, b = slice(0, users.size - gap), slice(gap, users.size)
        ok = (users[a] == users[b]) & (times[b] - times[a] <= window) & (items[a] != items[b])
        rows.append(items[a][ok])
        cols.append(items[b][ok])
        vals.append(np.minimum(weights[a], weights[b])[ok])
    if rows:
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    else:
        r = c = np.empty(0, dtype=np.int32)
        v = np.empty(0, dtype=np.float64)
    counts = sp.coo_matrix(
        (np.concatenate([v, v]), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n_items, n_items)
    ).tocsr()  # tocsr sums duplicate (i, j) entries
    counts.eliminate_zeros()
    item_weight = np.bincount(items, weights=weights, minlength=n_items)
    return counts, item_weight


class CoVisitation:
    """Item-to-item co-visitation within a session window ("people who viewed X also viewed this").

    Pair weights come from :func:`covisit_counts` and are normalised cosine-style,
    ``s(i, j) = C[i, j] / sqrt(n_i · n_j)`` with ``n_i`` the item's total positive weight, so a
    popular item is not everyone's neighbour. Each item's ``max_neighbors`` best neighbours are
    read from its row when asked (rows ordered by score descending, ties by item order).

    The model keeps learning between trainings: :meth:`observe` folds each new positive item
    event in — its pairs with the user's previous ``max_gap_items`` events within ``window``, and
    its item's weight — so a new item gains neighbours and a new user gets this recall at once.
    Fitting on a log and then observing more events in time order gives exactly the model fitted
    on the whole log (a late event, older than the user's last one, is paired as if it came last).

    Parameters
    ----------
    window
        Seconds: two events further apart than this never form a pair.
    max_gap_items
        Two events more than this many positions apart in a user's sequence never form a pair.
    max_neighbors
        Neighbours kept per item.
    recent_items
        How many of the latest known history items :meth:`recommend` looks at.
    recency_decay
        Weight factor per step back in history: the latest item counts 1, the one before it
        ``recency_decay``, and so on.
    """

    name: ClassVar[str] = "covisit"

    def __init__(
        self,
        window: float = 3600.0,
        max_gap_items: int = 5,
        max_neighbors: int = 100,
        recent_items: int = 5,
        recency_decay: float = 0.8,
    ) -> None:
        self.window = window
        self.max_gap_items = max_gap_items
        self.max_neighbors = max_neighbors
        self.recent_items = recent_items
        self.recency_decay = recency_decay

    def _validate(self) -> None:
        if not (isinstance(self.window, int | float) and math.isfinite(self.window) and self.window >= 0):
            raise InvalidInputError(f"window must be seconds >= 0, got {self.window!r}", field="window")
        for field in ("max_gap_items", "max_neighbors", "recent_items"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{field} must be an integer >= 1, got {value!r}", field=field, value=value)
        if not (isinstance(self.recency_decay, int | float) and 0 < self.recency_decay <= 1):
            raise InvalidInputError(
                f"recency_decay must be in (0, 1], got {self.recency_decay!r}",
                field="recency_decay",
                value=self.recency_decay,
            )

    def fit(self, data: TrainingData) -> Self:
        self._validate()
        counts, item_weight = covisit_counts(data, self.window, self.max_gap_items)
        self._set_state(list(data.item_ids), counts, item_weight, _tails(data, self.max_gap_items))
        return self

    def assign(self, item_ids: list[str], counts: sp.csr_matrix, item_weight: np.ndarray,
               tails: dict[str, list[tuple[int, float, float]]]) -> Self:
        """Take a fit computed elsewhere (the Spark engine): what :meth:`fit` computes from the log —
        the counts, each item's weight and each user's last ``max_gap_items`` events (item code,
        weight, time; oldest first)."""
        self._validate()
        n = len(item_ids)
        if counts.shape != (n, n) or len(item_weight) != n:
            raise InvalidInputError(f"counts {counts.shape} and item_weight ({len(item_weight)}) must match "
                                    f"{n} item ids", field="counts")
        self._set_state(list(item_ids), counts, item_weight, tails)
        return self

    def _set_state(self, item_ids: list[str], counts: sp.csr_matrix, item_weight: np.ndarray,
                   tails: dict[str, list[tuple[int, float, float]]]) -> None:
        self.item_ids_: list[str] = item_ids
        self.item_index_: dict[str, int] = {item_id: i for i, item_id in enumerate(item_ids)}
        self.counts_: sp.csr_matrix = counts.tocsr()
        self.item_weight_: np.ndarray = np.asarray(item_weight, dtype=np.float64).copy()
        self.tails_: dict[str, list[tuple[int, float, float]]] = tails
        self._rows: dict[int, dict[int, float]] = {}  # rows changed since fitting, as {item: count}
        self._cache: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}  # row -> (version, cols, scores)
        self._version = 0

    # -- real time ------------------------------------------------------------------------

    def observe(self, user_ids: Sequence[str], item_ids: Sequence[str], weights: Sequence[float],
                timestamps: Sequence[float]) -> None:
        """Fold positive item events (in time order) in: their pairs and their items' weights."""
        require_fitted(self, "counts_")
        for user_id, item_id, weight, ts in zip(user_ids, item_ids, weights, timestamps, strict=True):
            w = float(weight)
            if not w > 0 or not math.isfinite(w):
                continue
            i = self._index(item_id)
            self.item_weight_[i] += w
            tail = self.tails_.setdefault(user_id, [])
            for j, wj, tj in tail:
                if j != i and ts - tj <= self.window:
                    pair = min(w, wj)
                    self._add(i, j, pair)
                    self._add(j, i, pair)
            tail.append((i, w, float(ts)))
            if len(tail) > self.max_gap_items:
                del tail[0]
        self._version += 1

    def _index(self, item_id: str) -> int:
        i = self.item_index_.get(item_id)
        if i is None:  # an item added since training: it gets its row now
            i = self.item_index_[item_id] = len(self.item_ids_)
            self.item_ids_.append(item_id)
            self.item_weight_ = np.append(self.item_weight_, 0.0)
        return i

    def _add(self, i: int, j: int, value: float) -> None:
        row = self._rows.get(i)
        if row is None:
            row = self._rows[i] = self._base_row_dict(i)
        row[j] = row.get(j, 0.0) + value

    def _base_row_dict(self, i: int) -> dict[int, float]:
        if i >= self.counts_.shape[0]:
            return {}
        lo, hi = self.counts_.indptr[i], self.counts_.indptr[i + 1]
        return dict(zip(self.counts_.indices[lo:hi].tolist(), self.counts_.data[lo:hi].tolist(), strict=True))

    # -- erasure --------------------------------------------------------------------------

    def known_users(self) -> list[str]:
        """Users whose last events are kept (to pair their next event with)."""
        require_fitted(self, "counts_")
        return list(self.tails_)

    def forget_users(self, user_ids: Collection[str]) -> int:
        """Drop the last events kept of ``user_ids`` (the pairs they formed stay in the counts,
        anonymous, until the next training); how many users were kept."""
        require_fitted(self, "counts_")
        return sum(self.tails_.pop(user_id, None) is not None for user_id in set(user_ids))

    # -- reading --------------------------------------------------------------------------

    def _row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i``'s best ``max_neighbors`` neighbours and their scores, best first (ties: lower item)."""
        hit = self._cache.get(i)
        if hit is not None and hit[0] == self._version:
            return hit[1], hit[2]
        row = self._rows.get(i)
        if row is not None:
            cols = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            counts = np.fromiter(row.values(), dtype=np.float64, count=len(row))
        elif i < self.counts_.shape[0]:
            lo, hi = self.counts_.indptr[i], self.counts_.indptr[i + 1]
            cols, counts = self.counts_.indices[lo:hi].astype(np.int64), self.counts_.data[lo:hi]
        else:
            cols, counts = np.zeros(0, dtype=np.int64), np.zeros(0)
        scores = counts / np.sqrt(self.item_weight_[i] * self.item_weight_[cols]) if len(cols) else counts
        if len(cols) > self.max_neighbors:
            part = np.argpartition(-scores, self.max_neighbors - 1)[: self.max_neighbors]
            cols, scores = cols[part], scores[part]
        order = np.lexsort((cols, -scores))
        cols, scores = cols[order], scores[order]
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[i] = (self._version, cols, scores)
        return cols, scores

    def neighbors(self, item_id: str) -> ScoredItems:
        """All kept neighbours of ``item_id``, best first; [] for an unknown item (for explanations)."""
        require_fitted(self, "counts_")
        i = self.item_index_.get(item_id)
        if i is None:
            return []
        cols, vals = self._row(i)
        return [(self.item_ids_[c], float(v)) for c, v in zip(cols.tolist(), vals.tolist(), strict=True)]

    def similar_items(self, item_id: str, k: int = 10) -> ScoredItems:
        check_k(k)
        return self.neighbors(item_id)[:k]

    def pair_scores(self, seeds: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """``[len(seeds), len(item_ids)]``: each item's score in each seed's kept neighbours (0 if absent).

        What an explanation needs ("people who viewed X also viewed this") for a handful of
        items, without building a seed's whole neighbour list.
        """
        require_fitted(self, "counts_")
        out = np.zeros((len(seeds), len(item_ids)), dtype=np.float64)
        targets = np.array([self.item_index_.get(x, -1) for x in item_ids], dtype=np.int64)
        for row, seed in enumerate(seeds):
            i = self.item_index_.get(seed)
            if i is None:
                continue
            cols, vals = self._row(i)
            hit_col, hit_item = np.nonzero(cols[:, None] == targets[None, :])
            out[row, hit_item] = vals[hit_col]
        return out

    def recommend(
        self, history: Sequence[tuple[str, float]], k: int = 10, exclude: Collection[str] = ()
    ) -> ScoredItems:
        """Sum the neighbour rows of the latest ``recent_items`` history items.

        Each row is weighted by the event weight times ``recency_decay ** steps_from_the_end``;
        a negative weight (a dismissal) pushes that item's neighbours down. Only items with a
        positive total are returned, never a history item or one in ``exclude``.
        """
        return as_scored(self.recommend_ranked(history, k, exclude))

    def recommend_ranked(
        self, history: Sequence[tuple[str, float]], k: int = 10, exclude: Collection[str] = ()
    ) -> Ranked:
        """:meth:`recommend` as an id list and a score array."""
        require_fitted(self, "counts_")
        check_k(k)
        known = [(self.item_index_[x], history_weight(x, w)) for x, w in history if x in self.item_index_]
        if not known or k == 0:
            return [], np.zeros(0)
        recent = known[-self.recent_items :]
        parts_c, parts_v = [], []
        for steps_back, (i, w) in enumerate(reversed(recent)):
            cols, vals = self._row(i)
            parts_c.append(cols)
            parts_v.append(vals * (w * self.recency_decay**steps_back))
        candidates, inverse = np.unique(np.concatenate(parts_c), return_inverse=True)
        if candidates.size == 0:
            return [], np.zeros(0)
        totals = np.bincount(inverse, weights=np.concatenate(parts_v), minlength=candidates.size)
        # A mask over the catalog, not np.isin: isin sorts both arrays (measured 0.14 ms a request).
        banned = np.zeros(len(self.item_ids_), dtype=bool)
        banned[indices_of(self.item_index_, exclude)] = True
        banned[[i for i, _ in known]] = True
        ranked = np.where(banned[candidates] | (totals <= 0), -np.inf, totals)
        best = top_k(ranked, k)
        ids = self.item_ids_
        return [ids[c] for c in candidates[best].tolist()], totals[best]

    # -- persistence ----------------------------------------------------------------------

    def counts(self) -> sp.csr_matrix:
        """Every pair's co-visit weight as it is now (the fitted counts plus what was observed since)."""
        require_fitted(self, "counts_")
        n = len(self.item_ids_)
        base = self.counts_.tocoo()
        keep = ~np.isin(base.row, np.fromiter(self._rows, dtype=np.int64, count=len(self._rows)))
        rows, cols, vals = [base.row[keep]], [base.col[keep]], [base.data[keep]]
        for i, row in self._rows.items():
            rows.append(np.full(len(row), i, dtype=np.int64))
            cols.append(np.fromiter(row.keys(), dtype=np.int64, count=len(row)))
            vals.append(np.fromiter(row.values(), dtype=np.float64, count=len(row)))
        return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n, n)).tocsr()

    def save(self, path: Path) -> None:
        require_fitted(self, "counts_")
        path = Path(path)
        write_params(self, path)
        write_ids(path / "item_ids.json", self.item_ids_)
        m = self.counts()
        users = list(self.tails_)
        flat = [entry for user in users for entry in self.tails_[user]]
        with open(path / "counts.npz", "wb") as fh:
            np.savez(fh, indptr=m.indptr, indices=m.indices, data=m.data, item_weight=self.item_weight_,
                     tail_length=np.array([len(self.tails_[u]) for u in users], dtype=np.int64),
                     tail_item=np.array([e[0] for e in flat], dtype=np.int64),
                     tail_weight=np.array([e[1] for e in flat], dtype=np.float64),
                     tail_time=np.array([e[2] for e in flat], dtype=np.float64))
        write_ids(path / "tail_users.json", users)

    @classmethod
    def load(cls, path: Path) -> Self:
        path = Path(path)
        if not (path / "counts.npz").exists():
            raise StorageError(f"{path} holds co-visitation written by an earlier liverec (top neighbours "
                               "only, no counts to keep learning from); train again")
        model = cls(**read_params(cls, path))
        item_ids = [str(x) for x in read_ids(path / "item_ids.json")]
        users = [str(x) for x in read_ids(path / "tail_users.json")]
        with np.load(path / "counts.npz", allow_pickle=False) as z:
            n = len(item_ids)
            matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(n, n))
            item_weight = z["item_weight"]
            bounds = np.concatenate([[0], np.cumsum(z["tail_length"])])
            items, weights, times = z["tail_item"].tolist(), z["tail_weight"].tolist(), z["tail_time"].tolist()
        tails = {user: list(zip(items[bounds[u]:bounds[u + 1]], weights[bounds[u]:bounds[u + 1]],
                                times[bounds[u]:bounds[u + 1]], strict=True)) for u, user in enumerate(users)}
        model._set_state(item_ids, matrix, item_weight, tails)
        return model


def _tails(data: TrainingData, size: int) -> dict[str, list[tuple[int, float, float]]]:
    """Each user's last ``size`` positive item events (item, weight, time), in time order: what the
    pairs of their next event are formed with."""
    keep = (data.event_item >= 0) & (data.event_weight > 0)
    users, items = data.event_user[keep], data.event_item[keep]
    weights, times = data.event_weight[keep].astype(np.float64), data.event_time[keep]
    order = np.lexsort((times, users))  # stable, as covisit_counts orders them
    users, items, weights, times = users[order], items[order], weights[order], times[order]
    out: dict[str, list[tuple[int, float, float]]] = {}
    last = np.flatnonzero(np.r_[users[1:] != users[:-1], True]) if users.size else np.zeros(0, dtype=np.int64)
    for end in last.tolist():
        start = end
        while start > 0 and users[start - 1] == users[end] and end - start + 1 < size:
            start -= 1
        out[data.user_ids[int(users[end])]] = [(int(items[k]), float(weights[k]), float(times[k]))
                                              for k in range(start, end + 1)]
    return out

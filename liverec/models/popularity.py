"""Trending: time-decayed popularity that stays live between trainings."""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.models._common import (
    check_k,
    exclusion_set,
    read_ids,
    read_params,
    require_fitted,
    top_k,
    write_ids,
    write_params,
)
from liverec.models.base import Ranked, ScoredItems, TrainingData, as_scored

# Past this many half-lives between the reference time and an event, the stored sums are
# rescaled to a new reference time; 2**60 is far from float64 overflow yet keeps rescaling rare.
_MAX_EXPONENT = 60.0
# How deep the cached ranking goes: every request asks for the top few hundred past its user's
# seen items, and the order only changes when an event arrives, not as time passes.
_RANKING_DEPTH = 1024
# The quantile table is re-sorted at most this often: one sort of a million sums takes ~60 ms, and
# an item's quantile moves little in a second however many events arrive.
_QUANTILES_REFRESH = 1.0


class TrendingPopularity:
    """Items ranked by exponentially time-decayed interaction weight.

    ``score(i, T) = Σ w · 2^(−(T − t) / half_life)`` over the positive-weight events on ``i``
    (dismissals and searches do not make an item trend). In :meth:`fit` an event dated after
    ``data.now`` counts as made then: one event in the future (a clock error) weighs what a
    real-time one does, and never drags every other item's decay along with it. :meth:`update`
    counts an event at its own time, whenever it is folded in, so a model rebuilt from the log
    equals the live one (against the wall clock, a client's clock a few minutes ahead made the
    same event weigh differently live and in a rebuild); the engine keeps event times within
    ``timestamp_future_skew`` of its clock, at ingest and in every replay. Scores are kept relative to a
    reference time ``t_ref``: ``s_ref[i] = Σ w · 2^((t − t_ref) / half_life)``, so adding an event
    is one multiply-add (:meth:`update`) and reading at time ``T`` multiplies by
    ``2^(−(T − t_ref) / half_life)``, which is the same for every item and so never changes the
    ranking.

    Parameters
    ----------
    half_life
        Seconds after which an event counts half as much.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> data = TrainingData(["a", "b"], ["u"], sp.csr_matrix((1, 2), dtype=np.float32),
    ...     np.array([0, 0], np.int32), np.array([0, 1], np.int32), np.array([4.0, 1.0], np.float32),
    ...     np.array([0.0, 10.0]), np.zeros((2, 1), np.float32), now=10.0)
    >>> model = TrendingPopularity(half_life=5.0).fit(data)
    >>> model.recommend([], k=2)
    [('a', 1.0), ('b', 1.0)]
    >>> model.update("b", 1.0, timestamp=10.0)
    >>> model.recommend([], k=1)
    [('b', 2.0)]
    """

    name: ClassVar[str] = "trending"

    def __init__(self, half_life: float = 3 * 86400.0) -> None:
        self.half_life = half_life

    # -- training -------------------------------------------------------------------------

    def fit(self, data: TrainingData) -> Self:
        """Sum the decayed positive event weights per item, with ``data.now`` as reference time
        (events after it count as made at ``data.now``)."""
        self._validate()
        n_items = len(data.item_ids)
        keep = (data.event_item >= 0) & (data.event_weight > 0)
        exponent = (np.minimum(data.event_time[keep], data.now) - data.now) / self.half_life
        sums = np.bincount(
            data.event_item[keep],
            weights=data.event_weight[keep].astype(np.float64) * np.exp2(exponent),
            minlength=n_items,
        )
        self._set_state(list(data.item_ids), sums, t_ref=float(data.now), now=float(data.now))
        return self

    def assign(self, item_ids: list[str], sums: np.ndarray, now: float) -> Self:
        """Take a fit computed elsewhere (the Spark engine): each item's decayed sum with ``now``
        as reference time, as :meth:`fit` computes them."""
        self._validate()
        if len(sums) != len(item_ids):
            raise InvalidInputError(f"{len(sums)} sums for {len(item_ids)} item ids", field="sums")
        self._set_state(list(item_ids), np.asarray(sums, dtype=np.float64), t_ref=float(now), now=float(now))
        return self

    def _validate(self) -> None:
        if not (isinstance(self.half_life, int | float) and math.isfinite(self.half_life) and self.half_life > 0):
            raise InvalidInputError(
                f"half_life must be a positive number of seconds, got {self.half_life!r}",
                field="half_life",
                value=self.half_life,
            )

    def _set_state(self, item_ids: list[str], sums: np.ndarray, *, t_ref: float, now: float) -> None:
        self.item_ids_: list[str] = item_ids
        self.item_index_: dict[str, int] = {item_id: i for i, item_id in enumerate(item_ids)}
        # capacity-doubling buffer so appending an unseen item is amortised O(1)
        self._sums = np.zeros(max(8, 2 * len(item_ids)), dtype=np.float64)
        self._sums[: len(item_ids)] = sums
        self.t_ref_: float = t_ref
        self.now_: float = now
        # The best-first rows, cached with the change count they were ranked at: a reader that
        # ranked while an update landed stores a stale ranking, which the count then ignores.
        self._changes = 0
        # With the ranked rows: their ids, and each id's place (to drop excluded items at once).
        self._ranking: tuple[int, np.ndarray, list[str], dict[str, int]] = (-1, np.empty(0, dtype=np.int64), [], {})
        self._sorted: tuple[int, float, float, np.ndarray] = (-1, t_ref, 0.0, np.empty(0))  # changes, t_ref, at

    @property
    def reference_sums_(self) -> np.ndarray:
        """``s_ref`` per item (a view; read-only by convention)."""
        require_fitted(self, "item_ids_")
        return self._sums[: len(self.item_ids_)]

    # -- real time ------------------------------------------------------------------------

    def update(self, item_id: str, weight: float, timestamp: float) -> None:
        """Add one event in O(1) (amortised): trending stays live between trainings.

        Non-positive weights are ignored, as in :meth:`fit`. An item the model has not seen
        is appended. ``now_`` advances to ``timestamp`` if it is later: the caller bounds event
        times (the engine refuses those past its clock's ``timestamp_future_skew``).
        """
        require_fitted(self, "item_ids_")
        if not math.isfinite(weight) or not math.isfinite(timestamp):
            raise InvalidInputError(
                f"weight and timestamp must be finite, got {weight!r} and {timestamp!r}", field="weight", value=weight
            )
        if weight <= 0:
            return
        exponent = (timestamp - self.t_ref_) / self.half_life
        if exponent > _MAX_EXPONENT:
            self._rebase(timestamp)
            exponent = 0.0
        i = self._row(item_id)  # first: appending an item may replace the buffer
        self._sums[i] += weight * math.exp2(exponent)
        self._changes += 1
        self.now_ = max(self.now_, timestamp)

    def update_many(self, item_ids: Sequence[str], weights: Sequence[float], timestamps: Sequence[float]) -> None:
        """Add a batch of events: the same model as :meth:`update` for each in turn, in one pass.

        Every weight and timestamp is checked before anything changes. The sums are one
        vectorised multiply-add per stretch of events between rebases (events in time order
        rebase at most once per ``_MAX_EXPONENT`` half-lives).
        """
        require_fitted(self, "item_ids_")
        if not len(item_ids) == len(weights) == len(timestamps):
            raise InvalidInputError(
                f"update_many got {len(item_ids)} item ids, {len(weights)} weights and {len(timestamps)} timestamps",
                field="weight",
                value=len(weights),
            )
        w = np.asarray(weights, dtype=np.float64)
        t = np.asarray(timestamps, dtype=np.float64)
        finite = np.isfinite(w) & np.isfinite(t)
        if not finite.all():
            k = int(np.argmin(finite))
            raise InvalidInputError(
                f"weight and timestamp must be finite, got {weights[k]!r} and {timestamps[k]!r}",
                field="weight",
                value=weights[k],
            )
        keep = np.flatnonzero(w > 0)
        if keep.size == 0:
            return
        w, t = w[keep], t[keep]
        rows = np.fromiter((self._row(item_ids[k]) for k in keep.tolist()), dtype=np.int64, count=keep.size)
        start = 0
        while start < keep.size:
            exponent = (t[start:] - self.t_ref_) / self.half_life
            over = np.flatnonzero(exponent > _MAX_EXPONENT)
            stop = keep.size if over.size == 0 else start + int(over[0])
            # add.at, not fancy-index +=: an item may appear more than once in the batch.
            np.add.at(self._sums, rows[start:stop], w[start:stop] * np.exp2(exponent[: stop - start]))
            if stop < keep.size:
                self._rebase(float(t[stop]))
            start = stop
        self._changes += 1
        self.now_ = max(self.now_, float(t.max()))

    def observe(self, user_ids: Sequence[str], item_ids: Sequence[str], weights: Sequence[float],
                timestamps: Sequence[float]) -> None:
        """:meth:`update_many` (trending does not care who acted): the online model's entry point."""
        self.update_many(item_ids, weights, timestamps)

    def _row(self, item_id: str) -> int:
        """The item's place in the sums, appending an item the model has not seen."""
        i = self.item_index_.get(item_id)
        if i is None:
            i = len(self.item_ids_)
            if i == self._sums.size:
                self._sums = np.concatenate([self._sums, np.zeros(self._sums.size, dtype=np.float64)])
            self.item_ids_.append(item_id)
            self.item_index_[item_id] = i
        return i

    def _rebase(self, t_ref: float) -> None:
        # O(n) but happens once per _MAX_EXPONENT half-lives
        self._sums *= math.exp2(-(t_ref - self.t_ref_) / self.half_life)
        self.t_ref_ = t_ref

    # -- reading --------------------------------------------------------------------------

    def _decay(self, at: float | None) -> float:
        return math.exp2(-((self.now_ if at is None else at) - self.t_ref_) / self.half_life)

    def score_of(self, item_ids: Sequence[str], at: float | None = None) -> np.ndarray:
        """Decayed scores of ``item_ids`` at time ``at`` (default ``now_``); 0 for unknown items."""
        require_fitted(self, "item_ids_")
        out = np.zeros(len(item_ids), dtype=np.float64)
        found = [(j, self.item_index_[x]) for j, x in enumerate(item_ids) if x in self.item_index_]
        if found:
            rows, cols = (np.asarray(v, dtype=np.int64) for v in zip(*found, strict=True))
            out[rows] = self._sums[cols] * self._decay(at)
        return out

    def quantiles(self, item_ids: Sequence[str]) -> np.ndarray:
        """Each item's popularity quantile now: the share of the model's items with a smaller
        score (0 for the tail and for an unknown item, near 1 for the head). From a sorted copy
        of the sums, re-sorted when they changed and at most every ``_QUANTILES_REFRESH`` seconds."""
        require_fitted(self, "item_ids_")
        values = self.reference_sums_
        if values.size == 0 or not item_ids:
            return np.zeros(len(item_ids))
        changes, t_ref, at, ordered = self._sorted
        clock = time.monotonic()
        if t_ref != self.t_ref_ or (changes != self._changes and clock - at >= _QUANTILES_REFRESH):
            ordered = np.sort(values)  # a rebase rescaled every sum: the old table would mislead
            self._sorted = (self._changes, self.t_ref_, clock, ordered)
        return np.searchsorted(ordered, self.score_of(item_ids, at=self.t_ref_), side="left") / ordered.size

    def scores(self, at: float | None = None) -> dict[str, float]:
        """All items' decayed scores at time ``at`` (default ``now_``); O(n_items), for features."""
        values = self.reference_sums_ * self._decay(at)
        return dict(zip(self.item_ids_, values.tolist(), strict=True))

    def recommend(
        self, history: Sequence[tuple[str, float]], k: int = 10, exclude: Collection[str] = ()
    ) -> ScoredItems:
        """The ``k`` most trending items with a positive score; ``history`` is ignored, ``exclude`` is not."""
        return as_scored(self.recommend_ranked(k, exclude))

    def recommend_ranked(self, k: int = 10, exclude: Collection[str] = ()) -> Ranked:
        """:meth:`recommend` as an id list and a score array."""
        require_fitted(self, "item_ids_")
        check_k(k)
        if k == 0:
            return [], np.zeros(0)
        banned = exclusion_set(exclude)
        values = self.reference_sums_
        changes, ranking, ids, rank_of = self._ranking
        if changes != self._changes:
            changes = self._changes
            ranking = self._rank(values, _RANKING_DEPTH)
            ids = [self.item_ids_[i] for i in ranking.tolist()]
            rank_of = {item_id: r for r, item_id in enumerate(ids)}
            self._ranking = (changes, ranking, ids, rank_of)
        # Vectorised: drop the banned items' places from the cached ranking (no loop over it).
        keep = np.ones(len(ids), dtype=bool)
        keep[[rank_of[x] for x in banned if x in rank_of]] = False
        chosen = np.flatnonzero(keep)[:k]
        if chosen.size < k and ranking.size == _RANKING_DEPTH < values.size:
            # the cached depth cannot cover this request: rank the whole catalog
            rows = [i for i in self._rank(values, values.size).tolist() if self.item_ids_[i] not in banned][:k]
            return [self.item_ids_[i] for i in rows], values[rows] * self._decay(None)
        return [ids[r] for r in chosen.tolist()], values[ranking[chosen]] * self._decay(None)

    @staticmethod
    def _rank(values: np.ndarray, depth: int) -> np.ndarray:
        """Rows of the ``depth`` largest positive sums, best first (ties: lower row first)."""
        return top_k(np.where(values > 0, values, -np.inf), depth)

    def similar_items(self, item_id: str, k: int = 10) -> ScoredItems:
        """Always ``[]``: popularity has no notion of one item being like another."""
        require_fitted(self, "item_ids_")
        check_k(k)
        return []

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        require_fitted(self, "item_ids_")
        path = Path(path)
        write_params(self, path)
        write_ids(path / "item_ids.json", self.item_ids_)
        np.savez(
            path / "state.npz",
            reference_sums=self.reference_sums_,
            times=np.array([self.t_ref_, self.now_], dtype=np.float64),
        )

    @classmethod
    def load(cls, path: Path) -> Self:
        path = Path(path)
        model = cls(**read_params(cls, path))
        with np.load(path / "state.npz", allow_pickle=False) as state:
            sums = state["reference_sums"]
            t_ref, now = (float(t) for t in state["times"])
        model._set_state([str(x) for x in read_ids(path / "item_ids.json")], sums, t_ref=t_ref, now=now)
        return model

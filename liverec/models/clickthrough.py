"""Click-through: each item's recent clicks per impression, from what the log says was shown.

Impressions reach the log from ``POST /feedback`` (or as ``impression`` events); clicks are
``click`` events. Both are counted with trending's exponential decay, so the rate is of the last
few days, and both stay live between trainings: the engine folds every impression and click in as
it arrives (:class:`~liverec.models.base.ExposureModel`), and a rebuild from the log gives the same
counts.

An item shown a handful of times says little about its rate, so the rate is shrunk towards the
catalogue's (the empirical-Bayes estimate with ``prior_impressions`` pseudo-impressions at the
catalogue rate, as ad systems smooth a CTR): ``(clicks + m · p) / (impressions + m)``, with an
item's clicks capped at its impressions.

>>> import numpy as np, scipy.sparse as sp
>>> from liverec.models.base import TYPE_INDEX, TrainingData
>>> from liverec.core.types import EventType
>>> shown, click = TYPE_INDEX[EventType.IMPRESSION], TYPE_INDEX[EventType.CLICK]
>>> data = TrainingData(["a", "b"], ["u"], sp.csr_matrix((1, 2), dtype=np.float32),
...     np.zeros(5, np.int32), np.array([0, 0, 0, 0, 1], np.int32), np.zeros(5, np.float32),
...     np.full(5, 10.0), np.zeros((2, 1), np.float32), now=10.0,
...     event_type=np.array([shown, shown, shown, click, shown], np.int8))
>>> model = ClickThrough(prior_impressions=0.0).fit(data)
>>> [round(float(x), 3) for x in model.rates(["a", "b", "c"])[0]]
[0.333, 0.0, 0.25]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.core.types import EventType
from liverec.models._common import check_k, read_params, require_fitted, write_params
from liverec.models.base import TYPE_INDEX, ScoredItems, TrainingData
from liverec.models.popularity import TrendingPopularity

__all__ = ["ClickThrough"]

_COUNTED = {EventType.IMPRESSION: "shown_", EventType.CLICK: "clicked_"}
_RECOUNT_BELOW = 1e-30  # a decay of the kept totals past which they are counted afresh


class ClickThrough:
    """Decayed clicks over decayed impressions per item, shrunk to the catalogue's rate.

    Parameters
    ----------
    half_life
        Seconds after which an impression or click counts half as much.
    prior_impressions
        Pseudo-impressions at the catalogue's rate every item starts with (``m`` above).
    """

    name: ClassVar[str] = "ctr"
    shown_: TrendingPopularity  # decayed impressions per item (set by fit or load)
    clicked_: TrendingPopularity  # decayed clicks per item
    # The catalogue's rate's two sums (capped clicks, impressions) decayed to time ``_totals_at``:
    # counted over every item at fit and load, then moved by the items each batch touches, so no
    # request pays for a pass over the catalogue.
    _totals: tuple[float, float]
    _totals_at: float

    def __init__(self, half_life: float = 3 * 86400.0, prior_impressions: float = 20.0) -> None:
        self.half_life = half_life
        self.prior_impressions = prior_impressions

    def _validate(self) -> None:
        m = self.prior_impressions
        if not (isinstance(m, int | float) and math.isfinite(m) and m >= 0):
            raise InvalidInputError(f"prior_impressions must be a number >= 0, got {m!r}",
                                    field="prior_impressions", value=m)

    def fit(self, data: TrainingData) -> Self:
        """Count the impressions and clicks of ``data`` (decayed to ``data.now``); with no event
        types (every event a view) there are none, and every rate is the prior 0."""
        self._validate()
        for event_type, attr in _COUNTED.items():
            if data.event_type is None:
                mask = np.zeros(len(data.event_item), dtype=bool)
            else:
                mask = (data.event_type == TYPE_INDEX[event_type]) & (data.event_item >= 0)
            counted = dataclasses.replace(data, event_weight=mask.astype(np.float32))
            setattr(self, attr, TrendingPopularity(self.half_life).fit(counted))
        self._count_totals()
        return self

    def observe_exposure(self, item_ids: Sequence[str], types: Sequence[EventType],
                         timestamps: Sequence[float]) -> None:
        """Fold impressions and clicks in (in time order, as the engine ingests them), in place."""
        require_fitted(self, "shown_")
        if not len(item_ids):
            return
        # The totals change only where an item's capped clicks or impressions did: its two sums
        # read before and after the batch, at one time (both decay alike, so any time will do).
        at = max(self._totals_at, max(timestamps))
        touched = list(dict.fromkeys(item_ids))
        before = self._sums(touched, at)
        for event_type, attr in _COUNTED.items():
            picked = [j for j, t in enumerate(types) if t == event_type]
            if picked:
                getattr(self, attr).update_many([item_ids[j] for j in picked], [1.0] * len(picked),
                                                [timestamps[j] for j in picked])
        after = self._sums(touched, at)
        decay = math.exp2(-(at - self._totals_at) / self.half_life)
        if decay < _RECOUNT_BELOW:  # so long a gap that the kept sums would lose their digits
            self._count_totals()
            return
        self._totals = (self._totals[0] * decay + after[0] - before[0], self._totals[1] * decay + after[1] - before[1])
        self._totals_at = at

    def _sums(self, item_ids: Sequence[str], at: float) -> tuple[float, float]:
        """The capped clicks and the impressions of ``item_ids`` at ``at``, summed."""
        impressions = self.shown_.score_of(item_ids, at)
        clicks = np.minimum(self.clicked_.score_of(item_ids, at), impressions)
        return float(clicks.sum()), float(impressions.sum())

    def _count_totals(self) -> None:
        """The catalogue's sums over every item shown (at fit and load: one pass over the catalogue)."""
        at = max(self.shown_.now_, self.clicked_.now_)
        self._totals, self._totals_at = self._sums(self.shown_.item_ids_, at), at

    def _prior(self) -> float:
        """The catalogue's rate: capped clicks over impressions, summed over every item."""
        clicks, impressions = self._totals
        return clicks / impressions if impressions > 0 else 0.0

    def rates(self, item_ids: Sequence[str], at: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each item's shrunk click-through rate and its decayed impressions, at ``at`` (default the
        latest event's time); an item never shown has the catalogue's rate and 0 impressions.

        A click counts at most once per impression: a click without one (the item found by search,
        say) is no evidence of how often showing it is followed by a click, and would push a rate
        past 1."""
        require_fitted(self, "shown_")
        shown, clicked = self.shown_, self.clicked_
        at = max(shown.now_, clicked.now_) if at is None else at
        impressions = shown.score_of(item_ids, at)
        clicks = np.minimum(clicked.score_of(item_ids, at), impressions)
        prior = self._prior()
        m = self.prior_impressions
        denominator = impressions + m
        rate = np.where(denominator > 0, (clicks + m * prior) / np.where(denominator > 0, denominator, 1.0), prior)
        return rate, impressions

    def recommend(self, history: Sequence[tuple[str, float]], k: int = 10,
                  exclude: Collection[str] = ()) -> ScoredItems:
        """The ``k`` shown items with the highest rate (the history is not read)."""
        require_fitted(self, "shown_")
        check_k(k)
        ids = [x for x in self.shown_.item_ids_ if x not in exclude]
        rate, impressions = self.rates(ids)
        order = sorted((j for j in range(len(ids)) if impressions[j] > 0), key=lambda j: (-rate[j], ids[j]))
        return [(ids[j], float(rate[j])) for j in order[:k]]

    def similar_items(self, item_id: str, k: int = 10) -> ScoredItems:
        """Always ``[]``: a rate says nothing about which items are alike."""
        require_fitted(self, "shown_")
        check_k(k)
        return []

    def save(self, path: Path) -> None:
        require_fitted(self, "shown_")
        path = Path(path)
        write_params(self, path)
        for attr in _COUNTED.values():
            getattr(self, attr).save(path / attr.rstrip("_"))

    @classmethod
    def load(cls, path: Path) -> Self:
        path = Path(path)
        model = cls(**read_params(cls, path))
        for attr in _COUNTED.values():
            setattr(model, attr, TrendingPopularity.load(path / attr.rstrip("_")))
        model._count_totals()
        return model

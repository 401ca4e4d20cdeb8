"""The contract every model keeps, and the training data they all learn from.

Models follow scikit-learn's rule: ``__init__`` stores hyperparameters, ``fit`` learns and
returns ``self``, learned attributes end in ``_``. Each model answers

* ``recommend(history, k, exclude)`` — items for a user given their weighted history, and
* ``similar_items(item_id, k)`` — items like one item (where the model has a notion of it),

saves itself to a directory and loads from one. ``liverec.testing.model_contract`` runs one
suite against every model.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from liverec.core.types import Event, EventType

ScoredItems = list[tuple[str, float]]
#: Event types in a fixed order: ``TrainingData.event_type`` holds positions in it.
EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
TYPE_INDEX: dict[EventType, int] = {t: n for n, t in enumerate(EVENT_TYPES)}
# The same ranking as parallel lists: ids and a float64 score array. The request path uses it
# (no tuple per candidate, scores stay an array for fusion); the tuple form is built from it.
Ranked = tuple[list[str], np.ndarray]


def as_scored(ranked: Ranked) -> ScoredItems:
    ids, scores = ranked
    return list(zip(ids, scores.tolist(), strict=True))


@dataclass
class TrainingData:
    """Interactions as index arrays in time order, plus the catalog's ids and text vectors.

    ``user_items`` sums the positive event weights per (user, item); negative events
    (dismissals, negative reviews) and searches are left out of it but kept in the arrays.
    """

    item_ids: list[str]
    user_ids: list[str]
    user_items: sp.csr_matrix  # [n_users, n_items], float32, positive weights only
    event_user: np.ndarray  # int32 [n_events]
    event_item: np.ndarray  # int32 [n_events], -1 for events without an item (search)
    event_weight: np.ndarray  # float32 [n_events], signed
    event_time: np.ndarray  # float64 [n_events], seconds
    item_vectors: np.ndarray  # float32 [n_items, d], L2-normalised
    now: float
    event_type: np.ndarray | None = None  # int8 [n_events], index into EVENT_TYPES (None: all views)

    def __post_init__(self) -> None:
        self.item_index = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self.user_index = {user_id: u for u, user_id in enumerate(self.user_ids)}

    @classmethod
    def from_events(
        cls,
        events: Iterable[Event],
        item_ids: Sequence[str],
        item_vectors: np.ndarray,
        weights: Mapping[EventType, float],
        *,
        now: float | None = None,
        polarity: Mapping[str, float] | None = None,
    ) -> TrainingData:
        """Index ``events`` (time-ordered) against the catalog; events on unknown items are dropped.

        ``now`` defaults to the latest event's time, but never later than the wall clock: one
        event dated in the future (a stored clock error) must not become every model's "now".

        ``polarity`` maps a review/rate event id to a sign-and-scale factor in [-1, 1]
        (see ``liverec.text.sentiment``); events not in it count with factor 1.
        """
        item_index = {item_id: i for i, item_id in enumerate(item_ids)}
        user_index: dict[str, int] = {}
        users, items, wts, times, types = [], [], [], [], []
        type_index = TYPE_INDEX
        for event in events:
            if event.item_id is not None and event.item_id not in item_index:
                continue
            u = user_index.setdefault(event.user_id, len(user_index))
            users.append(u)
            items.append(-1 if event.item_id is None else item_index[event.item_id])
            w = weights[event.type]
            if polarity is not None:
                w *= polarity.get(event.event_id, 1.0)
            wts.append(w)
            times.append(event.timestamp)
            types.append(type_index[event.type])
        return cls.from_arrays(
            list(item_ids), list(user_index), np.asarray(users, dtype=np.int32), np.asarray(items, dtype=np.int32),
            np.asarray(wts, dtype=np.float32), np.asarray(times, dtype=np.float64), np.asarray(types, dtype=np.int8),
            item_vectors, now=now,
        )

    @classmethod
    def from_arrays(
        cls,
        item_ids: list[str],
        user_ids: list[str],
        event_user: np.ndarray,
        event_item: np.ndarray,
        event_weight: np.ndarray,
        event_time: np.ndarray,
        event_type: np.ndarray,
        item_vectors: np.ndarray,
        *,
        now: float | None = None,
    ) -> TrainingData:
        """Events already indexed (users into ``user_ids``, items into ``item_ids`` or -1): the
        user-item matrix of positive weights is summed here, and ``now`` defaults as in :meth:`from_events`."""
        keep = (event_item >= 0) & (event_weight > 0)
        user_items = sp.csr_matrix(
            (event_weight[keep], (event_user[keep], event_item[keep])),
            shape=(len(user_ids), len(item_ids)),
            dtype=np.float32,
        )
        user_items.sum_duplicates()
        return cls(
            item_ids=item_ids,
            user_ids=user_ids,
            user_items=user_items,
            event_user=event_user,
            event_item=event_item,
            event_weight=event_weight,
            event_time=event_time,
            item_vectors=np.asarray(item_vectors, dtype=np.float32),
            now=min(float(event_time.max()), time.time()) if now is None and len(event_time) else float(now or 0.0),
            event_type=event_type,
        )


@runtime_checkable
class Model(Protocol):
    """What every model in ``liverec.models`` provides."""

    name: ClassVar[str]

    def fit(self, data: TrainingData) -> Self: ...

    def recommend(
        self, history: Sequence[tuple[str, float]], k: int = 10, exclude: Collection[str] = ()
    ) -> ScoredItems:
        """Top ``k`` (item_id, score) for a user whose history is (item_id, weight) pairs, oldest first.

        Items in ``exclude`` are never returned. Unknown item ids in ``history`` are ignored.
        """
        ...

    def similar_items(self, item_id: str, k: int = 10) -> ScoredItems:
        """Top ``k`` items like ``item_id`` (never the item itself); [] for an unknown item."""
        ...

    def save(self, path: Path) -> None:
        """Write the fitted model into the directory ``path`` (created if missing)."""
        ...

    @classmethod
    def load(cls, path: Path) -> Self: ...


@runtime_checkable
class UserKeyedModel(Protocol):
    """A model that keeps something per user id (a factor row, a user's last events).

    An erasure must reach it: :meth:`forget_users` removes those users in place, and what the
    model saves afterwards holds no trace of their ids. What users contributed to shared
    statistics (item factors, co-visitation counts) stays until the next training, which no
    longer sees their events.
    """

    def known_users(self) -> Collection[str]:
        """Every user id the model keeps something for."""
        ...

    def forget_users(self, user_ids: Collection[str]) -> int:
        """Remove what is kept for ``user_ids``, in place; how many of them were kept."""
        ...


@runtime_checkable
class ExposureModel(Protocol):
    """A model that learns from what users were shown and clicked (impressions carry no weight, so
    :class:`OnlineModel` never sees them): the engine folds every impression and click in as it
    arrives, as it does positive events for online models."""

    def observe_exposure(self, item_ids: Sequence[str], types: Sequence[EventType],
                         timestamps: Sequence[float]) -> None:
        """Fold ``impression`` and ``click`` events (in time order) in, in place."""
        ...


@runtime_checkable
class OnlineModel(Protocol):
    """A model that also learns between trainings, from every positive item event as it arrives.

    The engine folds each ingested batch in (and, after loading a snapshot, the events logged
    since it was trained), so the model stays what one fit on the whole log would give.
    """

    def observe(self, user_ids: Sequence[str], item_ids: Sequence[str], weights: Sequence[float],
                timestamps: Sequence[float]) -> None:
        """Fold positive item events (weights > 0, in time order) in, in place."""
        ...

"""The event log as columns, read in one streamed pass: what training holds instead of the events.

An :class:`~liverec.core.types.Event` object takes ~360 bytes (measured: ids, session and type as
Python objects); training needs a user code, an item code, a type, a time and a polarity, ~30 bytes.
So a 10M-event log costs training ~300 MB of columns instead of ~3.6 GB of objects. Only events
that carry a text (searches, reviews) are kept whole: an erasure during training must find their
texts again to drop their cached vectors.

>>> from liverec.core.types import Event, EventType
>>> log = LogColumns.read([
...     Event.create("u1", EventType.VIEW, "a", timestamp=1.0),
...     Event.create("u1", EventType.SEARCH, text="tents", timestamp=2.0),
...     Event.create("u2", EventType.PURCHASE, "b", timestamp=3.0),
... ], polarities=lambda events: {})
>>> len(log), log.user_ids, log.item_codes, [e.text for e in log.texts]
(3, ['u1', 'u2'], ['a', 'b'], ['tents'])
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from liverec.core.types import Event, EventType
from liverec.models.base import TYPE_INDEX, TrainingData

__all__ = ["MIN_FIRST_TOUCHES", "POSITIVE_ITEM_TYPES", "Holdout", "LogColumns"]

# A validation user needs a new item to predict and at least one before it: the users served
# are mostly short histories (Scientific: 62% have 1-4 items), so tuning must see them too.
MIN_FIRST_TOUCHES = 2
POSITIVE_ITEM_TYPES = frozenset(
    {EventType.VIEW, EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE, EventType.RATE, EventType.REVIEW}
)
_POSITIVE_CODES = np.array(sorted(TYPE_INDEX[t] for t in POSITIVE_ITEM_TYPES), dtype=np.int8)
_RATED = (EventType.REVIEW, EventType.RATE)
_TEXTS = (EventType.SEARCH, EventType.REVIEW)
CHUNK = 100_000  # reviews and ratings whose polarities are computed together while reading

Polarities = Callable[[Sequence[Event]], Mapping[str, float]]


@dataclass(frozen=True)
class Holdout:
    """Validation users: their target item, its time, and how many of their events (in log order) precede it.

    ``train`` marks the rows the validation models learn from: everything but each chosen
    user's target event and what they did after it.
    """

    train: Any  # what the validation models learn from: LogColumns' bool [n_events]; another engine's own
    targets: dict[str, str]  # user id -> held-out item id
    kept: dict[str, int]  # user id -> their events before the target
    times: dict[str, float]  # user id -> when the held-out event happened: the moment validation asks


@dataclass
class LogColumns:
    """Every event of the log as a row of columns, in log (time) order."""

    user_ids: list[str]  # user code -> id, in order of first appearance
    item_codes: list[str]  # item code -> id, for the items events name
    user: np.ndarray  # int32 [n]
    item: np.ndarray  # int32 [n], -1 for an event without an item
    type: np.ndarray  # int8 [n], TYPE_INDEX
    time: np.ndarray  # float64 [n]
    polarity: np.ndarray  # float64 [n]: a review's or rating's sign and strength, else 1
    texts: list[Event]  # the events that carry a text

    @classmethod
    def read(cls, events: Iterable[Event], polarities: Polarities) -> LogColumns:
        """Read ``events`` (time-ordered, as ``EventLog.all()`` streams them) a chunk at a time.

        ``polarities(events)`` gives the polarity of the reviews and ratings among ``events`` by
        event id (:meth:`liverec.realtime.signals.EventSignals.polarities`).
        """
        users: dict[str, int] = {}
        items: dict[str, int] = {}
        user, item, kind = array("i"), array("i"), array("b")
        stamp, polarity = array("d"), array("d")
        texts: list[Event] = []
        rated: list[tuple[int, Event]] = []
        type_index = TYPE_INDEX
        row = 0
        for event in events:
            user.append(users.setdefault(event.user_id, len(users)))
            item.append(-1 if event.item_id is None else items.setdefault(event.item_id, len(items)))
            kind.append(type_index[event.type])
            stamp.append(event.timestamp)
            polarity.append(1.0)
            if event.type in _TEXTS and event.text:
                texts.append(event)
            if event.type in _RATED:
                rated.append((row, event))
                if len(rated) >= CHUNK:
                    cls._polarize(polarity, rated, polarities)
            row += 1
        cls._polarize(polarity, rated, polarities)
        return cls(list(users), list(items), np.frombuffer(user, dtype=np.int32).copy(),
                   np.frombuffer(item, dtype=np.int32).copy(), np.frombuffer(kind, dtype=np.int8).copy(),
                   np.frombuffer(stamp, dtype=np.float64).copy(), np.frombuffer(polarity, dtype=np.float64).copy(),
                   texts)

    @staticmethod
    def _polarize(polarity: array, rated: list[tuple[int, Event]], polarities: Polarities) -> None:
        if rated:
            found = polarities([e for _, e in rated])
            for row, event in rated:
                polarity[row] = found.get(event.event_id, 1.0)
            rated.clear()

    def __len__(self) -> int:
        return len(self.user)

    def latest(self, bound: float, default: float) -> float:
        """The latest event time not after ``bound`` (``default`` when there is none)."""
        ok = self.time[self.time <= bound]
        return float(ok.max()) if len(ok) else default

    def holdout(self, max_users: int, seed: int) -> Holdout:
        """Hold out, for up to ``max_users`` users, their last first-time positive item event and all after it.

        A first touch is a user's first event on an item, when it is positive. Users with fewer than
        :data:`MIN_FIRST_TOUCHES` are not sampled: with nothing to go on, their next item says
        nothing about how to rank. The users are drawn with ``random.Random(seed)`` from the
        candidates sorted by id.
        """
        rows = np.flatnonzero(self.item >= 0)
        pairs = self.user[rows].astype(np.int64) * max(len(self.item_codes), 1) + self.item[rows]
        _, first = np.unique(pairs, return_index=True)
        touch = rows[first]
        touch = np.sort(touch[np.isin(self.type[touch], _POSITIVE_CODES)])
        counts = np.bincount(self.user[touch], minlength=len(self.user_ids))
        last = np.full(len(self.user_ids), -1, dtype=np.int64)
        np.maximum.at(last, self.user[touch], touch)
        candidates = np.flatnonzero(counts >= MIN_FIRST_TOUCHES)
        ids = sorted(self.user_ids[u] for u in candidates.tolist())
        chosen = random.Random(seed).sample(ids, min(max_users, len(ids)))
        code = {self.user_ids[u]: u for u in candidates.tolist()}
        cut = np.full(len(self.user_ids), np.iinfo(np.int64).max, dtype=np.int64)
        for user_id in chosen:
            cut[code[user_id]] = last[code[user_id]]
        index = np.arange(len(self.user))
        train = index < cut[self.user]
        kept = np.bincount(self.user[train], minlength=len(self.user_ids))
        return Holdout(train, {u: self.item_codes[int(self.item[cut[code[u]]])] for u in chosen},
                       {u: int(kept[code[u]]) for u in chosen},
                       {u: float(self.time[cut[code[u]]]) for u in chosen})

    def training_data(self, item_ids: Sequence[str], item_vectors: np.ndarray, weights: Mapping[EventType, float],
                      rows: np.ndarray | None = None) -> TrainingData:
        """:class:`TrainingData` of the ``rows`` marked (all by default) against the catalog ``item_ids``,
        equal to ``TrainingData.from_events`` of those events: events on items not in the catalog are
        dropped, users are numbered in order of first appearance."""
        catalog = {item_id: i for i, item_id in enumerate(item_ids)}
        to_catalog = np.array([catalog.get(x, -2) for x in self.item_codes] + [-1], dtype=np.int32)
        item = to_catalog[self.item]  # -1 (no item) maps through the last entry
        keep = item != -2
        if rows is not None:
            keep &= rows
        user = self.user[keep]
        present, first = np.unique(user, return_index=True)
        order = present[np.argsort(first)]
        recode = np.full(len(self.user_ids), -1, dtype=np.int32)
        recode[order] = np.arange(len(order), dtype=np.int32)
        kinds = self.type[keep]
        type_weight = np.zeros(max(TYPE_INDEX.values()) + 1, dtype=np.float64)  # as from_events: in doubles
        for event_type, code in TYPE_INDEX.items():
            type_weight[code] = weights.get(event_type, 0.0)
        event_weight = (type_weight[kinds] * self.polarity[keep]).astype(np.float32)
        return TrainingData.from_arrays(list(item_ids), [self.user_ids[u] for u in order.tolist()], recode[user],
                                        item[keep], event_weight, self.time[keep], kinds.copy(), item_vectors)

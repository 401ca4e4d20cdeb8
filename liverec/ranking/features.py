"""Features of one request's candidates: the ranker's input, built by registered feature blocks.

The union of every recall's candidates becomes the rows; each registered block adds columns.
Today's blocks are each recall's min-max scaled score (``recall_score``, what linear fusion
weighs) and its reciprocal rank (``recall_rank``); a block that reads more (recency, popularity,
tag overlap, feedback) is one :func:`register_features` call away, and a learned
:class:`~liverec.ranking.scoring.Scorer` sees it at once. Training builds the very same features
for its held-out cases, so what is tuned is what is served.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.models.base import Ranked
from liverec.realtime.state import UserState

__all__ = [
    "FEATURES",
    "FeatureBlock",
    "FeatureInput",
    "Features",
    "build_features",
    "minmax",
    "register_features",
    "unregister_features",
]


def minmax(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; equal values (a single candidate included) all get 1."""
    if values.size == 0:
        return values
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.ones_like(values)


@dataclass(frozen=True)
class FeatureBlock:
    """Columns one builder adds: their names, the source each speaks for, and a float64 [rows, columns] array."""

    name: str
    columns: tuple[str, ...]
    sources: tuple[str, ...]
    values: np.ndarray


@dataclass(frozen=True)
class FeatureInput:
    """What feature builders may read for one request (or one validation case)."""

    item_ids: list[str]
    index: dict[str, int]  # item id -> row
    recalls: Mapping[str, Ranked]  # each recall's candidates, by name, in registration order
    state: UserState | None
    models: Mapping[str, Any]
    now: float
    _rows: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def rows(self, recall: str) -> np.ndarray:
        """The rows of ``recall``'s candidates, in its order (computed once for every block)."""
        rows = self._rows.get(recall)
        if rows is None:
            found_ids = self.recalls[recall][0]
            rows = self._rows[recall] = np.fromiter(map(self.index.__getitem__, found_ids), dtype=np.int64,
                                                    count=len(found_ids))
        return rows


Builder = Callable[[FeatureInput], FeatureBlock]
FEATURES: dict[str, Builder] = {}


class Features:
    """Candidates × features: ``item_ids[r]`` is row ``r`` of every block.

    A block is built the first time it is read, so a scorer pays only for the columns it uses
    (linear fusion reads one block on the request path; a learned ranker reads them all).
    """

    def __init__(self, inp: FeatureInput, builders: Mapping[str, Builder]) -> None:
        self.item_ids = inp.item_ids
        self._input = inp
        self._builders = dict(builders)
        self._blocks: dict[str, FeatureBlock] = {}

    def block(self, name: str) -> FeatureBlock:
        found = self._blocks.get(name)
        if found is None:
            build = self._builders.get(name)
            if build is None:
                raise InvalidInputError(f"no feature block {name!r}; registered: {', '.join(self._builders)}",
                                        field="features", value=name)
            found = self._blocks[name] = build(self._input)
        return found

    @property
    def blocks(self) -> dict[str, FeatureBlock]:
        """Every block, built."""
        return {name: self.block(name) for name in self._builders}

    @functools.cached_property
    def matrix(self) -> np.ndarray:
        """Every block side by side, float64 [rows, columns]."""
        blocks = self.blocks
        if not blocks:
            return np.zeros((len(self.item_ids), 0))
        return np.hstack([b.values for b in blocks.values()])

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """Column names of :attr:`matrix`, each ``block:column``."""
        return tuple(f"{b.name}:{c}" for b in self.blocks.values() for c in b.columns)

    @functools.cached_property
    def sources(self) -> tuple[str, ...]:
        """Per column of :attr:`matrix`, the recall (or other source) it speaks for."""
        return tuple(s for b in self.blocks.values() for s in b.sources)

    def __len__(self) -> int:
        return len(self.item_ids)


def register_features(name: str, build: Builder) -> Builder:
    """Add a feature block (after those registered before)."""
    FEATURES[name] = build
    return build


def unregister_features(name: str) -> None:
    FEATURES.pop(name, None)


def build_features(
    recalls: Mapping[str, Ranked],
    state: UserState | None = None,
    models: Mapping[str, Any] | None = None,
    now: float = 0.0,
    recall_order: Sequence[str] | None = None,
) -> Features:
    """The union of ``recalls``' candidates (first-seen order, recalls in ``recall_order``, by
    default their mapping order) and every registered block's columns for them."""
    order = list(recall_order) if recall_order is not None else list(recalls)
    # The union in first-seen order, built at C speed (this runs on every request, ~900 ids).
    ids = list(dict.fromkeys(itertools.chain.from_iterable(recalls[name][0] for name in order if name in recalls)))
    inp = FeatureInput(ids, dict(zip(ids, range(len(ids)), strict=True)),
                       {name: recalls[name] for name in order if name in recalls}, state, models or {}, now)
    return Features(inp, FEATURES)


def _recall_scores(inp: FeatureInput) -> FeatureBlock:
    """Each recall's scores, min-max scaled within its own list (cosines, ALS dot products and
    decayed counts live on different scales); 0 where the recall did not propose the item."""
    names = tuple(inp.recalls)
    values = np.zeros((len(inp.item_ids), len(names)), dtype=np.float64)
    for col, name in enumerate(names):
        found_ids, scores = inp.recalls[name]
        if len(found_ids):
            values[inp.rows(name), col] = minmax(np.asarray(scores, dtype=np.float64))
    return FeatureBlock("recall_score", names, names, values)


def _recall_ranks(inp: FeatureInput) -> FeatureBlock:
    """Each recall's reciprocal rank of the item, 1/(1 + rank); 0 where it did not propose it."""
    names = tuple(inp.recalls)
    values = np.zeros((len(inp.item_ids), len(names)), dtype=np.float64)
    for col, name in enumerate(names):
        found_ids = inp.recalls[name][0]
        if len(found_ids):
            values[inp.rows(name), col] = 1.0 / np.arange(1, len(found_ids) + 1, dtype=np.float64)
    return FeatureBlock("recall_rank", names, names, values)


register_features("recall_score", _recall_scores)
register_features("recall_rank", _recall_ranks)

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
from liverec.ranking.recalls import RecallContext
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
    """What feature builders may read for one request (or one validation case).

    ``item_ids`` are the rows: every recall's candidates, or a subset of them (the ones a second
    stage re-ranks); ``recalls`` are always the recalls' whole lists, so a block computed on a
    subset equals the same rows of the block computed on all candidates.
    """

    item_ids: list[str]
    index: dict[str, int]  # item id -> row
    recalls: Mapping[str, Ranked]  # each recall's candidates, by name, in registration order
    context: RecallContext | None  # the user's state, the snapshot's models, the text index, memos
    now: float
    complete: bool = True  # whether ``item_ids`` is the union of every recall's candidates
    _positions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def state(self) -> UserState | None:
        return self.context.state if self.context is not None else None

    @property
    def models(self) -> Mapping[str, Any]:
        return self.context.models if self.context is not None else {}

    def positions(self, recall: str) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``recall``'s own list, rows here) of its candidates that are rows here,
        computed once for every block."""
        found = self._positions.get(recall)
        if found is None:
            ids = self.recalls[recall][0]
            if self.complete:
                rows = np.fromiter(map(self.index.__getitem__, ids), dtype=np.int64, count=len(ids))
                found = (np.arange(len(ids)), rows)
            else:  # the recall's ids that are rows here, found at C speed (-1: not a row)
                at = np.fromiter(map(self.index.get, ids, itertools.repeat(-1)), dtype=np.int64, count=len(ids))
                positions = np.flatnonzero(at >= 0)
                found = (positions, at[positions])
            self._positions[recall] = found
        return found

    def subset(self, rows: Sequence[int]) -> FeatureInput:
        ids = [self.item_ids[r] for r in rows]
        return FeatureInput(ids, dict(zip(ids, range(len(ids)), strict=True)), self.recalls, self.context, self.now,
                            complete=False)


Builder = Callable[[FeatureInput], FeatureBlock]
FEATURES: dict[str, Builder] = {}


class Features:
    """Candidates × features: ``item_ids[r]`` is row ``r`` of every block.

    A block is built the first time it is read, so a scorer pays only for the columns it uses
    (linear fusion reads one block; a learned ranker reads them all, for the rows it re-ranks).
    """

    def __init__(self, inp: FeatureInput, builders: Mapping[str, Builder]) -> None:
        self.item_ids = inp.item_ids
        self.input = inp
        self._builders = dict(builders)
        self._blocks: dict[str, FeatureBlock] = {}
        # What a scorer derives from these features once per request (a cascade's re-ranked rows),
        # keyed by the scorer, so scoring and explaining the same request share it.
        self.memo: dict[object, Any] = {}

    def block(self, name: str) -> FeatureBlock:
        found = self._blocks.get(name)
        if found is None:
            build = self._builders.get(name)
            if build is None:
                raise InvalidInputError(f"no feature block {name!r}; registered: {', '.join(self._builders)}",
                                        field="features", value=name)
            found = self._blocks[name] = build(self.input)
        return found

    def subset(self, rows: Sequence[int]) -> Features:
        """The same features for these rows only (blocks built already are sliced, the rest built for them)."""
        out = Features(self.input.subset(rows), self._builders)
        picked = np.asarray(rows, dtype=np.int64)
        for name, block in self._blocks.items():
            out._blocks[name] = FeatureBlock(block.name, block.columns, block.sources, block.values[picked])
        return out

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
    context: RecallContext | None = None,
    now: float = 0.0,
    recall_order: Sequence[str] | None = None,
) -> Features:
    """The union of ``recalls``' candidates (first-seen order, recalls in ``recall_order``, by
    default their mapping order) and every registered block's columns for them."""
    order = list(recall_order) if recall_order is not None else list(recalls)
    # The union in first-seen order, built at C speed (this runs on every request, ~900 ids).
    ids = list(dict.fromkeys(itertools.chain.from_iterable(recalls[name][0] for name in order if name in recalls)))
    inp = FeatureInput(ids, dict(zip(ids, range(len(ids)), strict=True)),
                       {name: recalls[name] for name in order if name in recalls}, context, now)
    return Features(inp, FEATURES)


def _recall_scores(inp: FeatureInput) -> FeatureBlock:
    """Each recall's scores, min-max scaled within its own list (cosines, ALS dot products and
    decayed counts live on different scales); 0 where the recall did not propose the item."""
    names = tuple(inp.recalls)
    values = np.zeros((len(inp.item_ids), len(names)), dtype=np.float64)
    for col, name in enumerate(names):
        scores = inp.recalls[name][1]
        if len(scores):
            positions, rows = inp.positions(name)
            scaled = minmax(np.asarray(scores, dtype=np.float64))
            values[rows, col] = scaled if inp.complete else scaled[positions]
    return FeatureBlock("recall_score", names, names, values)


def _recall_ranks(inp: FeatureInput) -> FeatureBlock:
    """Each recall's reciprocal rank of the item, 1/(1 + rank); 0 where it did not propose it."""
    names = tuple(inp.recalls)
    values = np.zeros((len(inp.item_ids), len(names)), dtype=np.float64)
    for col, name in enumerate(names):
        positions, rows = inp.positions(name)
        values[rows, col] = 1.0 / (1.0 + positions)
    return FeatureBlock("recall_rank", names, names, values)


register_features("recall_score", _recall_scores)
register_features("recall_rank", _recall_ranks)

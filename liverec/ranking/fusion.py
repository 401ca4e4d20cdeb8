"""Linear fusion: the recalls' scaled scores summed with one weight each, learned on validation.

Each recall's scores are min-max scaled within its own list (the ``recall_score`` feature
block), then summed with one weight per recall. The weights are chosen by coordinate ascent on
NDCG@10 of held-out next events (:meth:`LinearFusion.fit`), never set by hand; an A/B variant
may fix them instead (``{"kind": "linear", "weights": {...}}``).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.ranking.features import Features
from liverec.ranking.recalls import cold_start_recalls, recall_names
from liverec.ranking.scoring import Case, clearly_better, held_out_rank, ndcg_at, register_scorer

__all__ = ["BLOCK", "WEIGHT_GRID", "LinearFusion"]

WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
BLOCK = "recall_score"  # the feature block fusion weighs


def _check_weights(weights: object) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        raise InvalidInputError(f"weights must map recall names to numbers, not {type(weights).__name__}",
                                field="weights", value=weights)
    known = recall_names()
    out: dict[str, float] = {}
    for recall, weight in weights.items():
        if recall not in known:
            raise InvalidInputError(f"recall {recall!r} in weights is not one of {', '.join(known)}",
                                    field=f"weights.{recall}", value=recall)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise InvalidInputError(f"weights.{recall} {weight!r} must be a finite number >= 0",
                                    field=f"weights.{recall}", value=weight)
        out[recall] = float(weight)
    # All-zero weights would score every candidate 0 (nothing listed): never what was meant.
    if out and not any(w > 0 for w in out.values()):
        raise InvalidInputError("weights needs at least one positive weight", field="weights", value=out)
    return out


@register_scorer
class LinearFusion:
    """Σ weight · scaled score over the recalls.

    Parameters
    ----------
    weights
        Per recall; a recall left out weighs 0. ``None``: 1 for every recall. Fitting starts
        from these and searches from there; unfitted, they are used as they are.
    grid
        The values coordinate ascent tries for each weight.
    rounds
        Passes of coordinate ascent over the recalls.
    caution
        A step of the ascent is taken only when it gains more than this many standard errors of
        the paired per-user difference (:func:`~liverec.ranking.scoring.clearly_better`). 0, the
        default, takes any gain: at 1 the weights learned on MovieLens-100k's first 20% (210
        validation users) served its stream no better (HR@10 0.1400 against 0.1421).
    """

    kind: ClassVar[str] = "linear"

    def __init__(self, weights: Mapping[str, float] | None = None, grid: Sequence[float] = WEIGHT_GRID,
                 rounds: int = 2, caution: float = 0.0) -> None:
        self.weights = None if weights is None else _check_weights(weights)
        self.grid = tuple(grid)
        self.rounds = rounds
        self.caution = caution
        self._vectors: dict[tuple[str, ...], np.ndarray] = {}

    # -- serving ---------------------------------------------------------------------------

    @property
    def weights_in_force(self) -> Mapping[str, float] | None:
        """The learned weights once fitted, else the given ones (None: equal weights)."""
        return getattr(self, "weights_", None) or self.weights

    def _vector(self, columns: tuple[str, ...]) -> np.ndarray:
        w = self._vectors.get(columns)
        if w is None:
            weights = self.weights_in_force
            w = np.array([1.0 if weights is None else max(0.0, weights.get(c, 0.0)) for c in columns],
                         dtype=np.float64)
            self._vectors[columns] = w
        return w

    def score(self, features: Features) -> np.ndarray:
        block = features.block(BLOCK)
        scores: np.ndarray = block.values @ self._vector(block.columns)
        return scores

    def contributions(self, features: Features, rows: Sequence[int]) -> list[dict[str, float]]:
        block = features.block(BLOCK)
        parts = (block.values[list(rows)] * self._vector(block.columns)).tolist()
        return [{block.sources[c]: v for c, v in enumerate(part) if v} for part in parts]

    # -- learning --------------------------------------------------------------------------

    def fit(self, cases: Sequence[Case]) -> Self:
        """Coordinate ascent over :attr:`grid` per recall weight, maximising mean NDCG@10 of the
        cases' targets. A step is taken only when it is clearly better (:attr:`caution`): ties
        (and, with a caution, gains within the noise) keep the earlier weight, so a recall that
        does not help stays put.

        A recall that serves users with no history (``Recall.cold_start``: trending) never goes
        below the grid's smallest positive weight: validation users all have a history, and a
        zero there once left every new user an empty list (issue 13).
        """
        blocks = [(features.block(BLOCK), target) for features, target in cases]
        columns = blocks[0][0].columns if blocks else tuple(recall_names())
        matrices = [(block.values, _row(features, target)) for (block, target), (features, _) in
                    zip(blocks, cases, strict=True)]
        weights = dict(self.weights) if self.weights is not None else dict.fromkeys(columns, 1.0)
        floor = min((v for v in self.grid if v > 0), default=0.0)
        floors = {recall: floor for recall in cold_start_recalls() if recall in columns}
        for recall, least in floors.items():
            weights[recall] = max(weights.get(recall, 0.0), least)
        best = start = _ndcgs(matrices, _weight_vector(weights, columns))
        for _, recall in itertools.product(range(self.rounds), columns):
            for value in self.grid:
                if value == weights.get(recall, 0.0) or value < floors.get(recall, 0.0):
                    continue
                trial = {**weights, recall: value}
                if all(v == 0 for v in trial.values()):
                    continue
                scores = _ndcgs(matrices, _weight_vector(trial, columns))
                if clearly_better(scores, best, self.caution):
                    best, weights = scores, trial
        self.weights_ = weights
        self.validation_ = {"ndcg@10": round(_mean(best), 5), "ndcg@10_equal_weights": round(_mean(start), 5),
                            "users": len(cases)}
        self._vectors = {}
        return self

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "weights": dict(self.weights_in_force or {}),
                "validation": dict(getattr(self, "validation_", {}))}

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        record = {"params": {"weights": self.weights, "grid": list(self.grid), "rounds": self.rounds,
                             "caution": self.caution},
                  "weights_": getattr(self, "weights_", None), "validation_": getattr(self, "validation_", None)}
        (path / "linear.json").write_text(json.dumps(record, indent=2))

    @classmethod
    def load(cls, path: Path) -> Self:
        record = json.loads((path / "linear.json").read_text())
        scorer = cls(**record["params"])
        if record.get("weights_") is not None:
            scorer.weights_ = dict(record["weights_"])
            scorer.validation_ = dict(record.get("validation_") or {})
        return scorer

    @classmethod
    def from_fusion_json(cls, path: Path) -> Self:
        """A fitted scorer from a snapshot written before scorers existed (its ``fusion.json``)."""
        data = json.loads(path.read_text())
        scorer = cls()
        scorer.weights_ = dict(data["weights"])
        scorer.validation_ = dict(data.get("validation", {}))
        return scorer

    def __repr__(self) -> str:
        return f"LinearFusion(weights={dict(self.weights_in_force or {})!r})"


def _row(features: Features, target: str) -> int:
    """The target's row (-1 if no recall found it)."""
    try:
        return features.item_ids.index(target)
    except ValueError:
        return -1


def _weight_vector(weights: Mapping[str, float], columns: tuple[str, ...]) -> np.ndarray:
    return np.array([max(0.0, weights.get(c, 0.0)) for c in columns], dtype=np.float64)


def _ndcgs(cases: Sequence[tuple[np.ndarray, int]], w: np.ndarray, k: int = 10) -> np.ndarray:
    """NDCG@k of each case's target under weight vector ``w`` (ties broken against the target)."""
    out = np.zeros(len(cases))
    for n, (matrix, target) in enumerate(cases):
        if target >= 0 and w @ matrix[target] > 0:
            out[n] = ndcg_at(held_out_rank(matrix @ w, target), k)
    return out


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


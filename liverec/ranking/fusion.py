"""Fusing the recalls' candidates into one score, with weights learned on validation events.

Each recall's scores are min-max scaled within its own list (cosines, ALS dot products and
decayed counts live on different scales), then summed with one weight per recall. The
weights are chosen by coordinate ascent on NDCG@10 of held-out next events
(:func:`tune_weights`), never set by hand.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from liverec.ranking.recalls import RECALLS

WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class FusionWeights:
    """One weight per recall; ``validation`` records how they were chosen."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(RECALLS, 1.0))
    validation: Mapping[str, float] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"weights": dict(self.weights), "validation": dict(self.validation)}, indent=2))

    @classmethod
    def load(cls, path: Path) -> FusionWeights:
        data = json.loads(path.read_text())
        return cls(weights=data["weights"], validation=data.get("validation", {}))


def _minmax(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; equal values (a single candidate included) all get 1."""
    if values.size == 0:
        return values
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.ones_like(values)


def scale(scores: Mapping[str, float]) -> dict[str, float]:
    """Min-max scale one recall's scores to [0, 1] (a single candidate gets 1)."""
    values = _minmax(np.fromiter(scores.values(), dtype=np.float64, count=len(scores)))
    return dict(zip(scores, values.tolist(), strict=True))


Recalled = Mapping[str, float] | tuple[Sequence[str], np.ndarray]  # {id: score}, or ids and scores (Ranked)


def _ids_and_scores(found: Recalled) -> tuple[Sequence[str], np.ndarray]:
    if isinstance(found, tuple):
        return found
    return list(found), np.fromiter(found.values(), dtype=np.float64, count=len(found))


def candidate_matrix(recalls: Mapping[str, Recalled]) -> tuple[list[str], np.ndarray]:
    """The union of all recalls' candidates and a [candidates, RECALLS] matrix of scaled scores.

    Serving ranks by ``matrix @ weights``; tuning scores held-out targets on the very same
    matrix, so what is tuned is what is served.
    """
    present = [(col, _ids_and_scores(recalls[name])) for col, name in enumerate(RECALLS) if len(recalls.get(name, ()))]
    present = [(col, found) for col, found in present if len(found[0])]
    # The union in first-seen order, built at C speed (this runs on every request, ~900 ids).
    ids = list(dict.fromkeys(itertools.chain.from_iterable(found[0] for _, found in present)))
    index = dict(zip(ids, range(len(ids)), strict=True))
    matrix = np.zeros((len(ids), len(RECALLS)), dtype=np.float64)
    for col, (found_ids, scores) in present:
        rows = np.fromiter(map(index.__getitem__, found_ids), dtype=np.int64, count=len(found_ids))
        matrix[rows, col] = _minmax(np.asarray(scores, dtype=np.float64))
    return ids, matrix


def weight_vector(weights: Mapping[str, float]) -> np.ndarray:
    return np.array([max(0.0, weights.get(r, 0.0)) for r in RECALLS], dtype=np.float64)


Case = tuple[Mapping[str, Recalled], str]


def _case_matrix(case: Case) -> tuple[np.ndarray, int]:
    """A case as its candidate matrix and the target's row (-1 if no recall found it)."""
    recalls, target = case
    ids, matrix = candidate_matrix(recalls)
    return matrix, ids.index(target) if target in ids else -1


def _mean_ndcg(cases: Sequence[tuple[np.ndarray, int]], weights: Mapping[str, float], k: int = 10) -> float:
    """Mean NDCG@k of the targets under ``weights`` (ties broken against the target)."""
    w = weight_vector(weights)
    total = 0.0
    for matrix, target in cases:
        if target < 0 or w @ matrix[target] <= 0:
            continue
        scores = matrix @ w
        rank = int((scores >= scores[target]).sum()) - 1
        if rank < k:
            total += 1.0 / math.log2(rank + 2)
    return total / max(1, len(cases))


def tune_weights(cases: Sequence[Case], *, rounds: int = 2) -> FusionWeights:
    """Coordinate ascent over a grid of per-recall weights, maximising mean NDCG@10.

    ``cases`` are (each recall's scores, the item the user acted on next) for validation
    users. Ties keep the earlier weight, so a recall that does not help stays where it was.
    """
    matrices = [_case_matrix(c) for c in cases]
    weights = dict.fromkeys(RECALLS, 1.0)
    best = _mean_ndcg(matrices, weights)
    start = best
    for _, recall in itertools.product(range(rounds), RECALLS):
        for value in WEIGHT_GRID:
            if value == weights[recall]:
                continue
            trial = {**weights, recall: value}
            if all(v == 0 for v in trial.values()):
                continue
            score = _mean_ndcg(matrices, trial)
            if score > best + 1e-9:
                best, weights = score, trial
    return FusionWeights(
        weights=weights,
        validation={"ndcg@10": round(best, 5), "ndcg@10_equal_weights": round(start, 5), "users": len(cases)},
    )

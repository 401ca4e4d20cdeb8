"""Helpers the models share: top-k selection, id lookup, hyperparameters and ``params.json``."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liverec.core.errors import InvalidInputError, NotTrainedError

PARAMS_FILE = "params.json"


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite ``scores``, best first (ties broken by lower index).

    ``-inf`` marks an item that must not be returned; argpartition keeps this O(n + k log k).
    """
    if k <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64)
    if k < scores.size:
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(scores.size)
    # lexsort by (-score, index) so equal scores come out in a stable, reproducible order
    order = part[np.lexsort((part, -scores[part]))]
    return order[np.isfinite(scores[order])]


def indices_of(index: Mapping[str, int], item_ids: Iterable[str]) -> np.ndarray:
    """Positions of the known ``item_ids`` (unknown ids are dropped), as int64."""
    return np.array([index[x] for x in item_ids if x in index], dtype=np.int64)


def check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise InvalidInputError(f"k must be a non-negative integer, got {k!r}", field="k", value=k)


def history_weight(item_id: str, weight: object) -> float:
    """``weight`` as a finite float, or an error naming the history item it belongs to."""
    try:
        value = float(weight)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(weight, bool) or not math.isfinite(value):
        raise InvalidInputError(
            f"history weight of item {item_id!r} must be a finite number, got {weight!r}", field="history", value=weight
        )
    return value


def aggregate_history(history: Sequence[tuple[str, float]], index: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Known items of ``history`` and their summed (signed) weights, in order of first appearance."""
    positions: dict[int, int] = {}
    weights: list[float] = []
    for item_id, weight in history:
        i = index.get(item_id)
        if i is None:
            continue
        slot = positions.setdefault(i, len(weights))
        if slot == len(weights):
            weights.append(history_weight(item_id, weight))
        else:
            weights[slot] += history_weight(item_id, weight)
    return np.fromiter(positions, dtype=np.int64, count=len(positions)), np.asarray(weights, dtype=np.float64)


def scored(item_ids: Sequence[str], order: np.ndarray, scores: np.ndarray) -> list[tuple[str, float]]:
    return [(item_ids[i], float(scores[i])) for i in order]


def exclusion_set(exclude: Collection[str]) -> Collection[str]:
    # Membership tests on a list are O(n); callers often pass lists of seen items.
    return exclude if isinstance(exclude, set | frozenset | dict) else set(exclude)


def require_fitted(model: object, attribute: str) -> None:
    if getattr(model, attribute, None) is None:
        raise NotTrainedError(f"{type(model).__name__} is not trained; call fit() first")


def hyperparameters(model: object) -> dict[str, Any]:
    """The keyword arguments of ``type(model).__init__`` with their current values (scikit-learn's get_params)."""
    names = [p for p in inspect.signature(type(model).__init__).parameters if p != "self"]
    return {name: getattr(model, name) for name in names}


def write_params(model: object, path: Path) -> None:
    """Create ``path`` and write the model's class, name and hyperparameters to ``params.json``."""
    path.mkdir(parents=True, exist_ok=True)
    record = {
        "class": type(model).__name__,
        "name": getattr(model, "name", None),
        "params": hyperparameters(model),
    }
    (path / PARAMS_FILE).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")


def read_params(cls: type, path: Path) -> dict[str, Any]:
    """Hyperparameters stored in ``path/params.json``, checking they belong to ``cls``."""
    record = json.loads((Path(path) / PARAMS_FILE).read_text(encoding="utf-8"))
    if record.get("class") != cls.__name__:
        raise InvalidInputError(
            f"{path} holds a {record.get('class')!r} model, not a {cls.__name__!r}", field="path", value=str(path)
        )
    params = record.get("params", {})
    assert isinstance(params, dict)
    return params


def write_ids(path: Path, ids: Sequence[str | None]) -> None:
    path.write_text(json.dumps(list(ids), ensure_ascii=False), encoding="utf-8")


def read_ids(path: Path) -> list[Any]:
    ids = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(ids, list)
    return ids

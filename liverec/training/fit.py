"""Batch training on one machine: fit every registered model, tune the scorer on held-out next events.

The scorer is learned, not guessed: for a sample of users, each user's last
interaction with a *new* item (one they had not touched before) is held out together with
everything they did after it; the models are fitted on the rest, each validation user's
state is rebuilt from their training events, and the scorer is fitted to rank the held-out
item best (linear fusion: coordinate ascent on NDCG@10). The served models are then refitted on all
events, so nothing the user did is wasted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liverec.core.settings import Settings
from liverec.core.types import Event
from liverec.models.base import Model, TrainingData
from liverec.models.registry import build_model, snapshot_models
from liverec.ranking.features import Features
from liverec.ranking.fusion import LinearFusion
from liverec.ranking.scoring import scorer_from_config
from liverec.ranking.snapshot import ModelSnapshot
from liverec.realtime.state import UserState
from liverec.training.columns import POSITIVE_ITEM_TYPES, LogColumns

__all__ = ["POSITIVE_ITEM_TYPES", "Progress", "TrainReport", "fit_models", "fit_snapshot", "refit_models"]

Progress = Callable[[str, float], None]  # (step description, fraction done in [0, 1])


@dataclass
class TrainReport:
    """What a training run did, for the CLI, the manifest and the logs."""

    version: str = ""
    events: int = 0
    users: int = 0
    items: int = 0
    validation_users: int = 0
    scorer: str = ""
    weights: Mapping[str, float] = field(default_factory=dict)
    validation: Mapping[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # each model's own training report

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "events": self.events,
            "users": self.users,
            "items": self.items,
            "validation_users": self.validation_users,
            "scorer": self.scorer,
            "weights": dict(self.weights),
            "validation": dict(self.validation),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "models": self.models,
        }


def fit_models(settings: Settings, data: TrainingData) -> dict[str, Model]:
    """Every registered snapshot model, built from its ``[models.NAME]`` settings and fitted on ``data``."""
    return {name: build_model(name, settings.models.get(name), seed=settings.seed).fit(data)
            for name in snapshot_models() if name not in settings.models_off}


def refit_models(settings: Settings, data: TrainingData, fitted: Mapping[str, Model]) -> dict[str, Model]:
    """The served models on all events: a model that can continue from its validation fit
    (``refit(data)``, e.g. the sequence model, whose training is the slow part) does so; the
    others are fitted anew."""
    out: dict[str, Model] = {}
    for name in snapshot_models():
        if name in settings.models_off:
            continue
        refit = getattr(fitted.get(name), "refit", None)
        out[name] = refit(data) if callable(refit) else \
            build_model(name, settings.models.get(name, {}), seed=settings.seed).fit(data)
    return out


def fit_snapshot(
    log: LogColumns,
    item_ids: Sequence[str],
    item_vectors: np.ndarray,
    settings: Settings,
    history: Callable[[str], Sequence[Event]],
    build_state: Callable[[str, Sequence[Event]], UserState],
    features_for: Callable[[ModelSnapshot], Callable[[UserState], Features]],
    progress: Progress | None = None,
) -> tuple[ModelSnapshot, TrainReport]:
    """Fit, tune and return an unsaved snapshot plus the report (the local training engine).

    ``log`` is the event log as columns; ``history(user)`` reads one user's events from the log
    (only the validation users' are read as events). ``build_state`` rebuilds a user's state from
    events; ``features_for(snapshot)`` returns the ranker's features for a state against that
    snapshot — both come from the live engine, so validation uses exactly the serving code path.
    """
    report = TrainReport(events=len(log), items=len(item_ids))
    step = progress or (lambda _msg, _frac: None)
    weights = settings.event_weights
    t0 = time.perf_counter()

    step("holding out validation events", 0.05)
    held = log.holdout(settings.validation_users, settings.seed)
    data = log.training_data(item_ids, item_vectors, weights, held.train)
    step("fitting models for validation", 0.15)
    probe = ModelSnapshot("validation", fit_models(settings, data), LinearFusion(), frozenset(item_ids))
    del data
    features = features_for(probe)  # one ranker for all validation users
    report.seconds["fit_validation"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    cases = []
    for n, (user, target) in enumerate(sorted(held.targets.items())):
        # The user's events before the target, read back from the log: the same events in the same
        # order as the columns' rows (an event logged since the columns were read may shift them by one).
        state = build_state(user, history(user)[: held.kept[user]])
        cases.append((features(state), target))
        if n % 50 == 0:
            step("scoring validation users", 0.3 + 0.3 * n / max(1, len(held.targets)))
    step("tuning the scorer", 0.6)
    scorer = scorer_from_config(settings.scorer)
    if cases:
        scorer.fit(cases)
    described = scorer.describe()
    report.validation_users = len(cases)
    report.scorer = described["kind"]
    report.weights = described.get("weights", {})
    report.validation = described.get("validation", {})
    report.seconds["tune"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    step("fitting models on all events", 0.75)
    full = log.training_data(item_ids, item_vectors, weights)
    models = refit_models(settings, full, probe.models)
    report.users = len(full.user_ids)
    report.models = {name: dict(model_report) for name, model in models.items()
                     if (model_report := getattr(model, "report_", None))}
    report.seconds["fit"] = time.perf_counter() - t2
    step("done", 1.0)
    return ModelSnapshot("", models, scorer, frozenset(item_ids)), report

"""Batch training on one machine: fit every registered model, tune the scorer on held-out next events.

The scorer is learned, not guessed: for a sample of users, each user's last
interaction with a *new* item (one they had not touched before) is held out together with
everything they did after it; the models are fitted on the rest, each validation user's
state is rebuilt from their training events, and the scorer is fitted to rank the held-out
item best (linear fusion: coordinate ascent on NDCG@10). The served models are then refitted on all
events, so nothing the user did is wasted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liverec.core.settings import Settings
from liverec.core.types import Event, EventType
from liverec.models.base import Model, TrainingData
from liverec.models.registry import build_model, snapshot_models
from liverec.ranking.features import Features
from liverec.ranking.fusion import LinearFusion
from liverec.ranking.scoring import scorer_from_config
from liverec.ranking.snapshot import ModelSnapshot
from liverec.realtime.state import UserState

__all__ = ["POSITIVE_ITEM_TYPES", "Progress", "TrainReport", "fit_models", "fit_snapshot", "holdout_split",
           "refit_models"]

Progress = Callable[[str, float], None]  # (step description, fraction done in [0, 1])
# A validation user needs a new item to predict and at least one before it: the users served
# are mostly short histories (Scientific: 62% have 1-4 items), so tuning must see them too.
MIN_FIRST_TOUCHES = 2
POSITIVE_ITEM_TYPES = frozenset(
    {EventType.VIEW, EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE, EventType.RATE, EventType.REVIEW}
)


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


def holdout_split(events: Sequence[Event], max_users: int, seed: int) -> tuple[list[Event], dict[str, Event]]:
    """Hold out, for up to ``max_users`` users, their last first-time positive item event and all after it.

    Returns the training events (time order kept) and the held-out target event per user.
    Users with no positive item event before the target are not sampled: with nothing to go on,
    their next item says nothing about how to rank.
    """
    by_user: dict[str, list[int]] = {}
    for idx, e in enumerate(events):
        by_user.setdefault(e.user_id, []).append(idx)
    candidates: dict[str, int] = {}
    for user, idxs in by_user.items():
        seen: set[str] = set()
        first_touch: list[int] = []
        for i in idxs:
            e = events[i]
            if e.item_id is not None and e.type in POSITIVE_ITEM_TYPES and e.item_id not in seen:
                first_touch.append(i)
            if e.item_id is not None:
                seen.add(e.item_id)
        if len(first_touch) >= MIN_FIRST_TOUCHES:
            candidates[user] = first_touch[-1]
    rng = random.Random(seed)
    users = sorted(candidates)
    chosen = set(rng.sample(users, min(max_users, len(users))))
    cut = {u: candidates[u] for u in chosen}
    train = [e for i, e in enumerate(events) if e.user_id not in cut or i < cut[e.user_id]]
    targets = {u: events[i] for u, i in cut.items()}
    return train, targets


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
    events: Sequence[Event],
    item_ids: Sequence[str],
    item_vectors: np.ndarray,
    settings: Settings,
    polarity: Mapping[str, float],
    build_state: Callable[[str, Sequence[Event]], UserState],
    features_for: Callable[[ModelSnapshot], Callable[[UserState], Features]],
    progress: Progress | None = None,
) -> tuple[ModelSnapshot, TrainReport]:
    """Fit, tune and return an unsaved snapshot plus the report (the local training engine).

    ``build_state`` rebuilds a user's state from events; ``features_for(snapshot)`` returns the
    ranker's features for a state against that snapshot — both come from the live engine, so
    validation uses exactly the serving code path.
    """
    report = TrainReport(events=len(events), items=len(item_ids))
    step = progress or (lambda _msg, _frac: None)
    weights = settings.event_weights
    t0 = time.perf_counter()

    step("holding out validation events", 0.05)
    train_events, targets = holdout_split(events, settings.validation_users, settings.seed)
    data = TrainingData.from_events(train_events, item_ids, item_vectors, weights, polarity=polarity)
    step("fitting models for validation", 0.15)
    probe = ModelSnapshot("validation", fit_models(settings, data), LinearFusion(), frozenset(item_ids))
    features = features_for(probe)  # one ranker for all validation users
    report.seconds["fit_validation"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    by_user: dict[str, list[Event]] = {}
    for e in train_events:
        if e.user_id in targets:
            by_user.setdefault(e.user_id, []).append(e)
    cases = []
    for n, (user, target) in enumerate(sorted(targets.items())):
        state = build_state(user, by_user.get(user, []))
        cases.append((features(state), target.item_id or ""))
        if n % 50 == 0:
            step("scoring validation users", 0.3 + 0.3 * n / max(1, len(targets)))
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
    full = TrainingData.from_events(events, item_ids, item_vectors, weights, polarity=polarity)
    models = refit_models(settings, full, probe.models)
    report.users = len(full.user_ids)
    report.models = {name: dict(model_report) for name, model in models.items()
                     if (model_report := getattr(model, "report_", None))}
    report.seconds["fit"] = time.perf_counter() - t2
    step("done", 1.0)
    return ModelSnapshot("", models, scorer, frozenset(item_ids)), report

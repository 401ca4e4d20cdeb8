"""Batch training: fit every registered model, tune the scorer on held-out next events.

The scorer is learned, not guessed: for a sample of users, each user's last
interaction with a *new* item (one they had not touched before) is held out together with
everything they did after it; the models are fitted on the rest, each validation user's
state is rebuilt from their training events, and the scorer is fitted to rank the held-out
item best (linear fusion: coordinate ascent on NDCG@10). The served models are then refitted on all
events, so nothing the user did is wasted.

The batch stages run on a :class:`TrainingEngine`: :class:`LocalTraining` (this process, the
default) or the Spark engine (:mod:`liverec.training.spark`); the scorer is tuned here either way,
on the serving code path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
from liverec.storage.base import EventLog
from liverec.training.columns import POSITIVE_ITEM_TYPES, Holdout, LogColumns, Polarities

__all__ = [
    "POSITIVE_ITEM_TYPES",
    "LocalTraining",
    "Progress",
    "ReadLog",
    "TrainReport",
    "TrainingEngine",
    "fit_models",
    "fit_snapshot",
    "refit_models",
]

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
    validation: Mapping[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # each model's own training report
    stages: dict[str, float] = field(default_factory=dict)  # seconds per batch stage, where the engine times them
    interest_similarity: float | None = None  # the interest threshold validation chose

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
            "stages": {k: round(v, 3) for k, v in self.stages.items()},
            "interest_similarity": self.interest_similarity,
        }


def fit_models(settings: Settings, data: TrainingData, seconds: dict[str, float] | None = None) -> dict[str, Model]:
    """Every registered snapshot model, built from its ``[models.NAME]`` settings and fitted on ``data``
    (each model's wall time added to ``seconds`` when given)."""
    return refit_models(settings, data, {}, seconds)


def refit_models(settings: Settings, data: TrainingData, fitted: Mapping[str, Model],
                 seconds: dict[str, float] | None = None) -> dict[str, Model]:
    """The served models on all events: a model that can continue from its validation fit
    (``refit(data)``, e.g. the sequence model, whose training is the slow part) does so; the
    others are fitted anew."""
    out: dict[str, Model] = {}
    for name in snapshot_models():
        if name in settings.models_off:
            continue
        t0 = time.perf_counter()
        refit = getattr(fitted.get(name), "refit", None)
        out[name] = refit(data) if callable(refit) else \
            build_model(name, settings.models.get(name, {}), seed=settings.seed).fit(data)
        if seconds is not None:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
    return out


class ReadLog(Protocol):
    """The event log as a training engine read it: what the fit and the erasure scrub need of it.

    :class:`~liverec.training.columns.LogColumns` is the local engine's (columns in memory); the
    Spark engine's keeps DataFrames on the cluster and brings to the driver only what is listed here.
    """

    @property
    def user_ids(self) -> Sequence[str]:
        """Every user the read saw (an erasure during training scrubs them)."""
        ...

    @property
    def texts(self) -> Sequence[Event]:
        """The events read that carry a text (searches, reviews): an erasure drops their vectors."""
        ...

    def __len__(self) -> int: ...

    def latest(self, bound: float, default: float) -> float: ...

    def holdout(self, max_users: int, seed: int) -> Holdout: ...


class TrainingEngine(Protocol):
    """Where the batch stages run: reads the log, fits every snapshot model on the rows asked for.

    ``fit(log, ..., held)`` fits on everything but ``held``'s validation events; with ``held``
    None, on every event, continuing from ``fitted`` (the validation fit) where a model can. It
    returns the models and how many users they were fitted on.
    """

    name: str

    def read(self, events: EventLog, polarities: Polarities, through: int | None = None) -> ReadLog:
        """The log as learning reads it, only events stored by ``through`` (an ``EventLog.position``)."""
        ...

    def fit(self, log: ReadLog, item_ids: Sequence[str], item_vectors: np.ndarray, settings: Settings,
            held: Holdout | None = None, fitted: Mapping[str, Model] | None = None) -> tuple[dict[str, Model], int]: ...


class LocalTraining:
    """The default engine: the log as columns in this process, every model fitted here."""

    name = "local"

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}  # wall time per stage of the last training

    def read(self, events: EventLog, polarities: Polarities, through: int | None = None) -> LogColumns:
        t0 = time.perf_counter()
        log = LogColumns.read(events.all(through), polarities)
        self.seconds = {"read": time.perf_counter() - t0}
        return log

    def fit(self, log: ReadLog, item_ids: Sequence[str], item_vectors: np.ndarray, settings: Settings,
            held: Holdout | None = None, fitted: Mapping[str, Model] | None = None) -> tuple[dict[str, Model], int]:
        if not isinstance(log, LogColumns):
            raise TypeError("the local engine fits only what it read (LogColumns)")
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        data = log.training_data(item_ids, item_vectors, settings.event_weights,
                                 None if held is None else held.train)
        seconds["rows"] = time.perf_counter() - t0
        models = refit_models(settings, data, fitted or {}, seconds)
        self.seconds.update({f"{'validation' if held is not None else 'fit'}.{k}": v for k, v in seconds.items()})
        return models, len(data.user_ids)


def fit_snapshot(
    engine: TrainingEngine,
    log: ReadLog,
    item_ids: Sequence[str],
    item_vectors: np.ndarray,
    settings: Settings,
    history: Callable[[str], Sequence[Event]],
    build_state: Callable[[str, Sequence[Event], float], UserState],
    features_for: Callable[[ModelSnapshot], Callable[[UserState, float], Features]],
    progress: Progress | None = None,
) -> tuple[ModelSnapshot, TrainReport]:
    """Fit, tune and return an unsaved snapshot plus the report.

    ``engine`` runs the batch stages on ``log`` (what it read). ``history(user)`` reads one user's
    events from the log (only the validation users' are read as events). ``build_state`` rebuilds a
    user's state from events with an interest threshold: training chooses it among
    ``settings.interest_similarities`` by the tuned scorer's hold-out NDCG@10
    (``report.interest_similarity``). ``features_for(snapshot)`` returns the ranker's features for a state
    against that snapshot at a time (each validation user's is their held-out event's, the moment
    they would have asked: features such as an item's age read it as a request reads its own) —
    both come from the live engine, so validation uses exactly the serving code path, whichever
    engine fitted the models.
    """
    report = TrainReport(events=len(log), items=len(item_ids))
    step = progress or (lambda _msg, _frac: None)
    t0 = time.perf_counter()

    step("holding out validation events", 0.05)
    held = log.holdout(settings.validation_users, settings.seed)
    step(f"fitting models for validation ({engine.name})", 0.15)
    validation, _ = engine.fit(log, item_ids, item_vectors, settings, held)
    probe = ModelSnapshot("validation", validation, LinearFusion(), frozenset(item_ids))
    features = features_for(probe)  # one ranker for all validation users
    report.seconds["fit_validation"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    # The users' events before their targets, read back from the log: the same events in the same
    # order as the columns' rows (an event logged since the columns were read may shift them by one).
    held_users = sorted(held.targets.items())
    histories: dict[str, Sequence[Event]] = {}
    for user, _ in held_users:
        histories[user] = history(user)[: held.kept[user]]
    thresholds = settings.interest_similarities or (settings.interest_similarity,)
    tried: dict[float, tuple[float, Any]] = {}
    # A user whose interests come out the same at another threshold (a short or one-topic history)
    # has the same features: computed once.
    last: dict[str, tuple[list[tuple[bytes, float, dict[str, float]]], Features]] = {}
    for k, threshold in enumerate(thresholds):
        cases = []
        for n, (user, target) in enumerate(held_users):
            state = build_state(user, histories[user], threshold)
            key = [(i.vector.tobytes(), i.ts, i.tags) for i in state.interests]
            if user not in last or last[user][0] != key:
                last[user] = (key, features(state, held.times[user]))
            cases.append((last[user][1], target))
            if n % 50 == 0:
                done = (k + n / max(1, len(held_users))) / len(thresholds)
                step(f"scoring validation users (interest threshold {threshold:g})", 0.3 + 0.3 * done)
        scorer = scorer_from_config(settings.scorer)
        if cases:
            scorer.fit(cases)
        tried[threshold] = (float(scorer.describe().get("validation", {}).get("ndcg@10", 0.0)), scorer)
    step("tuning the scorer", 0.6)
    # ties (too few users for the scorer to report a hold-out) keep the configured one, else the smaller
    report.interest_similarity = max(tried, key=lambda t: (tried[t][0], t == settings.interest_similarity, -t))
    scorer = tried[report.interest_similarity][1]
    described = scorer.describe()
    report.validation_users = len(held_users)
    report.scorer = described["kind"]
    report.weights = described.get("weights", {})
    report.validation = dict(described.get("validation", {}))
    if len(tried) > 1:
        report.validation["ndcg@10_by_interest_similarity"] = {f"{t:g}": round(v, 5) for t, (v, _) in tried.items()}
    report.seconds["tune"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    step(f"fitting models on all events ({engine.name})", 0.75)
    models, report.users = engine.fit(log, item_ids, item_vectors, settings, fitted=probe.models)
    report.models = {name: dict(model_report) for name, model in models.items()
                     if (model_report := getattr(model, "report_", None))}
    report.seconds["fit"] = time.perf_counter() - t2
    step("done", 1.0)
    return ModelSnapshot("", models, scorer, frozenset(item_ids)), report

"""Training and adoption of snapshots by a live engine: what happens around the fit.

Training refits the language centring on the current catalog (the text index is rebuilt in the
new space and user states are rebuilt in it), fits every model and the scorer with the local
training engine (:func:`~liverec.training.fit.fit_snapshot`) against the serving code path,
writes the snapshot and swaps it in. Adoption serves a snapshot another process wrote. Either
way, events logged after the snapshot's training are folded into the models that learn online,
and users erased after its events were read are scrubbed from it first (:mod:`.erasure`).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from liverec.core.errors import InvalidInputError, StorageError
from liverec.core.settings import Settings
from liverec.core.types import Event, EventType
from liverec.models.registry import build_model, model_hyperparameters
from liverec.ranking.features import Features
from liverec.ranking.filters import Filters
from liverec.ranking.ranker import Ranker, Serving
from liverec.ranking.snapshot import ModelSnapshot, current_version, load_snapshot, rewrite_snapshot, write_snapshot
from liverec.realtime.catalog import LiveCatalog
from liverec.realtime.live import LiveStates
from liverec.realtime.state import UserState
from liverec.storage.base import EventLog, SnapshotIndex
from liverec.training.columns import LogColumns
from liverec.training.erasure import Erasure
from liverec.training.fit import LocalTraining, Progress, ReadLog, TrainingEngine, TrainReport, fit_snapshot

__all__ = ["CHUNK", "ModelLifecycle", "current_snapshot"]

CHUNK = 512  # events folded per batch when catching up after a snapshot is loaded


def current_snapshot(model_dir: Path, index: SnapshotIndex | None = None) -> ModelSnapshot | None:
    """The current snapshot under ``model_dir`` (the store's ``index`` says which, where it keeps
    one; else ``CURRENT``), or None before any training."""
    version = current_version(model_dir, index)
    if not version:
        return None
    if index is not None and not (model_dir / version).is_dir():
        raise StorageError(f"the store's current model snapshot is {version}, but {model_dir} does not hold it: "
                           "every worker of a store must share one model directory (settings model_dir)")
    return load_snapshot(model_dir, version)


class ModelLifecycle:
    """Trains a live engine's store into snapshots under ``model_dir`` and adopts them.

    ``lock`` is the engine's write lock: the swaps happen under it, the fit does not. ``erasure``
    scrubs what is trained or adopted of users erased meanwhile (erasures take the same lock, so
    none slips between the last scrub and a swap). ``engine`` runs the batch stages (default: here).
    """

    def __init__(
        self,
        events: EventLog,
        catalog: LiveCatalog,
        states: LiveStates,
        serving: Serving,
        settings: Settings,
        model_dir: Path,
        lock: threading.RLock,
        erasure: Erasure,
        engine: TrainingEngine | None = None,
    ) -> None:
        self.events = events
        self.catalog = catalog
        self.states = states
        self.serving = serving
        self.settings = settings
        self.model_dir = model_dir
        self.lock = lock
        self.erasure = erasure
        self.engine: TrainingEngine = engine or LocalTraining()
        self.index = erasure.index  # the store's record of snapshots, where it keeps one

    def train(self, progress: Progress | None = None) -> TrainReport:
        """Fit every model on the whole event log, tune the scorer, write and swap in a snapshot."""
        t0, started = time.perf_counter(), time.time()
        epoch = self.erasure.epoch()  # before reading: whoever is erased after it is scrubbed below
        position = self.events.position()  # training reads what was stored by now, a catch-up what came after
        polarities: Callable[[Sequence[Event]], Mapping[str, float]] = self.states.signals.polarities
        # An engine that runs elsewhere (Spark) encodes the texts the vector cache lacks where it runs:
        # the reviews' before their polarities are read (a log bulk-loaded around the engine has
        # none cached), the catalog's after.
        encode = getattr(self.engine, "encode_texts", None)
        if encode is not None:
            space, of_events = self.catalog.space, polarities

            def encoded_first(events: Sequence[Event]) -> Mapping[str, float]:
                encode([e.text for e in events if e.type is EventType.REVIEW and e.text], space)
                return of_events(events)

            polarities = encoded_first

        log = self.engine.read(self.events, polarities, position)
        try:
            if not len(log):
                raise InvalidInputError("there are no events to train on; ingest events first", field="events")
            if encode is not None:
                encode([item.text for item in self.catalog.items()], self.catalog.space)
            item_ids, vectors = self.catalog.refit_centering()  # builds outside the lock, swaps under it
            with self.lock:
                self.states.clear()  # states of the old space; rebuilt in the new one
                self.serving.swap(self.serving.snapshot)
            self.states.warm()  # in the new space, before training's own work, so requests meet warm states
            snapshot, report = fit_snapshot(
                self.engine, log, item_ids, vectors, self.settings, self.events.by_user,
                lambda user, events, threshold: self.states.build(user, events, interest_similarity=threshold),
                self._features_for, progress)
        finally:
            close = getattr(log, "close", None)
            if close is not None:
                close()
        report.stages = dict(getattr(self.engine, "seconds", {}))
        snapshot.centering = self.catalog.space.centering
        snapshot.manifest["erasure_epoch"] = epoch
        self.erasure.scrub(snapshot, log)
        report.seconds["total"] = time.perf_counter() - t0
        manifest = {
            "report": report.to_dict(),
            "encoder": self.catalog.space.name,
            "params": self._params(snapshot),
            "engine": self.engine.name,
            "trained_until": self._trained_until(log, started),
            "read_position": position,
            "erasure_epoch": snapshot.erasure_epoch,
            "interest_similarity": report.interest_similarity,
        }
        snapshot = write_snapshot(self.model_dir, snapshot, manifest, self.index)
        report.version = snapshot.version
        with self.lock:
            self._scrub(snapshot, log)  # an erasure while the snapshot was written
            rebuild = self.states.use_interest_similarity(report.interest_similarity)
            if rebuild:  # states of the old threshold; rebuilt with the chosen one
                self.states.clear()
            self.serving.swap(snapshot)
            # Events ingested while training ran went into the old models; fold them into the new.
            self.catch_up(snapshot)
        if rebuild:
            self.states.warm()
        return report

    def adopt(self, version: str | None = None) -> ModelSnapshot:
        """Serve a snapshot another process trained into ``model_dir`` (default: the current one).

        When its language centring differs from the one served, the text index is rebuilt in the
        new space; then, or when its training chose another interest threshold, user states are
        dropped (then rebuilt, as at the start of :meth:`train`).
        """
        snapshot = load_snapshot(self.model_dir, version)
        with self.lock:
            self._scrub(snapshot)  # trained elsewhere: users erased since its events were read
            recentred = self.catalog.recentre(snapshot.centering)
            if self.states.use_interest_similarity(snapshot.manifest.get("interest_similarity")) or recentred:
                self.states.clear()
            self.serving.swap(snapshot)
            self.catch_up(snapshot)
        self.states.warm()
        return snapshot

    def _trained_until(self, log: ReadLog, started: float) -> float:
        """The latest event time training saw, among times ingest could accept when the log was read.

        An event stored before the bound existed (dated 1e12) is left out: catching up from it
        would skip every event logged since (issue 12).
        """
        latest = started + self.settings.timestamp_future_skew
        return log.latest(latest, default=started)

    def _scrub(self, snapshot: ModelSnapshot, read: ReadLog | None = None) -> None:
        """Scrub a snapshot about to be served, and its copy on disk if it changed. Call with the lock held."""
        scrubbed = self.erasure.scrub(snapshot, read)
        if scrubbed.advanced:
            rewrite_snapshot(self.model_dir, snapshot, scrubbed.models, self.index)

    def refold_online(self) -> None:
        """Rebuild the served snapshot's online models from their trained copy on disk and the log.

        After an erasure: what the erased user's events added to co-visitation and trending since
        training goes with those events, and the served models are again what a restart rebuilds
        (before, the live process kept the user's pairs until the next training, a restart did not).
        The load runs outside the lock; the replay of events logged since training runs under it.
        """
        served = self.serving.snapshot
        names = served.live_model_names() if served is not None else []
        if served is None or not names:
            return
        fresh = load_snapshot(self.model_dir, served.version, names)
        with self.lock:
            if self.serving.snapshot is not served:
                return  # a training or adoption swapped in a snapshot caught up from the log since
            self.erasure.scrub(fresh)  # users erased after its copy on disk was read
            snapshot = ModelSnapshot(served.version, {**served.models, **fresh.models}, served.scorer,
                                     served.catalog_items, served.centering, served.manifest)
            self.serving.swap(snapshot)
            self.catch_up(snapshot)

    def refit_online(self) -> None:
        """Fit the served snapshot's online models (co-visitation, trending, click-through) anew on the log as
        learning reads it now, and swap them in.

        After the quarantine took back, or gave back, events the snapshot's training had seen (or
        not): replaying from the trained copy (:meth:`refold_online`) cannot subtract them. The
        read and the fit run outside the lock; events stored meanwhile are folded in under it.
        """
        served = self.serving.snapshot
        names = served.live_model_names() if served is not None else []
        if served is None or not names:
            return
        started = time.time()
        position = self.events.position()
        log = LogColumns.read(self.events.all(position), self.states.signals.polarities)
        item_ids = self.catalog.ids()
        data = log.training_data(item_ids, self.catalog.vectors_of(item_ids), self.settings.event_weights)
        fresh = {name: build_model(name, self.settings.models.get(name, {}), seed=self.settings.seed).fit(data)
                 for name in names}
        read_until = self._trained_until(log, started)
        with self.lock:
            if self.serving.snapshot is not served:
                return  # a training or adoption swapped in a snapshot read from the log since
            snapshot = ModelSnapshot(served.version, {**served.models, **fresh}, served.scorer,
                                     served.catalog_items, served.centering, served.manifest)
            self.serving.swap(snapshot)
            self.catch_up(snapshot, read_until, position)

    def catch_up(self, snapshot: ModelSnapshot, since: float | None = None, position: int | None = None) -> None:
        """Fold what the snapshot's training did not read into its online models, as the live process
        had done: events stored after its read (``position``, default the manifest's) but dated no
        later than the newest it read (``since``, default the manifest's ``trained_until``), which
        are a client's late events, then every event dated after that. Call with the lock held.

        Events dated past what ingest accepts now are stored clock errors that training already
        counted: they are not folded in again. A snapshot written before read positions were kept
        (no ``read_position``) misses the late events, as it always did."""
        trained_until = float(snapshot.manifest.get("trained_until", math.inf)) if since is None else since
        if position is None and "read_position" in snapshot.manifest:
            position = int(snapshot.manifest["read_position"])
        late = self.events.arrived_after(position, trained_until) if position is not None else iter(())
        latest = time.time() + self.settings.timestamp_future_skew
        newer = self.events.between(math.nextafter(trained_until, math.inf), math.nextafter(latest, math.inf))
        chunk: list[Event] = []
        weights = self.settings.event_weights
        for event in itertools.chain(late, newer):
            chunk.append(event)
            if len(chunk) == CHUNK:
                snapshot.observe(chunk, weights)
                chunk = []
        snapshot.observe(chunk, weights)

    def _features_for(self, snapshot: ModelSnapshot) -> Callable[[UserState, float], Features]:
        ranker = Ranker(self.catalog, snapshot, self.settings)
        return lambda state, now: ranker.features(state, Filters(), now)

    def _params(self, snapshot: ModelSnapshot) -> dict[str, Any]:
        """What the snapshot was trained with, for its manifest."""
        return {
            "models": {name: model_hyperparameters(model) for name, model in snapshot.models.items()},
            "scorer": dict(self.settings.scorer),
            "seed": self.settings.seed,
            "validation_users": self.settings.validation_users,
        }

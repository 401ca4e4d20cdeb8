"""The Engine: the one object a program holds. Each method hands the work to the package that owns it.

* items → :class:`~liverec.realtime.catalog.LiveCatalog` (enriched, encoded, live at once);
* events → the store's log, then :class:`~liverec.realtime.live.LiveStates` (every user's state)
  and the served snapshot's online models;
* recommend → the served :class:`~liverec.ranking.ranker.Ranker` (recalls → features → scorer →
  filters → MMR → reasons); similar items and search → :mod:`liverec.ranking.lookup`;
* train and adopt → :class:`~liverec.training.lifecycle.ModelLifecycle`.

>>> engine = Engine.open("memory://")                          # doctest: +SKIP
>>> engine.ingest_items([{"item_id": "i1", "title": "Trail running shoes"}])  # doctest: +SKIP
>>> engine.ingest_events([{"user_id": "u1", "type": "view", "item_id": "i1"}])  # doctest: +SKIP
>>> engine.recommend("u1", k=5)                                # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liverec.cleaning import Cleaner, CleanLog, cleaning_settings
from liverec.cleaning.reviews import review_check
from liverec.core.errors import ConflictError, InvalidInputError, NotFoundError
from liverec.core.params import check_diversity, check_id, check_k, check_share
from liverec.core.settings import Settings
from liverec.core.types import Event, EventType, Item, Recommendation, check_event_times
from liverec.models.registry import check_model_settings
from liverec.ranking.filters import Filters
from liverec.ranking.lookup import search, similar_items
from liverec.ranking.ranker import Serving
from liverec.ranking.recalls import check_recall_names
from liverec.ranking.scoring import Scorer, scorer_from_config
from liverec.ranking.snapshot import ModelSnapshot, current_version, version_number
from liverec.ranking.verdict import Verdict, verdict
from liverec.realtime.catalog import LiveCatalog
from liverec.realtime.live import LiveStates
from liverec.realtime.peers import Peers
from liverec.realtime.signals import EventSignals
from liverec.realtime.state import UserState
from liverec.realtime.store import StateStore, check_state_store_url, open_state_store
from liverec.storage import open_store
from liverec.storage.base import Store
from liverec.storage.locks import exclusive
from liverec.storage.quarantine import Quarantined, check_kind
from liverec.text.sentiment import ReviewPolarity
from liverec.text.space import TextSpace
from liverec.training.engines import training_engine, training_settings
from liverec.training.erasure import Erasure, scrub_model_dir
from liverec.training.fit import Progress, TrainReport
from liverec.training.lifecycle import ModelLifecycle, current_snapshot

__all__ = ["DEFAULT_STORE_URL", "Engine", "ForgetResult", "IngestResult", "SyncResult", "check_settings"]

DEFAULT_STORE_URL = "sqlite:///liverec.db"


def check_settings(settings: Settings) -> None:
    """What core's own checks cannot know: that ``models`` and ``scorer`` name registered models,
    parameters and scorer kinds, that ``state_store`` is a URL a state store opens and that
    ``training`` names a training engine (and ``cleaning`` holds known rules). A misspelt
    name stops the engine (or a service's start) with an error naming it."""
    check_model_settings(settings.models, settings.models_off)
    check_recall_names(settings.recalls_off, "recalls_off")
    scorer_from_config(settings.scorer)
    check_state_store_url(settings.state_store)
    training_settings(settings)
    cleaning_settings(settings.cleaning)


@dataclass(frozen=True)
class IngestResult:
    """How many of the given events were new; the rest (``duplicates``) were retries of stored
    ones or repeats within the batch."""

    received: int
    stored: int
    stored_ids: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


# What makes two events with one id the same event; the time too, unless it was stamped on arrival.
_CONTENT = ("user_id", "type", "item_id", "value", "text", "session_id")


def _check_repeats(repeats: Iterable[Event], new: Mapping[str, Event], stored: Mapping[str, Event],
                   untimed: Collection[str]) -> None:
    """Raise ConflictError for the first event of ``repeats`` whose id names a stored event, or
    an earlier one of its batch (``new``), with other content; its message names the fields only,
    never their values (the user id may be a pseudonym)."""
    for again in repeats:
        first, where = stored.get(again.event_id), "is already stored"
        if first is None:
            first, where = new.get(again.event_id), "appears twice in the batch"
        if first is None:  # erased since it was found: nothing left to differ from
            continue
        differ = [name for name in _CONTENT if getattr(first, name) != getattr(again, name)]
        if first.timestamp != again.timestamp and again.event_id not in untimed:
            differ.append("timestamp")
        if differ:
            raise ConflictError(
                f"event {again.event_id!r} {where} with another {', '.join(differ)}; an event id names one "
                "event, so send a new event under a new id",
                field="event_id", key=again.event_id,
            )


@dataclass(frozen=True)
class SyncResult:
    """What :meth:`Engine.sync` took in from other processes."""

    erased: list[str]
    items: int
    adopted: str | None

    def __bool__(self) -> bool:
        return bool(self.erased or self.items or self.adopted)


@dataclass(frozen=True)
class ForgetResult:
    """What ``forget_user`` erased."""

    user_id: str
    events_removed: int
    state_removed: bool


class Engine:
    """Ingests items and events, keeps every user's state live, trains, and recommends.

    Parameters
    ----------
    store
        Where events, items and text vectors are kept (:func:`liverec.storage.open_store`).
    settings
        How the engine behaves (:class:`~liverec.core.settings.Settings`).
    state_store
        Where live user states are kept (default: opened from ``settings.state_store``, and closed
        with the engine).
    """

    def __init__(self, store: Store, settings: Settings | None = None, *,
                 state_store: StateStore | None = None) -> None:
        self.store = store
        self.settings = settings = settings or Settings()
        check_settings(settings)
        self._lock = threading.RLock()  # one writer at a time: ingest, item changes, snapshot swaps
        self._owns_model_dir = settings.model_dir is None and store.location.directory is None
        self.model_dir = self._model_dir()
        # A model directory of this process alone is not what the store's other workers serve.
        self._snapshots = None if self._owns_model_dir else store.snapshots
        # Snapshots that predate an erasure (a crash came before they were rewritten) are rewritten first.
        scrub_model_dir(self.model_dir, store.events, self._snapshots)
        snapshot = current_snapshot(self.model_dir, self._snapshots)
        space = TextSpace(settings.encoder, settings.encoder_threads, store.vectors,
                          snapshot.centering if snapshot is not None else None)
        self.erasure = Erasure(store, space, self.model_dir, self._snapshots)
        self.peers = Peers(store)  # before the catalog is read: what changes meanwhile is taken in
        self.items = LiveCatalog(store.catalog, space, self._lock, settings.enrich_workers)
        signals = EventSignals(self.items, ReviewPolarity(space.encoder))
        cleaning = cleaning_settings(settings.cleaning)
        self.cleaning = Cleaner(cleaning, store.quarantine, review_check(self.items) if cleaning.reviews else None)
        learned = CleanLog(store.events, self.cleaning.view, cleaning)  # what states and models learn from
        self._owns_states = state_store is None
        states = state_store if state_store is not None else open_state_store(settings.state_store)
        self.states = LiveStates(learned, states, signals, settings, self._lock)
        self.serving = Serving(self.items, snapshot, settings)
        self.models = ModelLifecycle(learned, self.items, self.states, self.serving, settings,
                                     self.model_dir, self._lock, self.erasure,
                                     training_engine(settings, store, self.model_dir))
        if snapshot is not None:
            # States held (a shared store's) were built with the served snapshot's interest threshold.
            self.states.use_interest_similarity(snapshot.manifest.get("interest_similarity"))
            self.models.catch_up(snapshot)

    @classmethod
    def open(cls, url: str = DEFAULT_STORE_URL, *, create: bool = True, **settings: Any) -> Engine:
        """Open (or create) the store at ``url`` with ``settings`` (see :class:`Settings`). With
        ``create`` false a store that does not exist is a NotFoundError and nothing is created
        (what a reader wants: a mistyped URL must not become an empty store)."""
        return cls(open_store(url, create=create), Settings.from_mapping(settings))

    def close(self) -> None:
        self.store.close()
        if self._owns_states:
            self.states.store.close()
        if self._owns_model_dir:  # a memory:// engine's snapshots live as long as it does
            shutil.rmtree(self.model_dir, ignore_errors=True)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _model_dir(self) -> Path:
        if self.settings.model_dir is not None:
            return Path(self.settings.model_dir)
        # Beside the store (<db>.models); a memory:// store's snapshots live as long as the process.
        return self.store.location.side(".models") or Path(tempfile.mkdtemp(prefix="liverec-models-"))

    @property
    def snapshot(self) -> ModelSnapshot | None:
        """The model snapshot being served (None before any training)."""
        return self.serving.snapshot

    # ------------------------------------------------------------------ writing

    def ingest_items(self, items: Iterable[Item | Mapping[str, Any]]) -> int:
        """Validate, enrich (language, keyword tags), encode and store items; live at once.

        All items are validated before any is stored: one bad item stores nothing.
        """
        return self.items.upsert(items)

    def delete_item(self, item_id: str) -> bool:
        """Remove an item from the catalog and from every list; whether it existed."""
        return self.items.delete(item_id)

    def validate_events(self, events: Iterable[Event | Mapping[str, Any]]) -> list[Event]:
        """Parse and check events (type, fields, time within the settings' bounds of the wall
        clock, known item) without storing anything."""
        parsed = [Event.from_dict(e) for e in events]
        settings = self.settings
        check_event_times(parsed, floor=settings.timestamp_floor, future_skew=settings.timestamp_future_skew,
                          now=time.time())
        known: set[str | None] = {None}  # items already found in this batch (most events repeat one)
        for e in parsed:
            if e.item_id not in known:
                if e.item_id not in self.items:
                    raise InvalidInputError(
                        f"event {e.event_id!r} refers to unknown item {e.item_id!r}", field="item_id", value=e.item_id
                    )
                known.add(e.item_id)
        return parsed

    def ingest_events(
        self, events: Iterable[Event | Mapping[str, Any]], *, stamped: Collection[str] = ()
    ) -> IngestResult:
        """Validate, durably store and apply events to their users' states, in that order.

        Every event is validated (type, fields, time, known item) before any is stored. An
        ``event_id`` names one event: sent again with the same content (a retry, or a repeat
        within the batch) it is skipped, so a retried batch changes nothing; sent with other
        content it is a :class:`ConflictError` naming the id, and nothing of the batch is stored.
        Content is every stored field after parsing (``"2026-01-01T00:00:00Z"`` and ``1767225600``
        are the same time), but an event sent without a timestamp is stamped on arrival and its
        retry carries a new time: for those (a mapping without ``timestamp``, or an id in
        ``stamped``) the time is not compared.
        Every new event is stored; cleaning (:mod:`liverec.cleaning`) decides which are learned
        from: duplicates, events of users whose traffic looks robotic and spam reviews are stored
        but quarantined, and a user quarantined now has what their earlier events taught taken back.
        When this returns, the next ``recommend`` for each user reflects the events.
        """
        rows = events if isinstance(events, list) else list(events)
        parsed = self.validate_events(rows)
        if not parsed:
            return IngestResult(0, 0)
        with self._lock:
            new = list(self._new_events(rows, parsed, stamped).values())
            if not new:
                return IngestResult(len(parsed), 0)
            fresh_ids = frozenset(e.event_id for e in new)
            screened = self.cleaning.screen(new)
            learn = screened.learn
            signals = self.states.signals(learn)
            stored = self.store.events.append(new)
            if screened.quarantine:  # after the events: an entry never names what is not stored
                self.store.quarantine.add(screened.quarantine)
                self.cleaning.view.refresh()
            snapshot = self.serving.snapshot
            if snapshot is not None:
                snapshot.observe(learn, self.settings.event_weights)
            self.peers.folded(fresh_ids)
            self.states.apply(learn, signals)
            for user_id in screened.users:
                self.states.forget(user_id)
        if screened.users:
            self._retract(screened.users)  # what their earlier events added to co-visitation and trending goes
        return IngestResult(len(parsed), stored, fresh_ids)

    def check_event_ids(self, events: Sequence[Event], *, stamped: Collection[str] = ()) -> None:
        """Raise the :class:`ConflictError` :meth:`ingest_events` would for ``events`` (an id
        reused with other content), storing nothing: for a batch stored in several calls, all
        or nothing (``liverec ingest``)."""
        with self._lock:
            self._new_events(events, events, stamped)

    def _new_events(
        self, rows: Sequence[Event | Mapping[str, Any]], parsed: Sequence[Event], stamped: Collection[str]
    ) -> dict[str, Event]:
        """The events of ``parsed`` whose ids are not stored yet, first of each id, by id; a repeat
        with other content raises. Stored events are read back only when an id repeats one."""
        known = self.store.events.existing([e.event_id for e in parsed])
        new: dict[str, Event] = {}
        repeats: list[Event] = []
        for e in parsed:
            if e.event_id in known or e.event_id in new:
                repeats.append(e)
            else:
                new[e.event_id] = e
        if repeats:
            untimed = set(stamped) | {e.event_id for row, e in zip(rows, parsed, strict=True)
                                      if not isinstance(row, Event) and row.get("timestamp") is None}
            _check_repeats(repeats, new, self.store.events.get_many(known), untimed)
        return new

    def forget_user(self, user_id: str) -> ForgetResult:
        """Erase the user: their events, the vectors of their texts, their state, what the served
        models and every snapshot kept on disk hold of them (see :mod:`liverec.training.erasure`).

        Future training never sees their events, and a training running meanwhile (here or in
        another process) serves and writes nothing of them. When this returns, the store's files
        hold no trace of the user; the feedback log is the caller's to erase.
        """
        check_id(user_id, "user_id")
        with self._lock:
            removed = self.erasure.erase_events(user_id)
            self.store.quarantine.forget_user(user_id)
            self.cleaning.released(user_id)
            had_state = self.states.forget(user_id)
            self.serving.ranker.forget(user_id)
        self.erasure.scrub_kept()  # outside the lock: rewriting snapshots must not hold up ingest
        if removed:
            self.models.refold_online()  # what their events added since training goes too
        self.erasure.checkpoint()
        return ForgetResult(user_id, removed, had_state)

    def sync(self) -> SyncResult:
        """Take in what other processes serving this store changed: erasures
        (:meth:`sync_erasures`), items upserted or deleted and the events they stored (through the
        store's feeds, :class:`~liverec.realtime.peers.Peers`: the events reach the online models,
        and, where the states are this process's alone, their users' states are rebuilt from the
        log at their next read), and a newer snapshot in the shared model directory (adopted). Cheap
        when nothing changed: a service calls it every ``sync_interval`` seconds, and at once when
        the store announces a change."""
        erased = self.sync_erasures()
        self._sync_quarantine()
        items = self.peers.items(self.items)
        events = self.peers.events()
        snapshot = self.serving.snapshot
        if events:
            with self._lock:
                if snapshot is not None:
                    snapshot.observe(self.cleaning.learnable(events), self.settings.event_weights)
                if not self.states.store.shared:  # the other process applied them to states of its own
                    for user_id in {e.user_id for e in events}:
                        self.states.forget(user_id)
        adopted = None
        current = current_version(self.model_dir, self._snapshots)
        if current is not None and (snapshot is None or (version_number(current) or 0) > (
                version_number(snapshot.version) or 0)):
            adopted = self.adopt(current).version
        return SyncResult(erased, items, adopted)

    def sync_erasures(self) -> list[str]:
        """Apply erasures another process made in this store (``liverec forget`` while a service
        runs): drop those users' live states and what the served models keep of them, and rebuild
        the online models from the log. One read of the store when nothing is new; a service calls
        it every ``sync_interval`` seconds. The users found, as kept in the store."""
        seen, epoch = self.erasure.seen, self.erasure.epoch()
        if epoch <= seen:
            return []  # the every-second case: no user list is built
        snapshot = self.serving.snapshot
        candidates = set(self.states.user_ids()) | (snapshot.users() if snapshot is not None else set())
        erased = self.store.events.erased_since(seen, candidates)
        with self._lock:
            for user_id in erased:
                self.states.forget(user_id)
                self.serving.ranker.forget(user_id)
            self.erasure.seen = max(self.erasure.seen, epoch)
        if erased:
            self.models.refold_online()  # what their events added since training goes too
        return sorted(erased)

    # ------------------------------------------------------------------ cleaning

    def quarantined(self, kind: str | None = None) -> list[Quarantined]:
        """The users and events (of ``kind``) kept from learning, oldest first, with why."""
        return self.store.quarantine.entries(kind)

    def quarantine_user(self, user_id: str, reason: str = "quarantined by an admin") -> bool:
        """Keep the user's events, past and future, from learning (stored, not deleted); whether
        they were not quarantined already. What their events taught the live models is taken back."""
        check_id(user_id, "user_id")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            raise InvalidInputError("reason must be a non-empty text of at most 500 characters", field="reason",
                                    value=reason)
        added = self.store.quarantine.add([Quarantined("user", user_id, user_id, reason, time.time())])
        if added:
            self._quarantine_changed({user_id})
        return bool(added)

    def release(self, kind: str, key: str) -> Quarantined:
        """Take a user or an event out of quarantine: learning sees their events again (the live
        state at once, the online models at once, trained models at the next training). Raises
        NotFoundError when it is not quarantined."""
        check_kind(kind)
        check_id(key, "key")
        entry = self.store.quarantine.release(kind, key)
        if entry is None:
            raise NotFoundError(f"{kind} {key!r} is not quarantined", kind="quarantine", key=key)
        self.cleaning.released(entry.user_id)
        self._quarantine_changed({entry.user_id})
        return entry

    def _sync_quarantine(self) -> None:
        """Take in what another process quarantined or released."""
        view = self.cleaning.view
        before = (view.users, view.events)
        if view.refresh():
            events = self.store.events.get_many(before[1] ^ view.events)
            moved = set(before[0] ^ view.users) | {e.user_id for e in events.values()}
            self._quarantine_changed(moved, refreshed=True)

    def _quarantine_changed(self, user_ids: set[str], refreshed: bool = False) -> None:
        """The users whose learnable events changed: their states are rebuilt from what learning
        now sees, and the online models replayed from the log."""
        if not refreshed:
            self.cleaning.view.refresh()
        with self._lock:
            for user_id in user_ids:
                self.states.forget(user_id)
        self._retract(user_ids)

    def _retract(self, user_ids: Collection[str]) -> None:
        """Make the online models again what the log as learning reads it gives: replayed from the
        trained copy when these users' events all came after its training (the usual case: a bot
        caught live), else fitted anew (the training saw events now quarantined, or missed released ones)."""
        snapshot = self.serving.snapshot
        if snapshot is None:
            return
        trained_until = float(snapshot.manifest.get("trained_until", math.inf))
        if any(e.timestamp <= trained_until for u in user_ids for e in self.store.events.by_user(u)):
            self.models.refit_online()
        else:
            self.models.refold_online()

    # ------------------------------------------------------------------ live states

    def warm_states(self, user_ids: Sequence[str] | None = None, limit: int = 100_000) -> int:
        """Rebuild the live states of users who have none (default: everyone in the log, up to
        ``limit``); see :meth:`LiveStates.warm`."""
        return self.states.warm(user_ids, limit)

    def has_live_state(self, user_id: str) -> bool:
        """Whether the user's state is held, so ``recommend`` needs no rebuild and no lock wait."""
        return user_id in self.states

    def state(self, user_id: str) -> UserState:
        """A copy of the user's state; raises NotFoundError for a user with no events."""
        state = self.states.view(user_id)
        if state is None:
            if user_id in self.cleaning.view.users:  # stored events, none learned from: say why
                raise NotFoundError(f"user {user_id!r} is quarantined: none of their events is learned from "
                                    "(GET /admin/quarantine says why)", kind="user", key=user_id)
            raise NotFoundError(f"user {user_id!r} has no events", kind="user", key=user_id)
        return state

    def interests(self, user_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The user's strongest interest tags with their decayed weights, strongest first."""
        k = check_k(k)
        state = self.state(user_id)
        return [(t, round(w, 4)) for t, w in state.top_tags(k, self.settings.tag_half_life)]

    def interest_groups(self, user_id: str, k: int = 3) -> list[tuple[list[str], float]]:
        """The user's several interests (what they did, clustered as it happened), strongest first:
        each as its ``k`` strongest tags and its share of the user's interest now (shares sum to 1)."""
        return self.state(user_id).interest_groups(check_k(k), self.settings.interest_half_life)

    # ------------------------------------------------------------------ training

    def train(self, progress: Progress | None = None) -> TrainReport:
        """Fit every model on the whole event log, tune the scorer, write and swap in a snapshot.

        One training per store at a time, across every process and machine that serves it
        (:func:`liverec.storage.locks.exclusive`): another is a :class:`ConflictError`. Other
        processes are told a snapshot is out (:meth:`sync` adopts it).
        """
        with exclusive(self.store, self.model_dir, "training"):
            report = self.models.train(progress)
        self.peers.caught_up()
        announce = getattr(self.store, "notify", None)
        if announce is not None:
            announce("snapshot")
        return report

    def adopt(self, version: str | None = None) -> ModelSnapshot:
        """Serve a snapshot another process trained into this engine's model directory."""
        snapshot = self.models.adopt(version)
        self.peers.caught_up()
        return snapshot

    # ------------------------------------------------------------------ reading

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        filters: Filters | Mapping[str, Any] | None = None,
        diversity: float | None = None,
        now: float | None = None,
        scorer: Scorer | Mapping[str, Any] | None = None,
        exposure: float | None = None,
    ) -> list[Recommendation]:
        """The ``k`` best items for the user now, each with the reasons that put it there.

        A user with no events gets what is popular now. A list the scored candidates leave
        short is filled with popular, then new, then any available items that pass ``filters``:
        it holds ``k`` items whenever the catalog has ``k`` the filters allow, trained or not.
        ``scorer`` replaces the trained one: a scorer or its configuration (an A/B variant's);
        ``exposure`` the settings' popularity calibration (0 to 1, :mod:`liverec.ranking.exposure`).

        A process of your own that serves requests should run numpy's BLAS on one thread, as
        ``liverec serve`` does (``threadpoolctl.threadpool_limits(1, "blas")``): a multi-threaded
        BLAS team spins on request-sized products and stretches the tail on a busy machine.
        """
        k, diversity, scorer = _request(user_id, k, diversity, scorer)
        strength = None if exposure is None else check_share(exposure, "exposure")
        state = self.states.view(user_id)
        return self.serving.ranker.recommend(state, k, Filters.coerce(filters), diversity, now or time.time(),
                                             scorer, strength)

    def explain(
        self,
        user_id: str,
        item_id: str,
        k: int = 10,
        filters: Filters | Mapping[str, Any] | None = None,
        diversity: float | None = None,
        now: float | None = None,
        scorer: Scorer | Mapping[str, Any] | None = None,
    ) -> Verdict:
        """Whether ``item_id`` is in the user's list of ``k`` now, and why or why not
        (:mod:`liverec.ranking.verdict`); the arguments are :meth:`recommend`'s."""
        k, diversity, scorer = _request(user_id, k, diversity, scorer)
        if item_id not in self.items:
            raise NotFoundError(f"item {item_id!r} is not in the catalog", kind="item", key=item_id)
        return verdict(self.serving.ranker, self.states.view(user_id), item_id, k, Filters.coerce(filters),
                       diversity, now or time.time(), scorer)

    def similar_items(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Items like ``item_id``: its text neighbours, fused with what people viewed alongside it."""
        k = check_k(k)
        snapshot = self.serving.snapshot
        return similar_items(self.items, snapshot.models if snapshot is not None else {}, item_id, k,
                             self.settings.similar_min_similarity)

    def search(self, query: str, k: int = 10, user_id: str | None = None) -> list[Recommendation]:
        """Semantic, cross-lingual search over item texts.

        With a ``user_id`` the query is also recorded as that user's ``search`` event (it
        moves their interest at once) and results are gently re-ranked toward their interest.
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty text", field="q", value=query)
        k = check_k(k)
        state = None
        if user_id is not None:
            check_id(user_id, "user_id")
            self.ingest_events([Event.create(user_id, EventType.SEARCH, text=query)])
            state = self.states.view(user_id)
        return search(self.items, query, k, state)


def _request(user_id: str, k: int, diversity: float | None, scorer: Scorer | Mapping[str, Any] | None
             ) -> tuple[int, float, Scorer | None]:
    """A recommendation request's arguments, checked: ``k``, ``diversity`` and the scorer built
    from its configuration."""
    check_id(user_id, "user_id")
    return check_k(k), check_diversity(diversity), scorer_from_config(scorer) if isinstance(scorer, Mapping) else scorer

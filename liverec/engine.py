"""The Engine: the one object a program holds.

>>> engine = Engine.open("memory://")                          # doctest: +SKIP
>>> engine.ingest_items([{"item_id": "i1", "title": "Trail running shoes"}])  # doctest: +SKIP
>>> engine.ingest_events([{"user_id": "u1", "type": "view", "item_id": "i1"}])  # doctest: +SKIP
>>> engine.recommend("u1", k=5)                                # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.core.settings import Settings
from liverec.core.types import Event, EventType, Item, Reason, Recommendation
from liverec.models.base import TrainingData
from liverec.models.content import ContentModel
from liverec.ranking.catalog import ItemTable
from liverec.ranking.explain import shorten
from liverec.ranking.filters import Filters
from liverec.ranking.fusion import Recalled
from liverec.ranking.ranker import Ranker
from liverec.ranking.snapshot import ModelSnapshot, current_version, load_snapshot, write_snapshot
from liverec.realtime.state import EventSignal, StateUpdater, UserState, unit
from liverec.realtime.store import MemoryStateStore, StateStore
from liverec.storage import open_store
from liverec.storage.base import Store
from liverec.text import (
    CachedEncoder,
    Language,
    LanguageCentering,
    ReviewPolarity,
    TextKind,
    detect_language,
    extract_keywords,
    get_encoder,
    rating_polarity,
)
from liverec.training import ModelParams, Progress, TrainReport, train

DEFAULT_STORE_URL = "sqlite:///liverec.db"
DEFAULT_DIVERSITY = 0.2
MAX_K = 1000
ITEM_KEYWORDS = 6
CHUNK = 512
QUERY_CACHE = 50_000


@dataclass(frozen=True)
class IngestResult:
    """How many of the given events were new; the rest were retries of stored ones."""

    received: int
    stored: int
    stored_ids: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


@dataclass(frozen=True)
class ForgetResult:
    """What ``forget_user`` erased."""

    user_id: str
    events_removed: int
    state_removed: bool


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.maximum(norms, 1e-12)).astype(np.float32)


class Engine:
    """Ingests items and events, keeps every user's state live, trains, and recommends."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        *,
        state_store: StateStore | None = None,
        params: ModelParams | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.params = params or ModelParams()
        self.states = state_store or MemoryStateStore()
        self.updater = StateUpdater(self.settings)
        self.encoder = CachedEncoder(
            get_encoder(self.settings.encoder, threads=self.settings.encoder_threads), store.vectors
        )
        self.polarity = ReviewPolarity(self.encoder)
        self._owns_model_dir = self.settings.model_dir is None and store.root is None
        self.model_dir = self._model_dir()
        self.items = ItemTable()
        self._query_cache: dict[str, np.ndarray] = {}
        self._write_lock = threading.RLock()  # one writer at a time: ingest, delete, train swaps
        self._state_lock = threading.Lock()  # held per applied event and per state copy (microseconds)
        snapshot = load_snapshot(self.model_dir) if current_version(self.model_dir) else None
        self.centering = snapshot.centering if snapshot is not None else LanguageCentering()
        items = list(self.store.catalog.all())
        self.content = self._content_index(items, self._item_vectors(items))
        self.items.upsert(items, {i.item_id: self._interest_tags(i) for i in items})
        self.ranker = self._make_ranker(snapshot)
        if snapshot is not None:
            self._catch_up_trending(snapshot)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, url: str = DEFAULT_STORE_URL, **settings: Any) -> Engine:
        """Open (or create) the store at ``url`` with ``settings`` (see :class:`Settings`)."""
        return cls(open_store(url), Settings.from_mapping(settings))

    def close(self) -> None:
        self.store.close()
        if self._owns_model_dir:  # a memory:// engine's snapshots live as long as it does
            shutil.rmtree(self.model_dir, ignore_errors=True)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _model_dir(self) -> Path:
        if self.settings.model_dir is not None:
            return Path(self.settings.model_dir)
        if self.store.root is None:  # memory:// — snapshots live as long as the process
            return Path(tempfile.mkdtemp(prefix="liverec-models-"))
        name = self.store.url.rsplit("/", 1)[-1] or "liverec"
        return self.store.root / f"{name}.models"

    def _content_index(self, items: Sequence[Item], vectors: np.ndarray) -> ContentModel:
        """A text index over ``items`` with their (language-centred) ``vectors``."""
        data = TrainingData.from_events([], [i.item_id for i in items], vectors, self.settings.event_weights)
        return ContentModel().fit(data)

    def _catch_up_trending(self, snapshot: ModelSnapshot) -> None:
        """Fold events newer than the snapshot into trending, as the live process had done."""
        trained_until = float(snapshot.manifest.get("trained_until", math.inf))
        chunk: list[Event] = []
        for event in self.store.events.between(math.nextafter(trained_until, math.inf), math.inf):
            chunk.append(event)
            if len(chunk) == CHUNK:
                self._update_trending(chunk)
                chunk = []
        self._update_trending(chunk)

    def _make_ranker(self, snapshot: ModelSnapshot | None) -> Ranker:
        return Ranker(self.items, self.content, snapshot, self._query_vector, self.settings.short_term_half_life)

    @property
    def snapshot(self) -> ModelSnapshot | None:
        return self.ranker.snapshot

    # ------------------------------------------------------------------ items

    def ingest_items(self, items: Iterable[Item | Mapping[str, Any]]) -> int:
        """Validate, enrich (language, keyword tags), encode and store items; live at once.

        All items are validated before any is stored: one bad item stores nothing.
        """
        parsed = [Item.from_dict(i) for i in items]
        ids = [i.item_id for i in parsed]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InvalidInputError(f"item {dup!r} appears twice in one batch", field="item_id", value=dup)
        enriched = [self._enrich(i) for i in parsed]
        # Encode before taking the write lock (it is the slow part, and events must keep flowing);
        # the cached raw vectors make the centring under the lock cheap.
        self._raw_item_vectors(enriched)
        with self._write_lock:
            for start in range(0, len(enriched), CHUNK):
                chunk = enriched[start : start + CHUNK]
                vectors = self._item_vectors(chunk)
                self.store.catalog.upsert(chunk)
                self.content.add_items([i.item_id for i in chunk], vectors)
                self.items.upsert(chunk, {i.item_id: self._interest_tags(i) for i in chunk})
            self.ranker.items_changed()
        return len(enriched)

    def delete_item(self, item_id: str) -> bool:
        with self._write_lock:
            existed = self.store.catalog.delete(item_id)
            self.content.remove_items([item_id])
            self.items.remove(item_id)
            self.ranker.items_changed()
        return existed

    def _enrich(self, item: Item) -> Item:
        """Fill in the language and add extracted keywords to the item's tags."""
        language = _language(item)
        keywords = _interest_keywords(extract_keywords(item.text, language, k=2 * ITEM_KEYWORDS))
        return dataclasses.replace(item, language=language, tags=tuple(dict.fromkeys([*item.tags, *keywords])))

    @staticmethod
    def _interest_tags(item: Item) -> tuple[str, ...]:
        """Categories and tags that read as interests; specs ("24mp sensor") stay item facts."""
        return tuple(dict.fromkeys([*item.categories, *(t for t in item.tags if not _is_spec(t))]))

    def _raw_item_vectors(self, items: Sequence[Item]) -> np.ndarray:
        return self.encoder.encode([i.text for i in items], kind="passage")

    def _item_vectors(self, items: Sequence[Item]) -> np.ndarray:
        return self.centering.apply(self._raw_item_vectors(items), [_language(i) for i in items])

    def _text_vectors(self, texts: Sequence[str], kind: TextKind) -> np.ndarray:
        raw = self.encoder.encode(texts, kind=kind)
        return self.centering.apply(raw, [detect_language(t) for t in texts])

    def _query_vector(self, text: str) -> np.ndarray:
        """A query's centred vector; cached, as explanations and session vectors ask on every request."""
        vec = self._query_cache.get(text)
        if vec is None:
            vec = self._text_vectors([text], "query")[0]
            if len(self._query_cache) >= QUERY_CACHE:
                self._query_cache.clear()  # crude but O(1); hot queries come straight back
            self._query_cache[text] = vec
        return vec

    # ------------------------------------------------------------------ events

    def ingest_events(self, events: Iterable[Event | Mapping[str, Any]]) -> IngestResult:
        """Validate, durably store and apply events to their users' states, in that order.

        Every event is validated (type, fields, known item) before any is stored. Events
        whose ``event_id`` is already stored are skipped, so a retried batch changes nothing.
        When this returns, the next ``recommend`` for each user reflects the events.
        """
        parsed = self.validate_events(events)
        if not parsed:
            return IngestResult(0, 0)
        with self._write_lock:
            known = self.store.events.existing([e.event_id for e in parsed])
            fresh_ids: set[str] = set()
            new: list[Event] = []
            for e in parsed:
                if e.event_id not in known and e.event_id not in fresh_ids:
                    fresh_ids.add(e.event_id)
                    new.append(e)
            if not new:
                return IngestResult(len(parsed), 0)
            signals = self._signals(new)
            stored = self.store.events.append(new)
            new.sort(key=lambda e: e.timestamp)
            self._update_trending(new)
            by_user: dict[str, list[Event]] = {}
            for e in new:
                by_user.setdefault(e.user_id, []).append(e)
            cold: list[str] = []
            for user_id, user_events in by_user.items():
                state = self.states.get(user_id)
                if state is None:
                    cold.append(user_id)
                    continue
                user_signals = [signals[e.event_id] for e in user_events]
                with self._state_lock:
                    self.updater.apply_many(state, user_events, user_signals)
            # Users without a live state are rebuilt from the log, which already holds this batch.
            for start in range(0, len(cold), CHUNK):
                self._rebuild(cold[start : start + CHUNK])
        return IngestResult(len(parsed), stored, frozenset(fresh_ids))

    def _rebuild(self, user_ids: Sequence[str]) -> int:
        """Rebuild these users' states from the log; one _signals call (one text encode, one vector
        lookup) serves them all. Call with the write lock held."""
        histories = {user_id: self.store.events.by_user(user_id) for user_id in user_ids}
        history_signals = self._signals([e for history in histories.values() for e in history])
        built = 0
        for user_id, history in histories.items():
            if history:  # empty only if another process erased the user meanwhile
                self.states.put(self._build_state(user_id, history, history_signals))
                built += 1
        return built

    def warm_states(self, user_ids: Sequence[str] | None = None, limit: int = 100_000) -> int:
        """Rebuild the live states of users who have none (default: every user in the log, up to
        ``limit``), a chunk at a time, and return how many were built.

        States are otherwise rebuilt on a user's first request, inside it (measured on the demo
        world: ~7 ms per user, on top of a ~4.5 ms recommendation). A service warms them in the
        background after a start and at the start of training, so requests do not pay for
        rebuilds; the write lock is taken per chunk, so ingest keeps flowing meanwhile.
        """
        users = list(user_ids) if user_ids is not None else self.store.events.users()
        built = 0
        for start in range(0, min(len(users), limit), CHUNK):
            with self._write_lock:
                cold = [u for u in users[start : min(start + CHUNK, limit)] if self.states.get(u) is None]
                built += self._rebuild(cold) if cold else 0
        return built

    def validate_events(self, events: Iterable[Event | Mapping[str, Any]]) -> list[Event]:
        """Parse and check events (type, fields, known item) without storing anything."""
        parsed = [Event.from_dict(e) for e in events]
        known: set[str | None] = {None}  # items already found in this batch (most events repeat one)
        for e in parsed:
            if e.item_id not in known:
                if e.item_id not in self.items:
                    raise InvalidInputError(
                        f"event {e.event_id!r} refers to unknown item {e.item_id!r}", field="item_id", value=e.item_id
                    )
                known.add(e.item_id)
        return parsed

    def _update_trending(self, events: Iterable[Event]) -> None:
        """Fold the positive item events (in time order) into trending, in one batched update."""
        snapshot = self.ranker.snapshot
        if snapshot is None:
            return
        weights = self.settings.event_weights
        item_ids: list[str] = []
        item_weights: list[float] = []
        timestamps: list[float] = []
        for e in events:
            w = weights[e.type]
            if e.item_id is not None and w > 0:
                item_ids.append(e.item_id)
                item_weights.append(w)
                timestamps.append(e.timestamp)
        if item_ids:
            snapshot.trending.update_many(item_ids, item_weights, timestamps)

    def _signals(self, events: Sequence[Event]) -> dict[str, EventSignal]:
        """Per event id, the vector, polarity and tags that ``apply`` folds in (texts encoded in one batch)."""
        # Members in locals: reading EventType.SEARCH is a descriptor call on every access.
        search, review, rate = EventType.SEARCH, EventType.REVIEW, EventType.RATE
        queries = list(dict.fromkeys(e.text or "" for e in events if e.type is search))
        reviews = [e for e in events if e.type is review]
        qvecs = dict(zip(queries, self._text_vectors(queries, "query"), strict=True)) if queries else {}
        rtexts = [e.text or "" for e in reviews]
        rvecs = self._text_vectors(rtexts, "passage") if reviews else np.zeros((0, 1), np.float32)
        polarities = self.polarity.polarities(rtexts, [e.value for e in reviews]) if reviews else np.zeros(0)
        review_info = {e.event_id: (rvecs[n], float(polarities[n])) for n, e in enumerate(reviews)}
        # One batched lookup per distinct item; an unknown (since deleted) item comes back as zeros.
        distinct = list(dict.fromkeys(e.item_id for e in events if e.item_id is not None))
        item_vecs = self.content.vectors_of(distinct)
        known = np.linalg.norm(item_vecs, axis=1) > 0
        vector_of = {item_id: item_vecs[n] for n, item_id in enumerate(distinct) if known[n]}
        # Signals are immutable: every plain event on one item (every search of one text) shares one.
        of_item: dict[str, EventSignal] = {}
        of_query: dict[str, EventSignal] = {}
        out: dict[str, EventSignal] = {}
        for e in events:
            type_ = e.type
            if type_ is search:
                text = e.text or ""
                signal = of_query.get(text)
                if signal is None:
                    signal = of_query[text] = EventSignal(qvecs[text], 1.0, _query_tags(text))
            elif type_ is review:
                item_vec = vector_of.get(e.item_id or "")
                text_vec, pol = review_info[e.event_id]
                # A review speaks about the item and, in its own words, about what mattered.
                blend = text_vec if item_vec is None else _unit_rows((item_vec + text_vec)[None, :])[0]
                signal = EventSignal(blend, pol, self.items.tags(e.item_id or ""))
            elif type_ is rate:
                item_id = e.item_id or ""
                signal = EventSignal(vector_of.get(item_id), rating_polarity(e.value or 3.0), self.items.tags(item_id))
            else:
                item_id = e.item_id or ""
                signal = of_item.get(item_id)
                if signal is None:
                    signal = of_item[item_id] = EventSignal(vector_of.get(item_id), 1.0, self.items.tags(item_id))
            out[e.event_id] = signal
        return out

    def _build_state(
        self, user_id: str, events: Sequence[Event], signals: Mapping[str, EventSignal] | None = None
    ) -> UserState:
        """The user's state from their ``events``; ``signals`` (by event id) when already computed."""
        state = UserState.empty(user_id, self.settings.recent_length)
        if signals is None:
            signals = self._signals(events)
        return self.updater.apply_many(state, events, [signals[e.event_id] for e in events])

    def _state(self, user_id: str) -> UserState | None:
        """The user's live state, rebuilt from the event log when this process has none."""
        state = self.states.get(user_id)
        if state is not None:
            return state
        with self._write_lock:
            state = self.states.get(user_id)
            if state is None:
                events = self.store.events.by_user(user_id)
                if not events:
                    return None
                state = self._build_state(user_id, events)
                self.states.put(state)
        return state

    def has_live_state(self, user_id: str) -> bool:
        """Whether the user's state is in memory, so ``recommend`` needs no rebuild and no lock wait."""
        return self.states.get(user_id) is not None

    def _view(self, user_id: str) -> UserState | None:
        """A private copy of the user's state for one request, so concurrent events cannot
        change it mid-ranking (deques and dicts must not change while being iterated)."""
        state = self._state(user_id)
        if state is None:
            return None
        with self._state_lock:
            return state.copy()

    def state(self, user_id: str) -> UserState:
        """A copy of the user's state; raises NotFoundError for a user with no events."""
        state = self._view(user_id)
        if state is None:
            raise NotFoundError(f"user {user_id!r} has no events", kind="user", key=user_id)
        return state

    # ------------------------------------------------------------------ training

    def train(self, progress: Progress | None = None) -> TrainReport:
        """Fit every model on the whole event log, tune fusion, write and swap in a snapshot.

        The language centring is refitted on the current catalog first and the text index
        rebuilt in that space; user states are then rebuilt lazily in the same space.
        """
        t0 = time.perf_counter()
        events = list(self.store.events.all())
        if not events:
            raise InvalidInputError("there are no events to train on; ingest events first", field="events")
        with self._write_lock:
            catalog = [self.items.get(i) for i in self.items.ids()]
            languages = [_language(i) for i in catalog]
            raw = self._raw_item_vectors(catalog)
            vectors = self._recentre(LanguageCentering().fit(raw, languages), catalog, raw, languages)
            self.ranker = self._make_ranker(self.ranker.snapshot)
        self.warm_states()  # in the new space, before training's own work, so requests meet warm states
        item_ids = [i.item_id for i in catalog]
        reviews = [e for e in events if e.type is EventType.REVIEW]
        polarity: dict[str, float] = {}
        if reviews:
            pols = self.polarity.polarities([e.text or "" for e in reviews], [e.value for e in reviews])
            polarity = {e.event_id: float(p) for e, p in zip(reviews, pols, strict=True)}
        polarity.update({e.event_id: rating_polarity(e.value or 3.0) for e in events if e.type is EventType.RATE})

        def scorer(snapshot: ModelSnapshot) -> Callable[[UserState], Mapping[str, Recalled]]:
            ranker = self._make_ranker(snapshot)
            return lambda state: ranker.candidates(state, Filters())

        snapshot, report = train(
            events, item_ids, vectors, self.settings.event_weights, polarity, self.params,
            self._build_state, scorer, progress,
        )
        snapshot.centering = self.centering
        report.seconds["total"] = time.perf_counter() - t0
        manifest = {
            "report": report.to_dict(),
            "encoder": self.encoder.name,
            "params": vars(self.params),
            "trained_until": max(e.timestamp for e in events),
        }
        snapshot = write_snapshot(self.model_dir, snapshot, manifest)
        report.version = snapshot.version
        with self._write_lock:
            # Events ingested while training ran went into the old trending; fold them into the new.
            self.ranker = self._make_ranker(snapshot)  # atomic swap: one reference assignment
            self._catch_up_trending(snapshot)
        return report

    def _recentre(
        self, centering: LanguageCentering, catalog: Sequence[Item], raw: np.ndarray, languages: Sequence[Language]
    ) -> np.ndarray:
        """Serve the text space of ``centering``: rebuild the text index in it and drop the user states
        and query vectors of the old space; returns the catalog's vectors. Call with the write lock held."""
        vectors = centering.apply(raw, languages)
        self.centering = centering
        self._query_cache.clear()
        self.content = self._content_index(catalog, vectors)
        self.states.clear()
        return vectors

    def adopt(self, version: str | None = None) -> ModelSnapshot:
        """Serve a snapshot another process trained into this engine's model directory (default:
        the current one), as :meth:`train`'s own swap does, and return it.

        When its language centring differs from the one served, the text index is rebuilt in the
        new space and user states are dropped (then rebuilt, like after :meth:`train`'s start).
        """
        snapshot = load_snapshot(self.model_dir, version)
        with self._write_lock:
            if snapshot.centering != self.centering:
                catalog = [self.items.get(i) for i in self.items.ids()]
                self._recentre(snapshot.centering, catalog, self._raw_item_vectors(catalog),
                               [_language(i) for i in catalog])
            self.ranker = self._make_ranker(snapshot)  # atomic swap: one reference assignment
            self._catch_up_trending(snapshot)
        self.warm_states()
        return snapshot

    # ------------------------------------------------------------------ serving

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        filters: Filters | Mapping[str, Any] | None = None,
        diversity: float | None = None,
        now: float | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> list[Recommendation]:
        """The ``k`` best items for the user now, each with the reasons that put it there.

        A user with no events gets what is popular now (and, before any training, nothing
        but fresh items is known, so the list may be empty).
        """
        _check_id(user_id, "user_id")
        k = _check_k(k)
        diversity = DEFAULT_DIVERSITY if diversity is None else diversity
        if isinstance(diversity, bool) or not isinstance(diversity, int | float) or not 0.0 <= diversity <= 1.0:
            raise InvalidInputError(f"diversity {diversity!r} must be between 0 and 1", field="diversity",
                                    value=diversity)
        state = self._view(user_id)
        return self.ranker.recommend(state, k, Filters.coerce(filters), float(diversity), now or time.time(), weights)

    def similar_items(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Items like ``item_id``: its text neighbours, fused with what people viewed alongside it."""
        k = _check_k(k)
        item = self.items.get(item_id)
        pool = 3 * k + 10
        scores: dict[str, dict[str, float]] = {}
        for other, s in self.content.similar_items(item_id, pool):
            scores.setdefault(other, {})["content"] = s
        snapshot = self.ranker.snapshot
        if snapshot is not None:
            for other, s in snapshot.covisit.similar_items(item_id, pool):
                scores.setdefault(other, {})["covisit"] = s
        ranked = sorted(scores, key=lambda i: -sum(scores[i].values()))
        title = shorten(item.title)
        out = []
        for other in ranked:
            found = self.items.find(other)
            if found is None or not found.available:
                continue
            reasons = []
            if "content" in scores[other]:
                reasons.append(Reason("content", f"described like '{title}'", item_id))
            if "covisit" in scores[other]:
                reasons.append(Reason("covisit", f"people who viewed '{title}' also viewed this", item_id))
            out.append(Recommendation(other, round(sum(scores[other].values()), 6), tuple(reasons)))
            if len(out) == k:
                break
        return out

    def search(self, query: str, k: int = 10, user_id: str | None = None) -> list[Recommendation]:
        """Semantic, cross-lingual search over item texts.

        With a ``user_id`` the query is also recorded as that user's ``search`` event (it
        moves their interest at once) and results are gently re-ranked toward their interest.
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty text", field="q", value=query)
        k = _check_k(k)
        state = None
        if user_id is not None:
            _check_id(user_id, "user_id")
            self.ingest_events([Event.create(user_id, EventType.SEARCH, text=query)])
            state = self._view(user_id)
        qvec = self._query_vector(query)
        hits = self.content.search(qvec, 3 * k + 10)
        ranked = [(i, s) for i, s in hits if (it := self.items.find(i)) is not None and it.available]
        interest = unit(state.short_vec) if state is not None else None
        if interest is not None:
            vecs = self.content.vectors_of([i for i, _ in ranked])
            # The query decides; the interest only breaks near-ties (a 10% nudge at most).
            ranked = [(i, s + 0.1 * float(v @ interest)) for (i, s), v in zip(ranked, vecs, strict=True)]
            ranked.sort(key=lambda x: -x[1])
        reason = Reason("search", f"matches '{shorten(query)}'", query)
        return [Recommendation(i, round(s, 6), (reason,)) for i, s in ranked[:k]]

    def interests(self, user_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The user's strongest interest tags with their decayed weights, strongest first."""
        k = _check_k(k)
        state = self.state(user_id)
        return [(t, round(w, 4)) for t, w in state.top_tags(k, self.settings.tag_half_life)]

    def forget_user(self, user_id: str) -> ForgetResult:
        """Erase the user's events and state (future training never sees them again)."""
        _check_id(user_id, "user_id")
        with self._write_lock:
            removed = self.store.events.delete_user(user_id)
            had_state = self.states.delete(user_id)
            self.ranker.forget(user_id)
        return ForgetResult(user_id, removed, had_state)


def _interest_keywords(keywords: Sequence[str], limit: int = ITEM_KEYWORDS) -> list[str]:
    """Keywords that read well as interest tags: no model numbers or specs ("10kg load capacity"),
    and no phrase that only repeats a word already kept ("load" then "load capacity")."""
    kept: list[str] = []
    words: set[str] = set()
    for kw in keywords:
        parts = set(kw.split())
        if _is_spec(kw) or (kw.isascii() and len(kw) < 3) or parts & words:
            continue
        kept.append(kw)
        words |= parts
        if len(kept) == limit:
            break
    return kept


def _is_spec(tag: str) -> bool:
    """A model number or specification ("24mp sensor", "10kg"): an item fact, not an interest."""
    return any(ch.isdigit() for ch in tag)


def _language(item: Item) -> Language:
    """The item's language as given, else detected from its text."""
    return "zh" if (item.language or detect_language(item.text)) == "zh" else "en"


@functools.lru_cache(maxsize=65_536)
def _query_tags(text: str) -> tuple[str, ...]:
    # Queries repeat a lot (and every state rebuild replays them): extract once per text.
    return tuple(extract_keywords(text, k=3))


def _check_id(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} is missing", field=name, value=value)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k {k!r} must be an integer from 1 to {MAX_K}", field="k", value=k)
    return k


"""The live states of all users: applied per event, rebuilt from the event log, written back to a store.

A user's state is a pure function of the served snapshot's text space and that user's events,
so a state missing from the :class:`~liverec.realtime.store.StateStore` (never built here, evicted,
dropped after the text space changed) is rebuilt from the log. Every change goes through the
store's atomic ``update``, so a shared store (Redis) never loses an event applied elsewhere.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Mapping, Sequence

from liverec.core.settings import Settings
from liverec.core.types import Event
from liverec.realtime.signals import EventSignals
from liverec.realtime.state import EventSignal, StateUpdater, UserState
from liverec.realtime.store import StateStore
from liverec.storage.base import EventLog

__all__ = ["CHUNK", "LiveStates"]

CHUNK = 512  # users rebuilt per step under the write lock, so ingest keeps flowing during a warm-up


class LiveStates:
    """Applies events to users' states and rebuilds missing ones from the log.

    ``lock`` is the engine's write lock: held while events are stored and applied and while a
    missing state is rebuilt, so a rebuild never misses an event stored meanwhile.
    """

    def __init__(
        self, events: EventLog, store: StateStore, signals: EventSignals, settings: Settings, lock: threading.RLock
    ) -> None:
        self.events = events
        self.store = store
        self.signals = signals
        self.settings = settings
        self.updater = StateUpdater(settings)
        self._updaters: dict[float, StateUpdater] = {}  # by interest threshold, other than the served one
        self.recent_length = settings.recent_length
        self.lock = lock
        self.erasures = 0  # grows with every forget and clear, so a warm-up never puts back what they dropped

    def apply(self, events: Sequence[Event], signals: Mapping[str, EventSignal]) -> None:
        """Fold newly stored events (in time order) into their users' states. Call with the lock held.

        Users without a state are rebuilt from the log instead, which already holds these events,
        while the store has room; a full store (one with a ``capacity`` it has reached) leaves them
        to be rebuilt on their next read, so a bulk load of many users neither replays the log
        again and again nor evicts the states of the users being served.
        """
        by_user: dict[str, list[Event]] = {}
        for e in events:
            by_user.setdefault(e.user_id, []).append(e)
        cold: list[str] = []
        for user_id, user_events in by_user.items():
            apply = functools.partial(self.updater.apply_many, events=user_events,
                                      signals=[signals[e.event_id] for e in user_events])
            if not self.store.update(user_id, apply):
                cold.append(user_id)
        room = self._room()
        if room is not None:
            del cold[room:]
        for start in range(0, len(cold), CHUNK):
            chunk = cold[start : start + CHUNK]
            self.rebuild(chunk, {u: by_user[u] for u in chunk})

    def _room(self) -> int | None:
        """How many more states the store holds before it evicts; None for a store without a bound."""
        capacity = getattr(self.store, "capacity", None)
        return None if capacity is None else max(0, capacity - len(self.store))

    @property
    def interest_similarity(self) -> float:
        """The interest threshold states are built with (see :meth:`use_interest_similarity`)."""
        return self.updater.settings.interest_similarity

    def use_interest_similarity(self, threshold: float | None) -> bool:
        """Build states with ``threshold`` from now on (the one the served snapshot's training chose;
        None: the settings'); whether it changed, when the states held must be dropped and rebuilt."""
        threshold = self.settings.interest_similarity if threshold is None else float(threshold)
        if threshold == self.interest_similarity:
            return False
        self.updater = self._updater(threshold)
        return True

    def _updater(self, threshold: float) -> StateUpdater:
        """The updater that builds states with ``threshold`` (one per threshold: training asks for
        each of its candidates once per validation user)."""
        if threshold == self.interest_similarity:
            return self.updater
        made = self._updaters.get(threshold)
        if made is None:
            made = self._updaters[threshold] = StateUpdater(
                dataclasses.replace(self.settings, interest_similarity=threshold))
        return made

    def build(
        self, user_id: str, events: Sequence[Event], signals: Mapping[str, EventSignal] | None = None,
        interest_similarity: float | None = None,
    ) -> UserState:
        """The user's state from their ``events``; ``signals`` (by event id) when already computed;
        with ``interest_similarity``, as that threshold would build it (training's hold-out tries each)."""
        state = UserState.empty(user_id, self.recent_length)
        if signals is None:
            signals = self.signals(events)
        updater = self.updater if interest_similarity is None else self._updater(interest_similarity)
        return updater.apply_many(state, events, [signals[e.event_id] for e in events])

    def rebuild(self, user_ids: Sequence[str], applying: Mapping[str, Sequence[Event]] | None = None) -> int:
        """Rebuild these users' states from the log; one signals call (one text encode, one vector
        lookup) serves them all. Call with the lock held.

        ``applying`` holds, by user, the events (already stored, so in the log read here) this
        call was folding in when it found no state: when another process put the user's state
        first (a shared store), those are folded into that state instead, unless it holds them.
        """
        histories = {user_id: self.events.by_user(user_id) for user_id in user_ids}
        signals = self.signals([e for history in histories.values() for e in history])
        built = 0
        for user_id, history in histories.items():
            if not history:  # empty only if another process erased the user meanwhile
                continue
            if self.put_new(self.build(user_id, history, signals)):
                built += 1
            elif applying and applying.get(user_id):
                self._fold_missing(user_id, applying[user_id], signals)
        return built

    def put_new(self, state: UserState) -> bool:
        """Store a rebuilt state unless the user has one already; whether it was stored.

        Two processes sharing the store may rebuild one user at once: the first state stored
        wins, so neither overwrites events the other has folded in since.
        """
        return self.store.put_if_absent(state)

    def _fold_missing(self, user_id: str, events: Sequence[Event], signals: Mapping[str, EventSignal]) -> None:
        """Fold into the user's stored state those of ``events`` it does not hold yet (a state
        another process rebuilt from a log that may already have held them: its recent actions say)."""

        def fold(state: UserState) -> UserState:
            held = {action.event_id for action in state.recent}
            missing = [e for e in events if e.event_id not in held]
            return self.updater.apply_many(state, missing, [signals[e.event_id] for e in missing])

        self.store.update(user_id, fold)

    def warm(self, user_ids: Sequence[str] | None = None, limit: int = 100_000) -> int:
        """Rebuild the states of users who have none (default: every user in the log, up to
        ``limit``), a chunk at a time, and return how many were built.

        States are otherwise rebuilt on a user's first request, inside it (measured on the demo
        world: ~7 ms per user, on top of a ~4.5 ms recommendation). A service warms them in the
        background after a start and at the start of training, so requests do not pay for
        rebuilds. The states are built outside the write lock, which is taken only to put them:
        a request or an ingest never waits behind a chunk of rebuilds. That is safe because a
        state is put only if the user still has none (an ingest for a user without a state
        rebuilds it from the log itself, so an event stored meanwhile is never missed) and no
        erasure happened meanwhile (else the chunk is left to on-demand rebuilds).
        """
        users = list(user_ids) if user_ids is not None else self.events.users()
        room = self._room()
        if room is not None:  # warming past the store's bound would only evict what it just built
            limit = min(limit, room)
        built = 0
        for start in range(0, min(len(users), limit), CHUNK):
            erasures = self.erasures
            cold = [u for u in users[start : min(start + CHUNK, limit)] if u not in self.store]
            histories = {u: history for u in cold if (history := self.events.by_user(u))}
            signals = self.signals([e for history in histories.values() for e in history])
            states = [self.build(u, history, signals) for u, history in histories.items()]
            with self.lock:
                if self.erasures != erasures:
                    continue
                built += sum(self.put_new(state) for state in states)
        return built

    def get(self, user_id: str) -> UserState | None:
        """A copy of the user's state if one is held (no rebuild)."""
        return self.store.get(user_id)

    def view(self, user_id: str) -> UserState | None:
        """A private copy of the user's state for one request (events arriving meanwhile cannot
        change it mid-ranking), rebuilt from the log when missing; None for a user with no events."""
        state = self.store.get(user_id)
        if state is not None:
            return state
        with self.lock:
            state = self.store.get(user_id)
            if state is None:
                events = self.events.by_user(user_id)
                if not events:
                    return None
                state = self.build(user_id, events)
                if not self.put_new(state.copy()):  # the store owns what it is given
                    return self.store.get(user_id) or state  # another process's, built meanwhile
        return state

    def forget(self, user_id: str) -> bool:
        """Drop the user's state; whether one was held. Call with the lock held."""
        self.erasures += 1
        return self.store.delete(user_id)

    def clear(self) -> None:
        """Drop every state (after the text space changed, they are rebuilt in the new one)."""
        self.erasures += 1
        self.store.clear()

    def user_ids(self) -> list[str]:
        """The users whose state is held."""
        return self.store.user_ids()

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.store

    def __len__(self) -> int:
        return len(self.store)

"""Per-user real-time state and the O(d + L) update that keeps it current.

A user's state is a pure function of the model snapshot and that user's events, so it can
always be rebuilt from the event log (after a restart, on another worker). It holds:

* ``recent`` — the last L actions (item or query, type, time, signed weight);
* ``short_vec`` — an exponentially time-decayed, type-weighted sum of the text vectors of
  the items and queries the user acted on; dismissals and negative reviews subtract;
* ``neg_vec`` — the same sum over negative actions only, so ranking can push items like a
  dismissed one down whichever recall proposed them;
* ``interactions`` — summed positive weight per item, the input of the ALS fold-in
  (computed at request time, cached by ``version``);
* ``tags`` — decayed interest-tag weights (what explanations and the UI show);
* ``seen`` / ``dismissed`` — item sets for filtering.

Decay uses a per-vector reference time: a vector stored at time ``t0`` stands for
``v · 2^{-(t - t0)/h}`` at time ``t``, so one update rescales once and adds once (O(d)).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from liverec.core.settings import Settings
from liverec.core.types import Event, EventType


@dataclass(frozen=True, slots=True)
class RecentAction:
    """One entry of a user's recent sequence."""

    event_id: str
    type: EventType
    item_id: str | None
    text: str | None  # the query of a search, the text of a review
    timestamp: float
    weight: float  # signed: negative for dismissals and negative reviews


@dataclass(frozen=True, slots=True)
class EventSignal:
    """What ``apply`` needs to know about an event beyond the event itself.

    Computed outside the O(d + L) update — the engine encodes texts in batches and looks up
    item vectors and tags — so ``apply`` itself does no model inference.
    """

    vector: np.ndarray | None  # unit text vector the event moves the interest by (item, query or blend)
    polarity: float = 1.0  # sign and scale of a review or rating, in [-1, 1]
    tags: tuple[str, ...] = ()  # interest tags of the item or query


@dataclass(slots=True)
class UserState:
    """The live interest profile of one user (see the module docstring)."""

    user_id: str
    recent: deque[RecentAction]
    short_vec: np.ndarray | None = None
    short_ts: float = 0.0
    neg_vec: np.ndarray | None = None
    neg_ts: float = 0.0
    tags: dict[str, float] = field(default_factory=dict)
    tags_ts: float = 0.0
    interactions: dict[str, float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    dismissed: set[str] = field(default_factory=set)
    last_ts: float = 0.0
    n_events: int = 0
    version: int = 0

    @classmethod
    def empty(cls, user_id: str, recent_length: int = 50) -> UserState:
        return cls(user_id=user_id, recent=deque(maxlen=recent_length))

    def copy(self) -> UserState:
        """An independent copy (O(d + L + tags + seen)): what a request reads while events keep arriving."""
        return UserState(
            user_id=self.user_id,
            recent=deque(self.recent, maxlen=self.recent.maxlen),
            short_vec=None if self.short_vec is None else self.short_vec.copy(),
            short_ts=self.short_ts,
            neg_vec=None if self.neg_vec is None else self.neg_vec.copy(),
            neg_ts=self.neg_ts,
            tags=dict(self.tags),
            tags_ts=self.tags_ts,
            interactions=dict(self.interactions),
            seen=set(self.seen),
            dismissed=set(self.dismissed),
            last_ts=self.last_ts,
            n_events=self.n_events,
            version=self.version,
        )

    def top_tags(self, k: int = 10, half_life: float | None = None) -> list[tuple[str, float]]:
        """The ``k`` strongest interest tags, weights decayed to the user's last action.

        Without a half-life the weights stay in the state's internal units (same order).
        """
        scale = 1.0
        if half_life is not None:
            scale = 2.0 ** (-(self.last_ts - self.tags_ts) / half_life)
        ranked = sorted(((t, w * scale) for t, w in self.tags.items() if w > 0), key=lambda tw: (-tw[1], tw[0]))
        return ranked[:k]

    def recent_items(self, positive_only: bool = True) -> list[str]:
        """Item ids of recent actions, oldest first (positive actions only by default)."""
        return [a.item_id for a in self.recent if a.item_id is not None and (a.weight > 0 or not positive_only)]

    def positive_item_actions(self, n: int) -> list[RecentAction]:
        """The last ``n`` positive actions on an item, oldest first (the seeds of "viewed together")."""
        return [a for a in self.recent if a.item_id is not None and a.weight > 0][-n:]


def _decayed_add(
    vec: np.ndarray | None, ref_ts: float, x: np.ndarray, weight: float, ts: float, half_life: float
) -> tuple[np.ndarray, float]:
    """Add ``weight · x`` at time ``ts`` to a vector kept at reference time ``ref_ts``."""
    if vec is None:
        return (weight * x).astype(np.float32), ts
    if ts >= ref_ts:
        decay = 2.0 ** (-(ts - ref_ts) / half_life)
        vec *= np.float32(decay)
        vec += np.float32(weight) * x
        return vec, ts
    # An event older than the state's clock: fold it in at its own, already decayed, strength.
    vec += np.float32(weight * 2.0 ** (-(ref_ts - ts) / half_life)) * x
    return vec, ref_ts


class StateUpdater:
    """Applies events to :class:`UserState` in O(d + L); holds the settings it needs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.weights = settings.event_weights

    def weight(self, event: Event, polarity: float = 1.0) -> float:
        """The signed strength of an event: its type's weight, scaled by a review or rating polarity."""
        w = self.weights[event.type]
        if event.type in (EventType.RATE, EventType.REVIEW):
            w *= polarity
        return w

    def apply(self, state: UserState, event: Event, signal: EventSignal) -> UserState:
        """Fold one event into ``state`` (in place) and return it.

        Cost: O(d) for the vectors, O(tags of the event) for the tags, O(1) amortised for the
        recent sequence — independent of how long the user's history is.
        """
        s = self.settings
        w = self.weight(event, signal.polarity)
        ts = event.timestamp
        action = RecentAction(event.event_id, event.type, event.item_id, event.text, ts, w)
        if state.recent and ts < state.recent[-1].timestamp:
            # A late, older event goes to its place in time (O(L)), so the sequence equals a rebuild's.
            ordered = sorted([*state.recent, action], key=lambda a: a.timestamp)
            state.recent = deque(ordered[-state.recent.maxlen :] if state.recent.maxlen else ordered,
                                 maxlen=state.recent.maxlen)
        else:
            state.recent.append(action)
        if signal.vector is not None and w != 0.0:
            state.short_vec, state.short_ts = _decayed_add(
                state.short_vec, state.short_ts, signal.vector, w, ts, s.short_term_half_life
            )
            if w < 0:
                state.neg_vec, state.neg_ts = _decayed_add(
                    state.neg_vec, state.neg_ts, signal.vector, -w, ts, s.short_term_half_life
                )
        if signal.tags and w != 0.0:
            self._update_tags(state, signal.tags, w, ts)
        if event.item_id is not None:
            if w > 0:
                state.interactions[event.item_id] = state.interactions.get(event.item_id, 0.0) + w
                state.seen.add(event.item_id)
                state.dismissed.discard(event.item_id)
            else:
                state.dismissed.add(event.item_id)
                state.seen.add(event.item_id)
        state.last_ts = max(state.last_ts, ts)
        state.n_events += 1
        state.version += 1
        return state

    def _update_tags(self, state: UserState, tags: Iterable[str], weight: float, ts: float) -> None:
        """Add ``weight`` to each tag, in units of the state's tag reference time (O(tags)).

        Tag weights are stored as w · 2^{(t − tags_ts)/h}; reading them decays all at once
        (``top_tags``). The reference moves forward only when exponents grow large, so a
        rescale of every tag happens rarely (amortised O(1) per event).
        """
        h = self.settings.tag_half_life
        if not state.tags:
            state.tags_ts = ts
        exponent = (ts - state.tags_ts) / h
        if exponent > 30.0:  # 2^30: rebase before float precision suffers
            scale = 2.0 ** (-exponent)
            state.tags = {t: w * scale for t, w in state.tags.items() if w * scale > 1e-9}
            state.tags_ts, exponent = ts, 0.0
        add = weight * 2.0**exponent
        # No clamping at zero: a sum is independent of the order events arrive in, so the
        # tags equal a rebuild's; top_tags shows only the positive ones.
        for tag in tags:
            state.tags[tag] = state.tags.get(tag, 0.0) + add
        # Prune amortised: only when the dict has doubled past its cap, so apply stays O(tags).
        if len(state.tags) > 2 * self.settings.max_tags:
            keep = sorted(state.tags.items(), key=lambda kv: -kv[1])[: self.settings.max_tags]
            state.tags = dict(keep)


def decayed_norm(vec: np.ndarray | None, ref_ts: float, now: float, half_life: float) -> float:
    """The strength of a decayed vector at ``now``."""
    if vec is None:
        return 0.0
    return float(np.linalg.norm(vec)) * (2.0 ** (-max(0.0, now - ref_ts) / half_life))


def unit(vec: np.ndarray | None) -> np.ndarray | None:
    """``vec`` scaled to length 1, or None when it is missing or (numerically) zero."""
    if vec is None:
        return None
    n = float(np.linalg.norm(vec))
    if not math.isfinite(n) or n < 1e-9:
        return None
    return (vec / n).astype(np.float32)

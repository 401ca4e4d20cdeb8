"""Per-user real-time state and the O(d + L) update that keeps it current.

A user's state is a pure function of the model snapshot and that user's events, so it can
always be rebuilt from the event log (after a restart, on another worker); a store outside the
process keeps it as versioned bytes (:mod:`liverec.realtime.codec`), never a pickle. It holds:

* ``recent`` — the last L actions (item or query, type, time, signed weight);
* ``short_vec`` — an exponentially time-decayed, type-weighted sum of the text vectors of
  the items and queries the user acted on; dismissals and negative reviews subtract;
* ``neg_vec`` — the same sum over negative actions only, so ranking can push items like a
  dismissed one down whichever recall proposed them;
* ``interactions`` — summed positive weight per item, the input of the ALS fold-in
  (computed at request time, cached by ``version``; :meth:`UserState.liked` leaves out rejected items);
* ``tags`` — decayed interest-tag weights (what explanations and the UI show);
* ``seen`` / ``dismissed`` — item sets for filtering; an item is dismissed while the user's latest
  non-neutral action on it is negative (a dismissal, a bad review or rating).

Decay uses a per-vector reference time: a vector stored at time ``t0`` stands for
``v · 2^{-(t - t0)/h}`` at time ``t``, so one update rescales once and adds once (O(d)).
A batch of one user's events folds in at once (``apply_many``): one weighted sum per vector,
the same state as one update per event.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from liverec.core.errors import InvalidInputError
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


# The slots' own setters: a frozen dataclass's __init__ goes through object.__setattr__ per
# field, which takes twice as long, and apply_many builds one action per event.
_set_event_id, _set_type, _set_item_id, _set_text, _set_timestamp, _set_weight = (
    RecentAction.__dict__[name].__set__ for name in RecentAction.__dataclass_fields__
)


def _action(
    event_id: str, type_: EventType, item_id: str | None, text: str | None, timestamp: float, weight: float
) -> RecentAction:
    """``RecentAction(event_id, type_, item_id, text, timestamp, weight)``, built in half the time."""
    action = object.__new__(RecentAction)
    _set_event_id(action, event_id)
    _set_type(action, type_)
    _set_item_id(action, item_id)
    _set_text(action, text)
    _set_timestamp(action, timestamp)
    _set_weight(action, weight)
    return action


@dataclass(frozen=True, slots=True)
class EventSignal:
    """What ``apply`` needs to know about an event beyond the event itself.

    Computed outside the O(d + L) update — the engine encodes texts in batches and looks up
    item vectors and tags — so ``apply`` itself does no model inference.
    """

    vector: np.ndarray | None  # unit text vector the event moves the interest by (item, query or blend)
    polarity: float = 1.0  # sign and scale of a review or rating, in [-1, 1]
    tags: tuple[str, ...] = ()  # interest tags of the item or query


@dataclass(slots=True, eq=False)
class Interest:
    """One of a user's interests: a decayed sum of the text vectors of what they did in it (kept
    at reference time ``ts``), and the summed event weight of each tag those actions carried."""

    vector: np.ndarray
    ts: float
    tags: dict[str, float] = field(default_factory=dict)

    def strength(self, at: float, half_life: float) -> float:
        """How much the interest weighs at time ``at`` (its vector's decayed length)."""
        return _norm(self.vector) * 2.0 ** (-max(0.0, at - self.ts) / half_life)

    def top_tags(self, k: int = 3) -> list[str]:
        return [t for _, t in heapq.nsmallest(k, ((-w, t) for t, w in self.tags.items() if w > 0))]

    def copy(self) -> Interest:
        return Interest(self.vector.copy(), self.ts, dict(self.tags))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interest):
            return NotImplemented
        return self.ts == other.ts and self.tags == other.tags and _same_vector(self.vector, other.vector)


@dataclass(slots=True, eq=False)
class UserState:
    """The live interest profile of one user (see the module docstring).

    Two states are equal when every field is: vectors in dtype, shape and values (None differs
    from any array), ``recent`` in its actions and its ``maxlen``, dicts and sets by content.
    Floats compare as ``==`` does. States are mutable, so they are not hashable.
    """

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
    interests: list[Interest] = field(default_factory=list)
    shown: dict[str, int] = field(default_factory=dict)  # impressions of an item since the user last acted on it

    @classmethod
    def empty(cls, user_id: str, recent_length: int = 50) -> UserState:
        return cls(user_id=user_id, recent=deque(maxlen=recent_length))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserState):
            return NotImplemented
        return (
            self.user_id == other.user_id
            and self.version == other.version
            and self.n_events == other.n_events
            and self.last_ts == other.last_ts
            and self.recent.maxlen == other.recent.maxlen
            and self.recent == other.recent
            and self.short_ts == other.short_ts
            and _same_vector(self.short_vec, other.short_vec)
            and self.neg_ts == other.neg_ts
            and _same_vector(self.neg_vec, other.neg_vec)
            and self.tags_ts == other.tags_ts
            and self.tags == other.tags
            and self.interactions == other.interactions
            and self.seen == other.seen
            and self.dismissed == other.dismissed
            and self.interests == other.interests
            and self.shown == other.shown
        )

    def to_bytes(self) -> bytes:
        """This state as versioned bytes (:func:`liverec.realtime.codec.encode_state`)."""
        from liverec.realtime.codec import encode_state  # the codec imports this module

        return encode_state(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> UserState:
        """The state :meth:`to_bytes` wrote (:func:`liverec.realtime.codec.decode_state`)."""
        from liverec.realtime.codec import decode_state

        return decode_state(data)

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
            interests=[i.copy() for i in self.interests],
            shown=dict(self.shown),
        )

    def top_tags(self, k: int = 10, half_life: float | None = None) -> list[tuple[str, float]]:
        """The ``k`` strongest interest tags, weights decayed to the user's last action.

        Without a half-life the weights stay in the state's internal units (same order).
        """
        scale = 1.0
        if half_life is not None:
            scale = 2.0 ** (-(self.last_ts - self.tags_ts) / half_life)
        # nsmallest by (-weight, tag) is sorted(...)[:k] without sorting every tag (users hold hundreds).
        ranked = heapq.nsmallest(k, ((-w, t) for t, w in self.tags.items() if w > 0))
        return [(t, -w * scale) for w, t in ranked]

    def interest_groups(self, k: int, half_life: float) -> list[tuple[list[str], float]]:
        """The several interests, strongest first: each as its ``k`` strongest tags and its share of
        their strength at the user's last action (the shares sum to 1; interests without tags left out)."""
        strengths = [(tags, i.strength(self.last_ts, half_life)) for i in self.interests if (tags := i.top_tags(k))]
        total = sum(s for _, s in strengths) or 1.0
        return sorted(((tags, round(s / total, 3)) for tags, s in strengths), key=lambda g: -g[1])

    def recent_items(self, positive_only: bool = True) -> list[str]:
        """Item ids of recent actions, oldest first (by default those of :meth:`positive_actions`)."""
        actions = self.positive_actions() if positive_only else self.recent
        return [a.item_id for a in actions if a.item_id is not None]

    def positive_actions(self) -> list[RecentAction]:
        """The recent actions that speak for what the user likes, oldest first: positive ones (items
        and searches), except those on an item the user rejected since (a one-star review after a
        purchase, a dismissal after a view). Such an item is no evidence of their taste: it must not
        seed "more like this" nor be cited as a reason (issue 13)."""
        dismissed = self.dismissed
        return [a for a in self.recent if a.weight > 0 and (a.item_id is None or a.item_id not in dismissed)]

    def liked(self) -> dict[str, float]:
        """``interactions`` without the items the user rejected since (dismissed, reviewed badly):
        what the ALS fold-in reads, so a one-star purchase does not pull its neighbours up."""
        dismissed = self.dismissed
        if not dismissed:
            return self.interactions
        return {item_id: w for item_id, w in self.interactions.items() if item_id not in dismissed}

    def positive_item_actions(self, n: int) -> list[RecentAction]:
        """The last ``n`` of :meth:`positive_actions` on an item, oldest first (the seeds of "viewed together")."""
        return [a for a in self.positive_actions() if a.item_id is not None][-n:]


def _same_vector(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two state vectors are equal in dtype, shape and values (or both None)."""
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


# Event types whose weight a review's or rating's polarity scales (and signs).
_POLAR_EVENTS = (EventType.RATE, EventType.REVIEW)
_IMPRESSION = EventType.IMPRESSION
INTEREST_TAGS = 16  # tags an interest keeps (pruned past twice this)
# From this cosine two texts are more likely about one kind of item than two: measured on the demo
# world with the default encoder (pairs of items of one category against pairs of two, 1:13), the
# odds cross at about 0.23. Full interests merge what is this alike rather than forget an interest.
ALIKE = 0.25


def _action_time(action: RecentAction) -> float:
    return action.timestamp


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


def _decayed_sum(
    vec: np.ndarray | None, ref_ts: float, x: np.ndarray, weights: np.ndarray, times: np.ndarray, half_life: float
) -> tuple[np.ndarray, float]:
    """What :func:`_decayed_add` gives for each row of ``x`` with its weight and time in turn, at once.

    The reference time ends at the latest of ``ref_ts`` and ``times``; every row is decayed
    to it directly, ``Σ w_i 2^{-(T - t_i)/h} x_i``, and the old vector once, so the order of
    the rows (late, older events included) does not matter.
    """
    end = float(times.max()) if vec is None else max(ref_ts, float(times.max()))
    coef = weights * np.exp2((times - end) / half_life)
    # float32 throughout, as the one-at-a-time update keeps it; ndarray.dot is the cheapest call.
    total: np.ndarray = coef.astype(np.float32).dot(x)
    if vec is not None:
        total += np.float32(2.0 ** (-(end - ref_ts) / half_life)) * vec
    return total, end


class StateUpdater:
    """Applies events to :class:`UserState` in O(d + L); holds the settings it needs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.weights = settings.event_weights

    def weight(self, event: Event, polarity: float = 1.0) -> float:
        """The signed strength of an event: its type's weight, scaled by a review or rating polarity."""
        w = self.weights[event.type]
        if event.type in _POLAR_EVENTS:
            w *= polarity
        return w

    def apply(self, state: UserState, event: Event, signal: EventSignal) -> UserState:
        """Fold one event into ``state`` (in place) and return it.

        Cost: O(d) for the vectors, O(tags of the event) for the tags, O(1) amortised for the
        recent sequence — independent of how long the user's history is.
        """
        s = self.settings
        ts = event.timestamp
        if event.type is _IMPRESSION:
            return self._impression(state, event.item_id or "", ts)
        w = self.weight(event, signal.polarity)
        action = RecentAction(event.event_id, event.type, event.item_id, event.text, ts, w)
        if state.recent and ts < state.recent[-1].timestamp:
            # A late, older event goes to its place in time (O(L)), so the sequence equals a rebuild's.
            ordered = sorted([*state.recent, action], key=_action_time)
            state.recent = deque(ordered, maxlen=state.recent.maxlen)
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
            self._update_tags(state, [(signal.tags, w, ts)])
        if signal.vector is not None and w > 0:
            self._add_interest(state, signal.vector, w, ts, signal.tags)
        if event.item_id is not None:
            state.shown.pop(event.item_id, None)
            if w > 0:
                state.interactions[event.item_id] = state.interactions.get(event.item_id, 0.0) + w
                state.dismissed.discard(event.item_id)
            elif w < 0:  # a neutral action (a three-star rating) rejects nothing
                state.dismissed.add(event.item_id)
            state.seen.add(event.item_id)
        state.last_ts = max(state.last_ts, ts)
        state.n_events += 1
        state.version += 1
        return state

    def apply_many(self, state: UserState, events: Sequence[Event], signals: Sequence[EventSignal]) -> UserState:
        """Fold a batch of one user's events into ``state`` (in place) and return it.

        The result is the state that :meth:`apply` gives for each ``(event, signal)`` in time
        order (ties in the given order), up to float rounding — late events and events older
        than the state's clock included. It costs far less: the short-term and negative vectors
        take one weighted sum each instead of one O(d) update per event, the recent sequence is
        extended (or merged) once, and the rest is one plain loop over the events.

        Parameters
        ----------
        events
            Events of the state's user, in any order.
        signals
            ``signals[k]`` is the signal of ``events[k]``.
        """
        if len(events) != len(signals):
            raise InvalidInputError(
                f"apply_many got {len(events)} events but {len(signals)} signals", field="signals", value=len(signals)
            )
        if not events:
            return state
        times_of = [e.timestamp for e in events]
        order = sorted(range(len(events)), key=times_of.__getitem__)
        weights = self.weights
        interactions, seen, dismissed, shown = state.interactions, state.seen, state.dismissed, state.shown
        actions: list[RecentAction] = []
        interest_updates: list[tuple[np.ndarray, float, float, tuple[str, ...]]] = []
        xs: list[np.ndarray] = []
        ws: list[float] = []
        times: list[float] = []
        any_negative = False
        tagged: list[tuple[tuple[str, ...], float, float]] = []
        for k in order:
            event, signal = events[k], signals[k]
            type_, item_id, ts = event.type, event.item_id, event.timestamp
            if type_ is _IMPRESSION:
                shown[item_id or ""] = shown.get(item_id or "", 0) + 1
                continue
            w = weights[type_]
            if type_ in _POLAR_EVENTS:
                w *= signal.polarity
            actions.append(_action(event.event_id, type_, item_id, event.text, ts, w))
            if w != 0.0:
                if signal.vector is not None:
                    if w < 0:
                        any_negative = True
                    xs.append(signal.vector)
                    ws.append(w)
                    times.append(ts)
                if signal.tags:
                    tagged.append((signal.tags, w, ts))
                if w > 0 and signal.vector is not None:
                    interest_updates.append((signal.vector, w, ts, signal.tags))
            if item_id is not None:
                shown.pop(item_id, None)
                if w > 0:
                    interactions[item_id] = interactions.get(item_id, 0.0) + w
                    dismissed.discard(item_id)
                elif w < 0:
                    dismissed.add(item_id)
                seen.add(item_id)
        recent = state.recent
        if not actions:
            pass  # impressions only
        elif recent and actions[0].timestamp < recent[-1].timestamp:
            # Some events are older than the newest kept action: merge (stable, so an event goes
            # after kept actions of the same time, as apply puts it).
            state.recent = deque(sorted([*recent, *actions], key=_action_time), maxlen=recent.maxlen)
        else:
            recent.extend(actions)
        if xs:
            h = self.settings.short_term_half_life
            x, x_weights, x_times = np.asarray(xs, dtype=np.float32), np.array(ws), np.array(times)
            state.short_vec, state.short_ts = _decayed_sum(state.short_vec, state.short_ts, x, x_weights, x_times, h)
            if any_negative:
                neg = x_weights < 0
                state.neg_vec, state.neg_ts = _decayed_sum(
                    state.neg_vec, state.neg_ts, x[neg], -x_weights[neg], x_times[neg], h
                )
        if tagged:
            self._update_tags(state, tagged)
        for vector, w, ts, tags in interest_updates:  # in time order: the clustering depends on it
            self._add_interest(state, vector, w, ts, tags)
        if actions:
            state.last_ts = max(state.last_ts, max(a.timestamp for a in actions))
        state.n_events += len(events)
        state.version += len(events)
        return state

    def _impression(self, state: UserState, item_id: str, ts: float) -> UserState:
        """The item was shown: one more showing without an action (no interest moves, no action is kept)."""
        state.shown[item_id] = state.shown.get(item_id, 0) + 1
        state.n_events += 1
        state.version += 1
        return state

    def _add_interest(
        self, state: UserState, vector: np.ndarray, weight: float, ts: float, tags: tuple[str, ...]
    ) -> None:
        """Fold a positive action's vector into the interest it is most like (cosine at least
        ``interest_similarity``), or start a new interest, making room past ``interests`` (see
        :meth:`_make_room`).

        Online clustering (a "leader" clustering with decay): O(K · d) per action, in time order.
        """
        s = self.settings
        if s.interests < 1:
            return
        h = s.interest_half_life
        x = vector.astype(np.float32, copy=False)
        norm_x = _norm(x)
        if norm_x < 1e-12:
            return
        best, best_sim = None, -2.0
        for interest in state.interests:
            v = interest.vector
            n = _norm(v)
            sim = float(v.dot(x)) / (n * norm_x) if n > 1e-12 else -1.0
            if sim > best_sim:
                best, best_sim = interest, sim
        join = best if best_sim >= s.interest_similarity else None
        if join is None and best is not None and len(state.interests) >= s.interests:
            join = self._make_room(state.interests, best, best_sim, weight, ts)
        if join is not None:
            join.vector, join.ts = _decayed_add(join.vector, join.ts, x, weight, ts, h)
            tag_weights = join.tags
        else:
            fresh = Interest((np.float32(weight) * x).astype(np.float32), ts)
            state.interests.append(fresh)
            tag_weights = fresh.tags
        for tag in tags:
            tag_weights[tag] = tag_weights.get(tag, 0.0) + weight
        _prune_tags(tag_weights)

    def _make_room(
        self, interests: list[Interest], nearest: Interest, similarity: float, weight: float, ts: float
    ) -> Interest | None:
        """Make room among full ``interests`` (in place) for an action of ``weight`` at ``ts`` that
        is like none of them; ``nearest`` is the one it is most like, at cosine ``similarity``.
        Returns the interest the action joins after all, or None when it may start its own.

        The weakest interest goes if it is worth less than half the action (it has faded: a like
        action is worth that after one half-life). Otherwise, if the two most alike of the
        interests and the action are ALIKE, they become one (keeping every action's weight and
        tags); only then the weakest goes. Always dropping the weakest dropped the interest the
        user's last click had started, so clicks in a new interest replaced each other and never
        added up (issue 13).
        """
        h = self.settings.interest_half_life
        weakest = min(range(len(interests)), key=lambda k: interests[k].strength(ts, h))
        if interests[weakest].strength(ts, h) >= weight / 2:
            units = interest_directions(interests)
            sims = units @ units.T
            np.fill_diagonal(sims, -np.inf)
            pair = int(np.argmax(sims))
            if similarity >= max(ALIKE, float(sims.flat[pair])):
                return nearest
            if sims.flat[pair] >= ALIKE:
                a, b = sorted(divmod(pair, len(interests)))
                keep, gone = interests[a], interests.pop(b)
                keep.vector, keep.ts = _decayed_add(keep.vector, keep.ts, gone.vector, 1.0, gone.ts, h)
                for tag, w in gone.tags.items():
                    keep.tags[tag] = keep.tags.get(tag, 0.0) + w
                _prune_tags(keep.tags)
                return None
        del interests[weakest]
        return None

    def _update_tags(self, state: UserState, updates: Iterable[tuple[tuple[str, ...], float, float]]) -> None:
        """Add each ``(tags, weight, ts)`` in turn, in units of the state's tag reference time.

        Tag weights are stored as w · 2^{(t − tags_ts)/h}; reading them decays all at once
        (``top_tags``). The reference moves forward only when exponents grow large, so a
        rescale of every tag happens rarely (amortised O(1) per event).
        """
        h = self.settings.tag_half_life
        max_tags = self.settings.max_tags
        tags, ref_ts = state.tags, state.tags_ts
        get = tags.get
        for names, weight, ts in updates:
            if not tags:
                ref_ts = ts
            exponent = (ts - ref_ts) / h
            if exponent > 30.0:  # 2^30: rebase before float precision suffers
                scale = 2.0 ** (-exponent)
                tags = {t: w * scale for t, w in tags.items() if w * scale > 1e-9}
                get = tags.get
                ref_ts, exponent = ts, 0.0
            add = weight * 2.0**exponent
            # No clamping at zero: a sum is independent of the order events arrive in, so the
            # tags equal a rebuild's; top_tags shows only the positive ones.
            for tag in names:
                tags[tag] = get(tag, 0.0) + add
            # Prune amortised: only when the dict has doubled past its cap, so an update stays O(tags).
            if len(tags) > 2 * max_tags:
                tags = dict(sorted(tags.items(), key=lambda kv: -kv[1])[:max_tags])
                get = tags.get
        state.tags, state.tags_ts = tags, ref_ts


def _prune_tags(tag_weights: dict[str, float]) -> None:
    """Keep an interest's INTEREST_TAGS strongest tags once it holds twice as many (amortised O(1))."""
    if len(tag_weights) > 2 * INTEREST_TAGS:
        kept = dict(sorted(tag_weights.items(), key=lambda kv: -kv[1])[:INTEREST_TAGS])
        tag_weights.clear()
        tag_weights.update(kept)


def _norm(vec: np.ndarray) -> float:
    """The Euclidean length of a 1-d vector: what ``np.linalg.norm`` computes (``sqrt(x·x)``),
    without its dispatch, which cost more than the arithmetic in the per-event updates."""
    return math.sqrt(float(vec.dot(vec)))


def decayed_norm(vec: np.ndarray | None, ref_ts: float, now: float, half_life: float) -> float:
    """The strength of a decayed vector at ``now``."""
    if vec is None:
        return 0.0
    return _norm(vec) * (2.0 ** (-max(0.0, now - ref_ts) / half_life))


def interest_directions(interests: Sequence[Interest]) -> np.ndarray:
    """The unit vectors of ``interests`` as rows (one per interest, in order): what an item's or
    an action's vector is compared with by cosine."""
    return np.stack([i.vector / max(_norm(i.vector), 1e-12) for i in interests])


def unit(vec: np.ndarray | None) -> np.ndarray | None:
    """``vec`` scaled to length 1, or None when it is missing or (numerically) zero."""
    if vec is None:
        return None
    n = _norm(vec)
    if not math.isfinite(n) or n < 1e-9:
        return None
    return (vec / n).astype(np.float32)

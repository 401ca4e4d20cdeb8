"""Seeded worlds of any size for measuring how liverec's costs grow: 10k–1M items, 1M–10M events.

The demo world (2,400 items, 400 users) is the right size for a tutorial and the wrong one for
a question like "what does a recommendation cost at a million items?". This module writes worlds
of any size from the demo's bilingual vocabulary, and streams them: items and events come in
batches generated on demand, so a 10M-event stream is never held in memory, and the same
``seed`` gives the same world batch for batch.

* **Catalog.** Items are spread over the demo's 14 categories and their ~70 subtypes; each item
  carries both (``categories = ("cameras", "cameras/camera_lens")``), so a catalog has 84
  categories in two levels. About 60% are written in English, 40% in Chinese. Popularity is a
  Zipf law over a random ranking of the whole catalog (exponent :attr:`ScaleSpec.zipf`).
* **Users.** Activity is heavy-tailed (a Pareto share of sessions per user). Each user likes one to
  three subtypes, drawn in proportion to the subtypes' popularity, and prefers one language; a
  share of users (:attr:`ScaleSpec.drift`) swaps one liked subtype for another at a random time.
* **Sessions.** Sessions start as a Poisson process over :attr:`ScaleSpec.days` days; a session has a
  geometric number of actions (mean :attr:`ScaleSpec.session_length`) about a minute apart. A session
  keeps to one subtype of the user's tastes most of the time (sometimes it strays to a random
  subtype), may open with a search in the user's language, and its views turn into clicks,
  add-to-carts, purchases and ratings at fixed rates. Items are drawn within the subtype by their
  popularity.

Events arrive in time order, with ids ``s000000001``…, users ``u0000001``… and sessions
``u0000001-3``. :func:`load_world` streams a world into an :class:`~liverec.engine.Engine`.

>>> spec = ScaleSpec(items=500, events=2_000, seed=1)
>>> world = SyntheticWorld(spec)
>>> items = [item for batch in world.item_batches(200) for item in batch]
>>> len(items), items[0].categories[1].startswith(items[0].categories[0] + "/")
(500, True)
>>> events = [e for batch in world.event_batches(700) for e in batch]
>>> len(events), all(a.timestamp <= b.timestamp for a, b in zip(events, events[1:]))
(2000, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, EventType, Item
from liverec.datasets.demo.catalog import CATEGORIES, ENGLISH_SHARE, LANGUAGES, REFERENCE_TIME, compose_item
from liverec.datasets.demo.spec import CategorySpec, Subtype

if TYPE_CHECKING:
    from liverec.engine import Engine

__all__ = ["LEAVES", "ScaleSpec", "SyntheticWorld", "load_world"]

DAY = 86_400.0
WINDOW = 3_600.0  # seconds of sessions generated at a time (events are sorted within it)
CATALOG_DAYS = 120  # items are created over the days before the stream starts
STRAY = 0.15  # share of a session's actions outside its subtype (a random, popularity-drawn subtype)
SEARCH_OPENS = 0.25  # share of sessions that open with a search
ACTION_GAP = 60.0  # mean seconds between a session's actions
# What a view turns into (the rest stay views): the funnel of a typical shop.
FUNNEL = ((EventType.CLICK, 0.30), (EventType.ADD_TO_CART, 0.06), (EventType.PURCHASE, 0.03), (EventType.RATE, 0.02))


@dataclass(frozen=True)
class Leaf:
    """One subtype of one category: the finest category a synthetic item has."""

    category: CategorySpec
    subtype: Subtype

    @property
    def category_id(self) -> str:
        return f"{self.category.category_id}/{self.subtype.key}"


LEAVES: tuple[Leaf, ...] = tuple(Leaf(c, s) for c in CATEGORIES for s in c.subtypes)


def _positive_int(name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(f"{name} must be an integer >= {low}, got {value!r}", field=name, value=value)
    return value


def _share(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}", field=name, value=value)
    return float(value)


@dataclass(frozen=True)
class ScaleSpec:
    """The size and shape of a synthetic world; ``users`` defaults to one per 20 events."""

    items: int
    events: int
    users: int | None = None
    seed: int = 0
    days: float = 60.0
    end: float = REFERENCE_TIME  # the stream ends about here (it starts ``days`` before)
    zipf: float = 1.0  # item popularity exponent
    session_length: float = 5.0  # mean actions per session
    drift: float = 0.3  # share of users who swap one liked subtype for another mid-stream

    def __post_init__(self) -> None:
        _positive_int("items", self.items)
        _positive_int("events", self.events)
        if self.users is not None:
            _positive_int("users", self.users)
        _positive_int("seed", self.seed, low=0)
        _share("drift", self.drift)
        for name in ("days", "zipf", "session_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidInputError(f"{name} must be a positive number, got {value!r}", field=name, value=value)
        if self.session_length < 1:
            raise InvalidInputError(f"session_length must be >= 1, got {self.session_length!r}",
                                    field="session_length", value=self.session_length)

    @property
    def n_users(self) -> int:
        return self.users if self.users is not None else max(1, self.events // 20)

    @property
    def start(self) -> float:
        return self.end - self.days * DAY


class SyntheticWorld:
    """The items and the event stream of one :class:`ScaleSpec`, generated batch by batch.

    What the generator needs about every item (its subtype, language, popularity) and every user
    (activity, tastes, drift) is a few numpy arrays, built once: 1M items and 500k users take
    about 30 MB. Items and events themselves are made only when a batch is asked for.
    """

    def __init__(self, spec: ScaleSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng([spec.seed, 0])
        n = spec.items
        self.leaf = rng.integers(len(LEAVES), size=n).astype(np.int32)
        self.language = (rng.random(n) >= ENGLISH_SHARE).astype(np.int8)
        rank = rng.permutation(n)
        self.popularity = (1.0 / (rank + 1.0) ** spec.zipf).astype(np.float64)
        self.created = spec.start - np.floor(rng.random(n) * CATALOG_DAYS * DAY)
        self.width = max(6, len(str(n)))

    # ------------------------------------------------------------------ items

    def item_id(self, k: int) -> str:
        return f"i{k + 1:0{self.width}d}"

    def item_batches(self, size: int = 10_000, first: int = 0) -> Iterator[list[Item]]:
        """Every item from the ``first``-th on, ``size`` at a time; an item is the same whatever
        the batch size or the starting point (so a build cut short resumes where it stopped)."""
        _positive_int("size", size)
        _positive_int("first", first, low=0)
        specs = [dataclasses.replace(leaf.category, subtypes=(leaf.subtype,)) for leaf in LEAVES]
        for start in range(first, self.spec.items, size):
            batch = []
            for k in range(start, min(start + size, self.spec.items)):
                leaf = int(self.leaf[k])
                rng = np.random.default_rng([self.spec.seed, 1, k])  # per item: any batch size gives the same item
                item, _ = compose_item(self.item_id(k), specs[leaf], LANGUAGES[int(self.language[k])], rng,
                                       created_at=float(self.created[k]))
                batch.append(dataclasses.replace(item, categories=(*item.categories, LEAVES[leaf].category_id)))
            yield batch

    # ------------------------------------------------------------------ users

    @cached_property
    def _leaf_items(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per leaf: its items and the cumulative popularity to draw them by."""
        order = np.argsort(self.leaf, kind="stable")
        bounds = np.searchsorted(self.leaf[order], np.arange(len(LEAVES) + 1))
        out = []
        for leaf in range(len(LEAVES)):
            members = order[bounds[leaf] : bounds[leaf + 1]]
            weights = np.cumsum(self.popularity[members])
            out.append((members, weights / weights[-1] if len(weights) else weights))
        return out

    @cached_property
    def _leaf_weights(self) -> np.ndarray:
        """Cumulative popularity of the leaves (the sum of their items'), to draw a leaf by."""
        totals = np.bincount(self.leaf, weights=self.popularity, minlength=len(LEAVES))
        cumulative = np.cumsum(totals)
        return cumulative / cumulative[-1]

    @cached_property
    def _users(self) -> dict[str, np.ndarray]:
        spec, n = self.spec, self.spec.n_users
        rng = np.random.default_rng([spec.seed, 2])
        activity = np.cumsum(rng.pareto(1.5, size=n) + 0.05)
        tastes = np.searchsorted(self._leaf_weights, rng.random((n, 3)), side="right").astype(np.int32)
        tastes = np.minimum(tastes, len(LEAVES) - 1)
        n_tastes = rng.choice(3, size=n, p=[0.45, 0.35, 0.20]) + 1
        drifts = rng.random(n) < spec.drift
        return {
            "activity": activity / activity[-1],
            "tastes": tastes,
            "n_tastes": n_tastes.astype(np.int32),
            "drift_at": np.where(drifts, spec.start + rng.random(n) * spec.days * DAY, np.inf),
            "drift_to": np.minimum(np.searchsorted(self._leaf_weights, rng.random(n), side="right"), len(LEAVES) - 1),
            "language": (rng.random(n) >= ENGLISH_SHARE).astype(np.int8),
        }

    def user_id(self, u: int) -> str:
        return f"u{u + 1:07d}"

    # ------------------------------------------------------------------ events

    def event_batches(self, size: int = 50_000) -> Iterator[list[Event]]:
        """The whole stream in time order, ``size`` events at a time (the last batch may be shorter)."""
        _positive_int("size", size)
        pending: list[Event] = []
        for window in self._windows():
            pending.extend(window)
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
        if pending:
            yield pending

    def _windows(self) -> Iterator[list[Event]]:
        """Events one :data:`WINDOW` of session starts at a time, in time order, ``spec.events`` in all.

        A session that runs past its window's end is held back and merged into the next window,
        so the stream stays sorted across windows.
        """
        spec = self.spec
        rng = np.random.default_rng([spec.seed, 3])
        sessions_per_window = spec.events / spec.session_length / (spec.days * DAY / WINDOW)
        carry: dict[str, np.ndarray] | None = None
        emitted, window = 0, 0
        session_counter = np.zeros(spec.n_users, dtype=np.int32)
        while emitted < spec.events:
            begin = spec.start + window * WINDOW
            window += 1
            fresh = self._sessions(rng, begin, int(rng.poisson(sessions_per_window)), session_counter)
            rows = fresh if carry is None else {k: np.concatenate([carry[k], fresh[k]]) for k in fresh}
            order = np.argsort(rows["time"], kind="stable")
            rows = {k: v[order] for k, v in rows.items()}
            due = int(np.searchsorted(rows["time"], begin + WINDOW))
            carry = {k: v[due:] for k, v in rows.items()}
            if due == 0:
                continue
            take = min(due, spec.events - emitted)
            yield self._events(rows, take, emitted)
            emitted += take

    def _sessions(self, rng: np.random.Generator, begin: float, count: int,
                  session_counter: np.ndarray) -> dict[str, np.ndarray]:
        """``count`` sessions starting in ``[begin, begin + WINDOW)`` as flat per-action arrays."""
        users = self._users
        who = np.minimum(np.searchsorted(users["activity"], rng.random(count), side="right"), self.spec.n_users - 1)
        starts = begin + rng.random(count) * WINDOW
        lengths = rng.geometric(1.0 / self.spec.session_length, size=count)
        # Session numbers per user, in start order: a user's sessions get 1, 2, 3 …
        by_start = np.argsort(starts, kind="stable")
        number = np.zeros(count, dtype=np.int32)
        for s in by_start:  # a few hundred per window
            session_counter[who[s]] += 1
            number[s] = session_counter[who[s]]
        pick = (rng.random(count) * users["n_tastes"][who]).astype(np.int64)
        leaf = users["tastes"][who, pick]
        drifted = (starts >= users["drift_at"][who]) & (pick == 0)
        leaf = np.where(drifted, users["drift_to"][who], leaf)

        total = int(lengths.sum())
        session = np.repeat(np.arange(count), lengths)
        position = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        gaps = rng.exponential(ACTION_GAP, size=total)
        gaps[position == 0] = 0.0
        time = starts[session] + _cumsum_by_group(gaps, lengths)
        action_leaf = leaf[session].copy()
        stray = rng.random(total) < STRAY
        action_leaf[stray] = np.minimum(np.searchsorted(self._leaf_weights, rng.random(int(stray.sum())),
                                                        side="right"), len(LEAVES) - 1)
        item = self._draw_items(rng, action_leaf)
        kind = np.zeros(total, dtype=np.int8)  # index into _KINDS: 0 = view
        draw = rng.random(total)
        edge = 0.0
        for code, (_, share) in enumerate(FUNNEL, start=1):
            kind[(draw >= edge) & (draw < edge + share)] = code
            edge += share
        search = (position == 0) & (rng.random(total) < SEARCH_OPENS)
        kind[search] = len(_KINDS) - 1
        return {
            "time": time,
            "user": who[session].astype(np.int64),
            "session": number[session],
            "item": item,
            "leaf": action_leaf.astype(np.int32),
            "kind": kind,
            "rating": rng.integers(1, 6, size=total).astype(np.int8),
        }

    def _draw_items(self, rng: np.random.Generator, leaves: np.ndarray) -> np.ndarray:
        items = np.zeros(len(leaves), dtype=np.int64)
        uniform = rng.random(len(leaves))
        for leaf in np.unique(leaves):
            at = np.flatnonzero(leaves == leaf)
            members, cumulative = self._leaf_items[int(leaf)]
            if not len(members):  # a tiny catalog may leave a subtype empty: fall back to the whole catalog
                members, cumulative = np.arange(self.spec.items), np.cumsum(self.popularity) / self.popularity.sum()
            picks = np.minimum(np.searchsorted(cumulative, uniform[at], side="right"), len(members) - 1)
            items[at] = members[picks]
        return items

    def _events(self, rows: dict[str, np.ndarray], take: int, first: int) -> list[Event]:
        languages = self._users["language"]
        out = []
        search_kind = len(_KINDS) - 1
        for j in range(take):
            user = int(rows["user"][j])
            uid = self.user_id(user)
            kind = int(rows["kind"][j])
            event_type = _KINDS[kind]
            item: str | None = self.item_id(int(rows["item"][j]))
            value: float | None = None
            text: str | None = None
            if kind == search_kind:
                subtype = LEAVES[int(rows["leaf"][j])].subtype
                text = subtype.en.lower() if languages[user] == 0 else subtype.zh
                item = None
            elif event_type is EventType.RATE:
                value = float(rows["rating"][j])
            out.append(Event.trusted(f"s{first + j + 1:09d}", uid, event_type, item, value, text,
                                     float(rows["time"][j]), f"{uid}-{int(rows['session'][j])}"))
        return out


_KINDS: tuple[EventType, ...] = (EventType.VIEW, *(t for t, _ in FUNNEL), EventType.SEARCH)


def _cumsum_by_group(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Running sums restarting at each group (groups of ``lengths`` consecutive values)."""
    total = np.cumsum(values)
    first = np.cumsum(lengths) - lengths
    return total - np.repeat(total[first] - values[first], lengths)


def load_world(
    engine: Engine,
    spec: ScaleSpec,
    *,
    item_batch: int = 10_000,
    event_batch: int = 50_000,
    progress: Callable[[str, int, int], Any] | None = None,
) -> SyntheticWorld:
    """Stream ``spec``'s items, then its events, into ``engine`` (validated, stored, applied).

    ``progress(stage, done, total)`` is called after every batch. Nothing but one batch is held.
    """
    world = SyntheticWorld(spec)
    stages: tuple[tuple[str, Iterator[list[Any]], Callable[[list[Any]], object], int], ...] = (
        ("items", world.item_batches(item_batch), engine.ingest_items, spec.items),
        ("events", world.event_batches(event_batch), engine.ingest_events, spec.events),
    )
    for stage, batches, ingest, total in stages:
        done = 0
        for batch in batches:
            ingest(batch)
            done += len(batch)
            if progress is not None:
                progress(stage, done, total)
    return world

"""The demo world: a generated bilingual catalog, users with hidden (drifting) tastes, and their events.

:func:`build_demo_world` is the entry point; the :class:`DemoWorld` it returns also makes fresh,
deterministic events and items on demand (a burst of new interest, a brand-new user, a cold-start
item) for tests and for the demo's narration.
"""

from __future__ import annotations

import hashlib
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from liverec.core.errors import ConflictError, InvalidInputError, NotFoundError
from liverec.core.types import Event, EventType, Item, parse_event_type
from liverec.datasets.demo.catalog import (
    CATALOG_DAYS,
    CATEGORIES,
    CATEGORY_IDS,
    CATEGORY_INDEX,
    DAY,
    LANGUAGES,
    CatalogFacts,
    compose_item,
    generate_catalog,
)
from liverec.datasets.demo.simulate import Simulator
from liverec.datasets.demo.users import DemoUser, generate_users

SIMULATION_DAYS = 60
ITEM_EVENT_TYPES = (EventType.VIEW, EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE, EventType.DISMISS)


def _digest(*parts: object) -> str:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=5).hexdigest()


@dataclass
class DemoWorld:
    """A generated shop: ``items``, ``users`` with their hidden tastes, and ``events`` in time order.

    ``reference_time`` is the world's "now" (the ``now`` it was built with, by default the wall
    clock): items were created in the 90 days before it, events happened in the 60 days before it.
    ``facts`` holds the hidden per-item facts the simulation used (subtype, brand, quality,
    popularity); the helpers below read them.
    """

    items: list[Item]
    events: list[Event]
    users: list[DemoUser]
    categories: list[str]
    reference_time: float
    seed: int
    facts: CatalogFacts = field(repr=False, compare=False)
    _row: dict[str, int] = field(init=False, repr=False, compare=False)
    _users: dict[str, DemoUser] = field(init=False, repr=False, compare=False)
    _last_time: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._row = {item.item_id: k for k, item in enumerate(self.items)}
        self._users = {user.user_id: user for user in self.users}
        self._last_time = {}
        for event in self.events:
            self._last_time[event.user_id] = event.timestamp

    # ----------------------------------------------------------------------------- lookups

    def item(self, item_id: str) -> Item:
        """The catalog item ``item_id``."""
        return self.items[self._item_row(item_id)]

    def user(self, user_id: str) -> DemoUser:
        """The simulated user ``user_id`` with their hidden tastes."""
        try:
            return self._users[user_id]
        except KeyError:
            raise NotFoundError(f"user {user_id!r} is not in the demo world", kind="user", key=user_id) from None

    def items_in(self, category: str) -> list[Item]:
        """All catalog items of ``category``, in id order."""
        c = self._category_index(category)
        return [self.items[int(k)] for k in np.flatnonzero(self.facts.category == c)]

    def category_of(self, item_id: str) -> str:
        """The one category of catalog item ``item_id``."""
        return CATEGORY_IDS[int(self.facts.category[self._item_row(item_id)])]

    def events_of(self, user_id: str) -> list[Event]:
        """The events of ``user_id`` in time order (empty for a user with none)."""
        return [e for e in self.events if e.user_id == user_id]

    @property
    def _recent(self) -> float:
        """When fresh events start by default: an hour before the world's now, so a world built at
        the wall clock gets them as the recent past, never as the future."""
        return self.reference_time - 3600.0

    def _item_row(self, item_id: str) -> int:
        try:
            return self._row[item_id]
        except KeyError:
            raise NotFoundError(f"item {item_id!r} is not in the demo catalog", kind="item", key=item_id) from None

    @staticmethod
    def _category_index(category: str) -> int:
        if category not in CATEGORY_INDEX:
            raise InvalidInputError(
                f"category {category!r} is not one of {', '.join(CATEGORY_IDS)}", field="category", value=category
            )
        return CATEGORY_INDEX[category]

    def _pick_items(self, c: int, n: int, language: str | None, t: float, rng: np.random.Generator) -> list[int]:
        """``n`` distinct available items of category ``c`` that exist at ``t``, favouring popular ones."""
        facts = self.facts
        rows = np.flatnonzero((facts.category == c) & facts.available & (facts.created_at <= t))
        if len(rows) < n:
            raise InvalidInputError(
                f"category {CATEGORY_IDS[c]!r} has only {len(rows)} items at that time; asked for {n}",
                field="n",
                value=n,
            )
        w = facts.popularity[rows].copy()
        if language is not None:
            w *= np.where(facts.language[rows] == LANGUAGES.index(language), 1.0, 0.5)
        chosen = rng.choice(len(rows), size=n, replace=False, p=w / w.sum())
        return [int(rows[k]) for k in chosen]

    # ----------------------------------------------------------------------------- fresh data

    def burst(
        self,
        user_id: str,
        category: str,
        n: int = 3,
        start: float | None = None,
        types: Sequence[str | EventType] = ("view", "click", "add_to_cart"),
    ) -> list[Event]:
        """New events of ``user_id`` on ``n`` items of ``category``: each item gets ``types`` in order.

        This is a sudden new interest ("three hiking items viewed, clicked and carted"). The events
        start at ``start``, by default a minute after the user's last event in the world (or an
        hour before ``reference_time`` for a user without events), and are seconds apart. The
        same arguments always give the same events, ids included.

        Parameters
        ----------
        n
            How many distinct items; the result has ``n * len(types)`` events.
        types
            Item event types (view, click, add_to_cart, purchase, dismiss); rate, review and
            search need a value or text and are not made here.
        """
        c = self._category_index(category)
        if n < 1:
            raise InvalidInputError(f"n must be at least 1, got {n}", field="n", value=n)
        kinds = [parse_event_type(t) for t in types]
        for kind in kinds:
            if kind not in ITEM_EVENT_TYPES:
                raise InvalidInputError(
                    f"burst event type {kind.value!r} is not one of {', '.join(k.value for k in ITEM_EVENT_TYPES)}",
                    field="types",
                    value=kind.value,
                )
        if not kinds:
            raise InvalidInputError("types must name at least one event type", field="types", value=list(types))
        t = float(start) if start is not None else self._last_time.get(user_id, self._recent - 60.0) + 60.0
        key = _digest(self.seed, "burst", user_id, category, n, t, ",".join(k.value for k in kinds))
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode())])
        user = self._users.get(user_id)
        rows = self._pick_items(c, n, user.language if user else None, t, rng)
        events: list[Event] = []
        for row in rows:
            for kind in kinds:
                events.append(_scripted(user_id, kind, self.items[row].item_id, t, "burst", key, len(events) + 1))
                t += float(rng.integers(5, 45))
        return events

    def new_user_history(self, user_id: str, category: str, n: int, start: float | None = None) -> list[Event]:
        """``n`` events of a brand-new user who only ever touched ``category`` (views, clicks, purchases).

        Items are drawn by popularity; every item is viewed, every other one clicked and every sixth
        one bought (the first item is viewed, clicked and bought), so even a short history mixes
        types. Events start at ``start``, by default an hour before ``reference_time``.
        """
        c = self._category_index(category)
        if n < 1:
            raise InvalidInputError(f"n must be at least 1, got {n}", field="n", value=n)
        if user_id in self._users:
            raise ConflictError(f"user {user_id!r} already has a history in the demo world; pick a new id")
        t = float(start) if start is not None else self._recent
        key = _digest(self.seed, "history", user_id, category, n, t)
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode())])
        rows = self._pick_items(c, n, None, t, rng)
        events: list[Event] = []
        for k, row in enumerate(rows):
            kinds = [EventType.VIEW]
            if k % 2 == 0:
                kinds.append(EventType.CLICK)
            if k % 6 == 0:
                kinds.append(EventType.PURCHASE)
            for kind in kinds:
                if len(events) == n:
                    return events
                events.append(_scripted(user_id, kind, self.items[row].item_id, t, "history", key, len(events) + 1))
                t += float(rng.integers(10, 90))
        return events

    def make_item(self, category: str, language: str, seed: int) -> Item:
        """A new item of ``category`` in ``language`` that is not in the catalog (a cold-start item).

        Its id is ``new-<category>-<language>-<seed>`` and it is created at ``reference_time``; the
        same arguments give the same item.
        """
        c = self._category_index(category)
        if language not in LANGUAGES:
            raise InvalidInputError(
                f"language {language!r} is not one of {', '.join(LANGUAGES)}", field="language", value=language
            )
        rng = np.random.default_rng([self.seed, 0x17E4, seed & 0xFFFFFFFF, c, LANGUAGES.index(language)])
        item, _ = compose_item(
            f"new-{category}-{language}-{seed}", CATEGORIES[c], language, rng, created_at=self.reference_time
        )
        return item


def build_demo_world(
    seed: int = 7, n_items: int = 2400, n_users: int = 400, now: float | None = None
) -> DemoWorld:
    """Generate the demo world: ``n_items`` bilingual items, ``n_users`` users and their events.

    The catalog, the users and the simulation each draw from their own stream spawned from
    ``seed``, so the same arguments give an identical world (ids, texts and timestamps) and the
    catalog does not change with ``n_users``. The default size gives about 40,000 events.

    Parameters
    ----------
    now
        Where the world's timeline ends (seconds since the epoch, cut to whole seconds): items are
        created in the 90 days and events happen in the 60 days before it. By default the wall
        clock, so what the demo's user "just" did is dated minutes ago, not months. ``now`` only
        shifts the clock: two worlds of one seed differ in nothing but timestamps moved by the
        difference of their ``now`` (pass :data:`REFERENCE_TIME` for timestamps that never move).

    >>> from liverec.datasets.demo import REFERENCE_TIME
    >>> world = build_demo_world(seed=1, n_items=280, n_users=5, now=REFERENCE_TIME)
    >>> world.reference_time == REFERENCE_TIME, world.events[-1].timestamp < REFERENCE_TIME
    (True, True)
    >>> len(world.items), len(world.categories), world.items[0].item_id
    (280, 14, 'i00001')
    """
    if n_items < len(CATEGORIES):
        raise InvalidInputError(
            f"n_items must be at least {len(CATEGORIES)} (one per category), got {n_items}",
            field="n_items",
            value=n_items,
        )
    if n_users < 1:
        raise InvalidInputError(f"n_users must be at least 1, got {n_users}", field="n_users", value=n_users)
    end = _whole_seconds(time.time() if now is None else now)
    catalog_seq, users_seq, simulation_seq = np.random.SeedSequence(seed).spawn(3)
    items, facts = generate_catalog(n_items, np.random.default_rng(catalog_seq), end)
    start = end - SIMULATION_DAYS * DAY
    users, tastes = generate_users(n_users, np.random.default_rng(users_seq), start=start, end=end)
    simulator = Simulator(facts, np.random.default_rng(simulation_seq), start=start, end=end)
    raw = simulator.run(users, tastes)
    raw.sort(key=lambda r: (r[0], r[1], r[2]))
    width = max(7, len(str(len(raw))))
    events = [
        Event.create(
            users[u].user_id,
            kind,
            items[item].item_id if item >= 0 else None,
            value=value,
            text=text,
            timestamp=t,
            session_id=session,
            event_id=f"e{k + 1:0{width}d}",
        )
        for k, (t, u, _, kind, item, value, text, session) in enumerate(raw)
    ]
    return DemoWorld(
        items=items,
        events=events,
        users=users,
        categories=list(CATEGORY_IDS),
        reference_time=end,
        seed=seed,
        facts=facts,
    )


def _whole_seconds(now: object) -> float:
    """``now`` cut to whole seconds: every time in the world is ``now`` plus a whole offset, exact in floats."""
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise InvalidInputError(f"now must be seconds since the epoch, got {now!r}", field="now", value=now)
    if now < CATALOG_DAYS * DAY:
        raise InvalidInputError(
            f"now must be at least {CATALOG_DAYS} days after the epoch (the catalog's first item), got {now!r}",
            field="now",
            value=now,
        )
    return float(math.floor(now))


def _scripted(user_id: str, kind: EventType, item_id: str, t: float, label: str, key: str, n: int) -> Event:
    """One event of a scripted sequence (a burst, a new user's history), with a stable id."""
    return Event.create(
        user_id, kind, item_id, timestamp=t, session_id=f"{label}-{key}", event_id=f"e-{label}-{key}-{n:03d}"
    )

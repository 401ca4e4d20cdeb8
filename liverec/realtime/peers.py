"""What the other processes serving the same store change, taken in by this one.

A store shared by processes (PostgreSQL, or a SQLite file that ``liverec ingest`` writes while
``liverec serve`` runs) offers feeds: the catalog's changes (``Catalog.changes_since``) and the
events appended by anyone (``EventLog.since``). A store without them (memory) makes every call
here a no-op. :class:`Peers` keeps where this
process stands in each feed; :meth:`Engine.sync <liverec.engine.Engine.sync>` calls it.
"""

from __future__ import annotations

from collections.abc import Iterable

from liverec.core.types import Event
from liverec.realtime.catalog import LiveCatalog
from liverec.storage.base import Store

__all__ = ["SEEN_WINDOW", "Peers"]

# Event ids remembered as already folded into this process's online models (between this many and
# twice as many), so an event read again from the log (its look-back) is never folded in twice.
SEEN_WINDOW = 200_000


class Peers:
    """This process's place in the store's feeds of item changes and events.

    Both positions are read at construction: make it before the catalog and the models are
    loaded, so a change made meanwhile is taken in again by the first :meth:`items` rather than missed.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._changes = getattr(store.catalog, "changes_since", None)
        self._since = getattr(store.events, "since", None)
        self._catalog_position = self._changes(None)[0] if self._changes is not None else 0
        self._event_position = self._since(None, ())[0] if self._since is not None else 0
        self._seen: set[str] = set()
        self._seen_before: set[str] = set()

    def items(self, catalog: LiveCatalog) -> int:
        """Serve the items other processes upserted or deleted since the last call; how many changed."""
        if self._changes is None:
            return 0
        position, changed = self._changes(self._catalog_position)
        if changed is None:  # further behind than the feed keeps: read the whole catalog
            changed = list(dict.fromkeys([*catalog.ids(), *(i.item_id for i in self.store.catalog.all())]))
        reloaded = catalog.reload(changed) if changed else 0
        self._catalog_position = position
        return reloaded

    def events(self) -> list[Event]:
        """Events other processes stored since the last call, that this one has not folded in yet."""
        if self._since is None:
            return []
        fresh: list[Event] = []
        while True:  # a page at a time, until the log's position stops moving
            position, events = self._since(self._event_position, self)
            fresh += events
            self.folded(e.event_id for e in events)
            if position == self._event_position:
                return fresh
            self._event_position = position

    def folded(self, event_ids: Iterable[str]) -> None:
        """Remember events folded into the online models (this process's own, as it ingests them)."""
        if self._since is None:
            return
        self._seen.update(event_ids)
        if len(self._seen) >= SEEN_WINDOW:
            self._seen_before, self._seen = self._seen, set()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._seen or event_id in self._seen_before

    def caught_up(self) -> None:
        """A snapshot just served has folded in the whole log: take other processes' events from
        here on, not again (one stored while it caught up may be left out of it)."""
        if self._since is not None:
            self._event_position = self._since(None, ())[0]

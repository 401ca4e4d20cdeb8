"""Everything live: the catalog being served and every user's state, changed the moment events arrive.

* :mod:`~liverec.realtime.catalog` — the live catalog (items, interest tags, text index);
* :mod:`~liverec.realtime.state` — :class:`UserState` and its O(d + L) update;
* :mod:`~liverec.realtime.codec` — a state as versioned bytes;
* :mod:`~liverec.realtime.signals` — what an event means for a user's interests;
* :mod:`~liverec.realtime.live` — applying events, rebuilding states from the log, writing back;
* :mod:`~liverec.realtime.store` — where states live (:class:`StateStore`, ``open_state_store(url)``).
"""

from liverec.realtime.catalog import ItemLookup, ItemTable, LiveCatalog
from liverec.realtime.codec import decode_state, encode_state
from liverec.realtime.live import LiveStates
from liverec.realtime.signals import EventSignals
from liverec.realtime.state import EventSignal, Interest, RecentAction, StateUpdater, UserState
from liverec.realtime.store import MemoryStateStore, StateStore, open_state_store, register_state_store

__all__ = [
    "EventSignal",
    "EventSignals",
    "Interest",
    "ItemLookup",
    "ItemTable",
    "LiveCatalog",
    "LiveStates",
    "MemoryStateStore",
    "RecentAction",
    "StateStore",
    "StateUpdater",
    "UserState",
    "decode_state",
    "encode_state",
    "open_state_store",
    "register_state_store",
]

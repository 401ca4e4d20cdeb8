"""Real-time user state: updated per event in O(d + L), rebuildable from the event log."""

from liverec.realtime.state import EventSignal, RecentAction, StateUpdater, UserState
from liverec.realtime.store import MemoryStateStore, StateStore, open_state_store

__all__ = [
    "EventSignal",
    "MemoryStateStore",
    "RecentAction",
    "StateStore",
    "StateUpdater",
    "UserState",
    "open_state_store",
]

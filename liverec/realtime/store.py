"""Where user states live: the StateStore protocol and the in-process default."""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from liverec.realtime.state import UserState


@runtime_checkable
class StateStore(Protocol):
    """Holds :class:`UserState` by user id; a miss means "rebuild from the event log"."""

    def get(self, user_id: str) -> UserState | None: ...

    def put(self, state: UserState) -> None: ...

    def delete(self, user_id: str) -> bool: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...


class MemoryStateStore:
    """States in a dict in this process (the single-machine default)."""

    def __init__(self) -> None:
        self._states: dict[str, UserState] = {}
        self._lock = threading.Lock()

    def get(self, user_id: str) -> UserState | None:
        return self._states.get(user_id)

    def put(self, state: UserState) -> None:
        with self._lock:
            self._states[state.user_id] = state

    def delete(self, user_id: str) -> bool:
        with self._lock:
            return self._states.pop(user_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._states.clear()

    def __len__(self) -> int:
        return len(self._states)


def open_state_store(url: str = "memory://") -> StateStore:
    """A state store by URL; only ``memory://`` exists so far (Redis is planned)."""
    from liverec.core.errors import InvalidInputError

    if url == "memory://":
        return MemoryStateStore()
    raise InvalidInputError(f"state store URL {url!r} is not supported; known: memory://", field="state_url", value=url)

"""The exceptions liverec raises.

Every error a caller can provoke derives from :class:`LiveRecError`, so one
``except LiveRecError`` catches them all. Library code raises these; only
``liverec.service`` turns them into HTTP status codes.

::

    LiveRecError
     ├── InvalidInputError   a bad item, event, query or argument (names the field and value)
     ├── NotFoundError       an unknown user, item or snapshot
     ├── NotTrainedError     an operation needs a trained model snapshot
     ├── ConflictError       the request contradicts stored state
     └── StorageError        the backend failed (disk full, corrupt file, lost connection)
"""

from __future__ import annotations

from typing import Any


class LiveRecError(Exception):
    """Base class of every liverec error."""


class InvalidInputError(LiveRecError, ValueError):
    """A caller gave bad input; ``field`` and ``value`` name what was wrong."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class NotFoundError(LiveRecError, KeyError):
    """An unknown user, item or snapshot was asked for."""

    def __init__(self, message: str, *, kind: str = "item", key: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.key = key

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class NotTrainedError(LiveRecError):
    """The operation needs a trained model snapshot; run ``train`` first."""


class ConflictError(LiveRecError):
    """The request contradicts stored state (e.g. an event id reused with other content);
    ``field`` and ``key`` name what clashed, when one field did."""

    def __init__(self, message: str, *, field: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.key = key


class StorageError(LiveRecError):
    """The storage backend failed; nothing of the failed call was stored."""

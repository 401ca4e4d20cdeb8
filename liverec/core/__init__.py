"""Core types, errors and settings; imports nothing else of liverec."""

from liverec.core.errors import (
    ConflictError,
    InvalidInputError,
    LiveRecError,
    NotFoundError,
    NotTrainedError,
    StorageError,
)
from liverec.core.settings import Settings
from liverec.core.types import (
    DEFAULT_EVENT_WEIGHTS,
    Event,
    EventType,
    Item,
    Reason,
    Recommendation,
)

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "ConflictError",
    "Event",
    "EventType",
    "InvalidInputError",
    "Item",
    "LiveRecError",
    "NotFoundError",
    "NotTrainedError",
    "Reason",
    "Recommendation",
    "Settings",
    "StorageError",
]

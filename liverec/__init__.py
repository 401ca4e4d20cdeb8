"""liverec: a real-time, language-aware recommender engine."""

from liverec.core import (
    Event,
    EventType,
    InvalidInputError,
    Item,
    LiveRecError,
    NotFoundError,
    NotTrainedError,
    Reason,
    Recommendation,
    Settings,
)

__version__ = "0.1.0"

__all__ = [
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
    "__version__",
]

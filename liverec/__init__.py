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


def __getattr__(name: str) -> object:
    # The engine pulls in faiss, the encoders and the models: imported on first use, so that
    # ``import liverec`` (types, errors, settings) stays cheap.
    if name == "Engine":
        from liverec.engine import Engine

        return Engine
    raise AttributeError(f"module 'liverec' has no attribute {name!r}")


__all__ = [
    "Engine",
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

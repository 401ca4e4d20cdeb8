"""Engine settings: one validated dataclass, built from keyword arguments.

Unknown keys are errors, so a misspelt setting never silently does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.core.types import DEFAULT_EVENT_WEIGHTS, EventType, parse_event_type


@dataclass(frozen=True)
class Settings:
    """How an :class:`~liverec.engine.Engine` behaves.

    Parameters
    ----------
    encoder
        Text encoder by name: ``use`` (multilingual USE, default), ``e5`` (multilingual-e5-small)
        or ``minilm`` (English all-MiniLM-L6-v2).
    event_weights
        Strength of each event type; dismiss is negative.
    short_term_half_life
        Seconds after which an event counts half in the short-term interest vector.
    tag_half_life
        Seconds after which an event counts half in the interest tags.
    recent_length
        How many recent items a user's state keeps (L).
    max_tags
        Interest tags a user's state keeps (the weakest are pruned past twice this).
    model_dir
        Where model snapshots are written; default: beside the store (``<db>.models``) or a
        temporary directory for ``memory://``.
    encoder_threads
        Threads the text encoder may use.
    models
        Hyperparameters per model, a ``[models.NAME]`` table each (``{"als": {"factors": 128}}``);
        the names and parameters are the models' own (their ``__init__`` signatures), checked
        when the engine opens. A model not named keeps its defaults.
    scorer
        How candidates are scored: ``{"kind": "linear"}`` (recall weights tuned on validation),
        with the kind's parameters.
    seed
        Seed of training's validation sample and of every model with a ``seed`` parameter not
        set in ``models``.
    validation_users
        Users whose next event is held out to tune the scorer at each training.
    state_store
        Where live user states are kept, by URL (``memory://``: this process; see
        :func:`liverec.realtime.open_state_store`).
    """

    encoder: str = "use"
    event_weights: Mapping[EventType, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    short_term_half_life: float = 6 * 3600.0
    tag_half_life: float = 3 * 86400.0
    recent_length: int = 50
    max_tags: int = 64
    model_dir: str | None = None
    encoder_threads: int = 2
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    scorer: Mapping[str, Any] = field(default_factory=lambda: {"kind": "linear"})
    seed: int = 0
    validation_users: int = 500
    state_store: str = "memory://"

    def __post_init__(self) -> None:
        weights = dict(DEFAULT_EVENT_WEIGHTS)
        for key, value in dict(self.event_weights).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInputError(
                    f"event weight for {key!r} must be a number, got {value!r}", field="event_weights", value=value
                )
            weights[parse_event_type(key)] = float(value)
        object.__setattr__(self, "event_weights", weights)
        for name in ("short_term_half_life", "tag_half_life"):
            if getattr(self, name) <= 0:
                raise InvalidInputError(f"{name} must be positive", field=name, value=getattr(self, name))
        for name in ("recent_length", "max_tags", "encoder_threads", "validation_users"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer", field=name, value=value)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InvalidInputError("seed must be an integer", field="seed", value=self.seed)
        for name in ("models", "scorer"):
            if not isinstance(getattr(self, name), Mapping):
                raise InvalidInputError(f"{name} must be a table", field=name, value=getattr(self, name))
        # Which models and scorers exist is known only above core (their registries): the engine
        # checks ``models`` and ``scorer`` against them when it opens.

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InvalidInputError(
                f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}",
                field=sorted(unknown)[0],
            )
        return cls(**values)

"""What cleaning does, a ``[cleaning]`` table of the settings (every key optional).

The defaults are set against real logs, not guessed: on the MovieLens-1M ratings (2,999 users,
some rating 1,442 films in one day and 33 within ten seconds), Amazon Scientific (a day between a
user's items) and MIND they quarantine nobody (``liverec evaluate --protocol noise`` reports who
each rule caught, in the clean run and under injected noise), while a click bot, a double submit
or a scraper crossing the catalog is caught within its first hundred events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.core.settings import from_table

__all__ = ["CleaningSettings", "cleaning_settings"]


@dataclass(frozen=True)
class CleaningSettings:
    """Rules applied to events at ingest, before any state or model learns from them.

    Parameters
    ----------
    enabled
        False learns from every stored event, as before cleaning existed.
    duplicate_seconds
        The same user, type, item, value and text again within this many seconds of the previous
        one is a duplicate: stored, counted, not learned from again (a double submit, a retried
        click with a new id, a list refreshed twice).
    burst_events, burst_seconds
        More than ``burst_events`` events of one user within ``burst_seconds`` is robotic.
    repeat_events, repeat_seconds
        More than ``repeat_events`` events of one user on one item within ``repeat_seconds`` is
        robotic (a click bot; duplicates count too).
    breadth_items, breadth_seconds
        More than ``breadth_items`` distinct items touched by one user within ``breadth_seconds``
        is robotic (a scraper).
    regular_events, regular_cv, regular_max_gap
        ``regular_events`` gaps in a row between one user's events, each at least a second and on
        average at most ``regular_max_gap`` seconds, whose coefficient of variation is below
        ``regular_cv``: a timer, not a person. Slower paces are left alone: a log stamped by the day
        (Amazon's reviews) spaces a daily reviewer's events evenly, and a person cannot be told from
        a timer there.
    item_burst_events, item_burst_seconds, item_burst_focus
        An item receiving more than ``item_burst_events`` events within ``item_burst_seconds`` is
        under a burst; a user behind at least five of those events whose events (within
        ``repeat_seconds``) fall on it for ``item_burst_focus`` or more is a farmed account.
    reviews
        Screen review texts for spam, abuse and off-topic text (:mod:`liverec.cleaning.reviews`).
    spam_reviews
        A user with this many reviews screened as spam is a spam account: quarantined whole, for
        the views and purchases around a promotion are as fake as its text (abuse and off-topic
        reviews are quarantined alone: a rude person's clicks are still a person's).
    """

    enabled: bool = True
    duplicate_seconds: float = 5.0
    burst_events: int = 60
    burst_seconds: float = 10.0
    repeat_events: int = 50
    repeat_seconds: float = 86400.0
    breadth_items: int = 3000
    breadth_seconds: float = 86400.0
    regular_events: int = 40
    regular_cv: float = 0.02
    regular_max_gap: float = 3600.0
    item_burst_events: int = 600
    item_burst_seconds: float = 60.0
    item_burst_focus: float = 0.9
    reviews: bool = True
    spam_reviews: int = 2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool":
                if not isinstance(value, bool):
                    raise InvalidInputError(f"cleaning.{f.name} must be true or false", field=f"cleaning.{f.name}",
                                            value=value)
                continue
            number = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
            if f.type == "int" and not isinstance(value, int):
                number = False
            if not number or value <= 0 or (f.name == "item_burst_focus" and value > 1):
                raise InvalidInputError(
                    f"cleaning.{f.name} must be a positive {'integer' if f.type == 'int' else 'number'}"
                    + (" at most 1" if f.name == "item_burst_focus" else "") + f", got {value!r}",
                    field=f"cleaning.{f.name}", value=value)


def cleaning_settings(values: Mapping[str, Any] | CleaningSettings | None) -> CleaningSettings:
    """The ``[cleaning]`` table as settings; a misspelt key is refused, naming it."""
    if isinstance(values, CleaningSettings):
        return values
    return from_table(CleaningSettings, values or {}, "cleaning")

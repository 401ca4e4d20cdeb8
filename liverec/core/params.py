"""Request parameters every entry point checks the same way (library, CLI, HTTP route, fast path).

>>> check_k(10), check_diversity(None), check_diversity(0.5)
(10, 0.2, 0.5)
>>> check_k(0)
Traceback (most recent call last):
...
liverec.core.errors.InvalidInputError: k 0 must be an integer from 1 to 1000
"""

from __future__ import annotations

from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.core.types import MAX_ID_LENGTH

__all__ = ["DEFAULT_DIVERSITY", "MAX_K", "check_diversity", "check_id", "check_k", "check_share"]

MAX_K = 1000  # items one list may hold
DEFAULT_DIVERSITY = 0.2  # MMR's 1 − λ when neither the request nor an A/B variant says


def check_id(value: Any, name: str) -> str:
    """``value`` as a non-blank id of at most :data:`~liverec.core.types.MAX_ID_LENGTH` characters,
    or InvalidInputError naming ``name``: the ids an event may hold, so nothing is looked up or
    erased under an id that could never have been stored."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} is missing", field=name, value=value)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInputError(f"{name} is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed",
                                field=name, value=value[:40] + "…")
    return value


def check_k(k: Any) -> int:
    """``k`` as an integer from 1 to :data:`MAX_K`."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k {k!r} must be an integer from 1 to {MAX_K}", field="k", value=k)
    return k


def check_diversity(diversity: Any) -> float:
    """``diversity`` as a float in [0, 1]; None means :data:`DEFAULT_DIVERSITY`."""
    if diversity is None:
        return DEFAULT_DIVERSITY
    return check_share(diversity, "diversity")


def check_share(value: Any, name: str) -> float:
    """``value`` as a float in [0, 1] (MMR's diversity, the exposure control's strength)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"{name} {value!r} must be between 0 and 1", field=name, value=value)
    return float(value)

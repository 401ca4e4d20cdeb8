"""Query parameters, parsed one way for every path that reads them.

The checks themselves live once, in :mod:`liverec.core.params` (the engine applies the same);
FastAPI only converts types here and documents the bounds, so a bad ``k`` gets the same 422 from
the route, the fast path and the library. :class:`RecommendParams` is what
``GET /users/{user_id}/recommendations`` takes; the FastAPI route builds it from its parameters
and the fast path (:mod:`liverec.service.fastpath`) from the raw query string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Query

from liverec.core.errors import InvalidInputError
from liverec.core.params import DEFAULT_DIVERSITY, MAX_K, check_diversity, check_k

__all__ = ["MAX_CATEGORIES", "MAX_EXCLUDE", "DiversityQuery", "KQuery", "RecommendParams"]

MAX_CATEGORIES = 100  # category parameters one request may repeat
MAX_EXCLUDE = 1000  # exclude parameters one request may repeat

#: ``k``: converted by FastAPI, checked by :func:`liverec.core.params.check_k` (bounds documented).
KQuery = Annotated[int, Query(description=f"how many items, 1 to {MAX_K}",
                              json_schema_extra={"minimum": 1, "maximum": MAX_K})]
DiversityQuery = Annotated[float | None, Query(
    description="MMR diversity from 0 (relevance only) to 1; default: the A/B variant's, else "
                f"{DEFAULT_DIVERSITY}", json_schema_extra={"minimum": 0.0, "maximum": 1.0})]

# What the fast path reads without FastAPI; anything else (an unknown or repeated parameter, a
# value it would have to coerce) makes it hand the request to the route, whose errors are exact.
_INT = re.compile(r"[0-9]{1,6}")
_FRACTION = re.compile(r"(0|1)(\.[0-9]{1,12})?|\.[0-9]{1,12}")
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_LISTS = {"category": MAX_CATEGORIES, "exclude": MAX_EXCLUDE}
_SCALARS = frozenset({"k", "diversity", "exclude_seen"})


def _split(values: Iterable[str]) -> tuple[str, ...]:
    """Repeated parameters, each also split on commas: ``exclude=a,b&exclude=c``."""
    return tuple(part for value in values for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class RecommendParams:
    """What one recommendation request asks for, checked on construction.

    ``diversity`` None means "the variant's, else the default" (:meth:`diversity_for`).
    """

    k: int = 10
    categories: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    diversity: float | None = None
    exclude_seen: bool = True

    def __post_init__(self) -> None:
        check_k(self.k)
        if self.diversity is not None:
            check_diversity(self.diversity)

    @classmethod
    def from_lists(
        cls, k: int = 10, category: list[str] | None = None, exclude: list[str] | None = None,
        diversity: float | None = None, exclude_seen: bool = True,
    ) -> RecommendParams:
        """From parameters as FastAPI converted them (lists hold one entry per repetition)."""
        for name, values, most in (("category", category, MAX_CATEGORIES), ("exclude", exclude, MAX_EXCLUDE)):
            if values is not None and len(values) > most:
                raise InvalidInputError(f"{name} is given {len(values)} times; at most {most} are allowed",
                                        field=name, value=len(values))
        return cls(k, _split(category or ()), _split(exclude or ()), diversity, exclude_seen)

    @classmethod
    def from_query(cls, query: bytes) -> RecommendParams | None:
        """From a raw query string, or None for anything not plainly well-formed (the route then answers)."""
        try:
            pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return None
        lists: dict[str, list[str]] = {name: [] for name in _LISTS}
        scalars: dict[str, Any] = {}
        for name, value in pairs:
            if name in lists:
                lists[name].append(value)
                continue
            if name not in _SCALARS or name in scalars:
                return None
            if name == "k":
                if not _INT.fullmatch(value):
                    return None
                scalars["k"] = int(value)
            elif name == "diversity":
                if not _FRACTION.fullmatch(value):
                    return None
                scalars["diversity"] = float(value)
            else:
                flag = _BOOLEANS.get(value)
                if flag is None:
                    return None
                scalars["exclude_seen"] = flag
        try:
            return cls.from_lists(category=lists["category"], exclude=lists["exclude"], **scalars)
        except InvalidInputError:
            return None

    def diversity_for(self, variant_diversity: float | None) -> float:
        """The request's diversity, else the variant's, else the default: the one place that says so."""
        if self.diversity is not None:
            return self.diversity
        return check_diversity(variant_diversity)

    def filters(self) -> dict[str, Any]:
        """The engine's filters for this request."""
        return {"include_categories": self.categories, "exclude_items": self.exclude,
                "exclude_seen": self.exclude_seen}

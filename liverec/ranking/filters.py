"""Business filters applied after fusion and before diversity."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.realtime.catalog import ItemLookup
from liverec.realtime.state import UserState

__all__ = ["Filters"]


@dataclass(frozen=True)
class Filters:
    """What a recommendation list may contain.

    Parameters
    ----------
    exclude_seen
        Leave out items the user already acted on (the default: a shop rarely re-sells the
        camera you just bought; news sites never want a read article again).
    include_categories
        When given, only items in at least one of these categories.
    exclude_categories
        Never items in any of these categories.
    exclude_items
        Never these item ids.
    """

    exclude_seen: bool = True
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    exclude_items: frozenset[str] = frozenset()

    @classmethod
    def coerce(cls, value: Filters | Mapping[str, Any] | None) -> Filters:
        """Accept a Filters, a mapping of its fields, or None (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Filters):
            return value
        if not isinstance(value, Mapping):
            raise InvalidInputError(f"filters must be a mapping, got {value!r}", field="filters", value=value)
        known = set(cls.__dataclass_fields__)
        unknown = set(value) - known
        if unknown:
            raise InvalidInputError(
                f"unknown filter(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}",
                field=sorted(unknown)[0],
            )
        kwargs: dict[str, Any] = dict(value)
        for name in ("include_categories", "exclude_categories"):
            if name in kwargs:
                kwargs[name] = _str_tuple(kwargs[name], name)
        if "exclude_items" in kwargs:
            kwargs["exclude_items"] = frozenset(_str_tuple(kwargs["exclude_items"], "exclude_items"))
        if "exclude_seen" in kwargs and not isinstance(kwargs["exclude_seen"], bool):
            raise InvalidInputError(
                "exclude_seen must be true or false", field="exclude_seen", value=kwargs["exclude_seen"]
            )
        return cls(**kwargs)

    def blocked(self, state: UserState | None) -> set[str]:
        """Item ids that no recall should spend its budget on."""
        out = set(self.exclude_items)
        if state is not None:
            out |= state.dismissed
            if self.exclude_seen:
                out |= state.seen
        return out

    def allows(self, item_id: str, items: ItemLookup, blocked: Collection[str]) -> bool:
        if item_id in blocked:
            return False
        item = items.find(item_id)
        if item is None or not item.available:
            return False
        if self.include_categories and not set(item.categories) & set(self.include_categories):
            return False
        return not (self.exclude_categories and set(item.categories) & set(self.exclude_categories))


def _str_tuple(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple | set | frozenset) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"{name} must be a list of strings, got {value!r}", field=name, value=value)
    return tuple(value)

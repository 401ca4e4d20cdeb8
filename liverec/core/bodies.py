"""JSON bodies of events and items, read the same way wherever they arrive: an HTTP request
(``POST /events``, ``PUT /items``) or a broker's message (``liverec consume``).

Parsed with orjson; every check here runs before the engine validates a row, and names the
field at fault.

>>> batch(load_json(b'{"events": [{"user_id": "u1"}]}'), "events", single_ok=True, limit=10)
[{'user_id': 'u1'}]
>>> batch(load_json(b'[]', "the message"), "events", single_ok=True, list_ok=True, limit=10, what="the message")
Traceback (most recent call last):
...
liverec.core.errors.InvalidInputError: the message holds no events
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from liverec.core.errors import InvalidInputError
from liverec.core.types import MAX_JSON_DEPTH, check_json_depth

__all__ = ["batch", "load_json", "string_ids"]


def load_json(body: bytes, what: str = "the request body") -> Any:
    """``body`` parsed; ``what`` names it in errors (``the message``)."""
    if not body:
        raise InvalidInputError(f"{what} is empty; expected JSON", field="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson stops at 1024 levels, before anything could name a field
            raise InvalidInputError(f"{what} nests objects and lists deeper than orjson's 1024 levels; "
                                    f"a field may hold at most {MAX_JSON_DEPTH}", field="body") from exc
        raise InvalidInputError(f"{what} is not valid JSON: {exc}", field="body") from exc


def batch(data: Any, key: str, *, single_ok: bool, limit: int, list_ok: bool = False,
          what: str = "the body") -> list[Any]:
    """The list under ``key`` in ``{key: [...]}``, or ``[data]`` for one object when ``single_ok``,
    or ``data`` itself for a list when ``list_ok``; ``what`` names the whole in errors."""
    if isinstance(data, dict) and key in data:
        extra = sorted(set(data) - {key})
        if extra:
            raise InvalidInputError(f"unknown field(s) next to {key!r}: {', '.join(extra)}", field=extra[0])
        rows = data[key]
        if not isinstance(rows, list):
            raise InvalidInputError(f"{key} must be a list", field=key)
    elif isinstance(data, dict) and single_ok:
        rows = [data]
    elif isinstance(data, list) and list_ok:
        rows = data
        if not rows:
            raise InvalidInputError(f"{what} holds no {key}", field="body")
    else:
        expected = f"an object or {{{key!r}: [...]}}" if single_ok else f"{{{key!r}: [...]}}"
        raise InvalidInputError(f"{what} must be {expected}{' or a list' if list_ok else ''}", field="body")
    if not rows:
        raise InvalidInputError(f"{key} is empty", field=key)
    if len(rows) > limit:
        raise InvalidInputError(f"a batch of {len(rows)} {key} is too large; at most {limit} are accepted",
                                field=key, value=len(rows))
    _check_depth(rows, key, located=not (isinstance(data, dict) and key not in data))
    return rows


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _check_depth(rows: Sequence[Any], key: str, *, located: bool) -> None:
    """Refuse a field nested deeper than :data:`MAX_JSON_DEPTH`, naming it (``items[0].attributes``),
    before anything walks it recursively: a validator's message, pydantic, ``json.dumps`` (a 500).
    A row of scalars, every event, costs one pass over its values (~0.35 µs)."""
    only_scalars = _SCALARS.issuperset
    for n, row in enumerate(rows):
        where = f"{key}[{n}]" if located else ""
        if type(row) is not dict:
            check_json_depth(row, where or "body", MAX_JSON_DEPTH + 1)
        elif not only_scalars(map(type, row.values())):
            for name, value in row.items():
                check_json_depth(value, f"{where}.{name}" if where else name)


def string_ids(rows: Sequence[Any], key: str, fields: Sequence[str], *, located: bool = True) -> None:
    """Refuse ids that are not JSON strings, as the schema says. The engine would read ``42`` as
    ``"42"``, but then a pseudonymised ``user_id`` (keyed on the text) would be stored as given."""
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        for name in fields:
            value = row.get(name)
            if value is not None and not isinstance(value, str):
                where = f"{key}[{n}]." if located else ""
                raise InvalidInputError(f"{where}{name} must be a string, got {value!r}", field=where + name,
                                        value=value)

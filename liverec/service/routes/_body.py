"""Bulk JSON bodies: declared in the OpenAPI schema, parsed with orjson and the engine's validators.

FastAPI would validate a 10,000-event body with pydantic and then the engine would validate it
again; parsing here once keeps one set of rules and half the work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from liverec.core.errors import InvalidInputError
from liverec.core.types import MAX_JSON_DEPTH, check_json_depth

T = TypeVar("T")
REF = "#/components/schemas/{model}"


def json_body(*models: type[BaseModel], description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is one of ``models`` (schemas added by the app)."""
    refs = [{"$ref": REF.format(model=m.__name__)} for m in models]
    schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema}}}}


def load_json(body: bytes) -> Any:
    if not body:
        raise InvalidInputError("the request body is empty; expected JSON", field="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson stops at 1024 levels, before anything could name a field
            raise InvalidInputError(f"the request body nests objects and lists deeper than orjson's 1024 levels; "
                                    f"a field may hold at most {MAX_JSON_DEPTH}", field="body") from exc
        raise InvalidInputError(f"the request body is not valid JSON: {exc}", field="body") from exc


def batch(data: Any, key: str, *, single_ok: bool, limit: int) -> list[Any]:
    """The list under ``key`` in ``{key: [...]}``, or ``[data]`` for one object when ``single_ok``."""
    if isinstance(data, dict) and key in data:
        extra = sorted(set(data) - {key})
        if extra:
            raise InvalidInputError(f"unknown field(s) next to {key!r}: {', '.join(extra)}", field=extra[0])
        rows = data[key]
        if not isinstance(rows, list):
            raise InvalidInputError(f"{key} must be a list", field=key)
    elif isinstance(data, dict) and single_ok:
        rows = [data]
    else:
        expected = f"an object or {{{key!r}: [...]}}" if single_ok else f"{{{key!r}: [...]}}"
        raise InvalidInputError(f"the body must be {expected}", field="body")
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


def validated(
    rows: Sequence[Any], key: str, validate: Callable[[Sequence[Any]], list[T]], *, located: bool = True
) -> list[T]:
    """``validate(rows)``, with an error located at its row (``events[3].type``) when ``located``."""
    try:
        return validate(rows)
    except InvalidInputError as exc:
        if not located:
            raise
        for n, row in enumerate(rows):  # only on the error path: find which row it was
            try:
                validate([row])
            except InvalidInputError as inner:
                where = f"{key}[{n}]"
                raise InvalidInputError(f"{where}: {inner}", field=f"{where}.{inner.field}" if inner.field else where,
                                        value=inner.value) from inner
        raise exc

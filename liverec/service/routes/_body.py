"""Bulk JSON bodies: declared in the OpenAPI schema, parsed with orjson and the engine's validators.

FastAPI would validate a 10,000-event body with pydantic and then the engine would validate it
again; parsing here once keeps one set of rules and half the work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from liverec.core.errors import InvalidInputError

T = TypeVar("T")
REF = "#/components/schemas/{model}"


def json_body(*models: type[BaseModel], description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is one of ``models`` (schemas added by the app)."""
    refs = [{"$ref": REF.format(model=m.__name__)} for m in models]
    schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema}}}}


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

"""The ingest formats as standalone JSON Schemas (draft 2020-12): one for an item, one for an event.

Built from the request models the OpenAPI schema shows (:mod:`liverec.service.schemas`), so
``liverec ingest --schema``, ``GET /schemas/{kind}`` and ``/openapi.json`` give one description
of the rules ``Item.from_dict`` and ``Event.from_dict`` apply. A row of a JSON Lines file, a CSV
row once its cells are read (:mod:`liverec.datasets.files`), a mapping given to the library and
a row of an API batch are the same record; docs/ingest.md is the reference in prose.

>>> schema = ingest_schema("events")
>>> schema["$schema"], schema["required"]
('https://json-schema.org/draft/2020-12/schema', ['user_id', 'type'])
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from liverec.core.errors import InvalidInputError
from liverec.service.schemas import EventIn, ItemIn

DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: The kinds of record, as ``liverec ingest --kind`` names them, and what each row is.
KINDS: dict[str, tuple[type[BaseModel], str]] = {
    "items": (ItemIn, "liverec item: one row of an items file (JSON Lines or CSV) or of PUT /items"),
    "events": (EventIn, "liverec event: one row of an events file (JSON Lines or CSV), or of POST /events"),
}


def ingest_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one ``kind`` record (``items`` or ``events``); a new dict each call."""
    entry = KINDS.get(kind) if isinstance(kind, str) else None
    if entry is None:
        raise InvalidInputError(f"schema {kind!r} is not one of {', '.join(KINDS)}", field="kind", value=kind)
    model, title = entry
    schema = model.model_json_schema(mode="validation")
    return {"$schema": DIALECT, **schema, "title": title}

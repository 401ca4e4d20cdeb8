"""GET /search: semantic, cross-lingual search, personalised when a user is named."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from liverec.core.types import MAX_ID_LENGTH, MAX_TITLE_LENGTH
from liverec.service.deps import ReadKey, ServicesDep
from liverec.service.errors import ERROR_RESPONSES, ServiceError
from liverec.service.params import KQuery
from liverec.service.routes._out import items_out, json_response
from liverec.service.schemas import NOT_BLANK, ItemsOut

router = APIRouter(tags=["search"])


@router.get("/search", response_model=ItemsOut, responses=ERROR_RESPONSES,
            summary="Search item texts in any language; with user_id the query also moves their interests")
async def search(
    request: Request,
    services: ServicesDep,
    key: ReadKey,
    q: Annotated[str, Query(min_length=1, max_length=MAX_TITLE_LENGTH, pattern=NOT_BLANK)],
    user_id: Annotated[str | None, Query(min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK)] = None,
    k: KQuery = 10,
) -> Any:
    if user_id is not None and key is not None and not key.allows("ingest"):
        # Searching as a user records their search event: that is sending an event.
        raise ServiceError(403, f"key {key.key_id!r} lacks the 'ingest' scope a search as a user needs "
                           "(it records the search); leave out user_id to only search", field="authorization")
    uid = services.user_id(user_id) if user_id is not None else None
    engine = services.engine
    found = await services.offload(request.scope, partial(engine.search, q, k, user_id=uid))
    return json_response({"items": items_out(engine, found)})

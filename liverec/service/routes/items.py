"""Items: bulk upsert, delete, and items like one item."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from liverec.core.bodies import batch, load_json, string_ids
from liverec.core.errors import NotFoundError
from liverec.core.types import MAX_ID_LENGTH, Item
from liverec.service.deps import IngestKey, ReadKey, Services, ServicesDep
from liverec.service.errors import ERROR_RESPONSES, NOT_FOUND
from liverec.service.params import KQuery
from liverec.service.privacy import naming_raw
from liverec.service.routes._body import json_body, validated
from liverec.service.routes._out import items_out, json_response
from liverec.service.schemas import NOT_BLANK, DeleteItemAnswer, ItemBatch, ItemDetail, ItemsOut, UpsertAnswer

router = APIRouter(tags=["items"])
ItemId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]


def _upsert(body: bytes, services: Services) -> int:
    rows = batch(load_json(body), "items", single_ok=False, limit=services.settings.max_batch)
    string_ids(rows, "items", ("item_id",))
    items = validated(rows, "items", lambda rows: [Item.from_dict(r) for r in rows])
    return services.engine.ingest_items(items)


@router.put(
    "/items",
    response_model=UpsertAnswer,
    responses=ERROR_RESPONSES,
    openapi_extra=json_body(ItemBatch, description='{"items": [...]} (≤ max_batch); each is live at once'),
    summary="Create or replace items (encoded and searchable when this answers)",
)
async def put_items(request: Request, services: ServicesDep, key: IngestKey) -> Any:
    body = await request.body()
    count = await run_in_threadpool(_upsert, body, services)
    services.metrics.items_upserted.inc(count)
    return {"upserted": count}


@router.delete("/items/{item_id}", response_model=DeleteItemAnswer, responses=ERROR_RESPONSES | NOT_FOUND,
               summary="Remove an item from the catalog and from every list")
def delete_item(item_id: ItemId, services: ServicesDep, key: IngestKey) -> Any:
    if item_id not in services.engine.items:
        raise NotFoundError(f"item {item_id!r} is not in the catalog", kind="item", key=item_id)
    return {"item_id": item_id, "deleted": services.engine.delete_item(item_id)}


@router.get("/items/{item_id}", response_model=ItemDetail, responses=ERROR_RESPONSES | NOT_FOUND,
            summary="An item; with for_user, whether and why it is or is not in that user's list now")
async def get_item(
    request: Request,
    item_id: ItemId,
    services: ServicesDep,
    key: ReadKey,
    for_user: Annotated[str | None, Query(min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK,
                                          description="a user id: judge the item against their list")] = None,
    k: KQuery = 10,
) -> Any:
    engine = services.engine
    item = engine.items.find(item_id)
    if item is None:
        raise NotFoundError(f"item {item_id!r} is not in the catalog", kind="item", key=item_id)
    body = item.to_dict()
    if for_user is not None:
        uid = services.user_id(for_user)
        variant = services.experiment.assign(uid)  # judged as this user's list is ranked
        judge = partial(engine.explain, uid, item_id, k, diversity=variant.diversity,
                        scorer=services.experiment.scorer(variant))
        with naming_raw(for_user, uid):
            body["for_user"] = (await services.offload(request.scope, judge)).to_dict()
            body["copy_for_user"] = services.narrator.copy(uid, item_id).to_dict()
    return json_response(body)


@router.get("/items/{item_id}/similar", response_model=ItemsOut, responses=ERROR_RESPONSES | NOT_FOUND,
            summary="Items like this one: text neighbours fused with co-views")
async def similar(
    request: Request, item_id: ItemId, services: ServicesDep, key: ReadKey, k: KQuery = 10
) -> Any:
    engine = services.engine
    found = await services.offload(request.scope, partial(engine.similar_items, item_id, k))
    return json_response({"items": items_out(engine, found)})

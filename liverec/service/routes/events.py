"""POST /events: one event or a batch, acknowledged after its group's durable commit."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from liverec.core.types import Event
from liverec.service.deps import IngestKey, Services, ServicesDep
from liverec.service.errors import ERROR_RESPONSES, ServiceError
from liverec.service.ingest import Overloaded
from liverec.service.routes._body import batch, json_body, load_json, string_ids, validated
from liverec.service.schemas import EventBatch, EventIn, IngestAnswer

router = APIRouter(tags=["events"])
INLINE_BODY_BYTES = 4096  # about 25 events


def _parse(body: bytes, services: Services) -> list[Event]:
    data = load_json(body)
    rows = batch(data, "events", single_ok=True, limit=services.settings.max_batch)
    single = isinstance(data, dict) and "events" not in data
    string_ids(rows, "events", ("event_id", "user_id", "item_id", "session_id"), located=not single)
    if services.pseudonyms.enabled:
        rows = [
            {**row, "user_id": services.user_id(row["user_id"])}
            if isinstance(row, dict) and isinstance(row.get("user_id"), str) and row["user_id"].strip() else row
            for row in rows
        ]
    return validated(rows, "events", services.engine.validate_events, located=not single)


@router.post(
    "/events",
    response_model=IngestAnswer,
    responses=ERROR_RESPONSES,
    openapi_extra=json_body(EventIn, EventBatch, description="one event, or {\"events\": [...]} (≤ max_batch)"),
    summary="Ingest events (idempotent by event_id; answered after the durable commit)",
)
async def post_events(request: Request, services: ServicesDep, key: IngestKey) -> Any:
    """Store and apply events. The answer is the same for a batch and its retries; the
    ``Liverec-Duplicates`` header says how many were already stored. Once this answers, the
    next recommendations for these users reflect the events."""
    body = await request.body()
    # A few events parse in less time than the hop to a worker thread costs (measured in
    # benchmarks/serve_load.py); a large batch (tens of ms) must not hold up the event loop.
    if len(body) <= INLINE_BODY_BYTES:
        events = _parse(body, services)
    else:
        events = await run_in_threadpool(_parse, body, services)
    services.metrics.events_received.inc(len(events))
    try:
        future = services.committer.submit(events)
    except Overloaded as exc:
        services.metrics.overloaded.labels("commit_queue").inc()
        raise ServiceError(503, f"ingest is overloaded ({exc}); retry shortly", headers={"Retry-After": "1"}) from exc
    try:
        # shield: a timed-out request must not cancel a commit that other requests share.
        result = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                        services.settings.commit_timeout)
    except TimeoutError as exc:
        raise ServiceError(503, "the commit did not finish in time; retrying the same events is safe",
                           headers={"Retry-After": "1"}) from exc
    answer = {"received": len(events), "acknowledged": len(events), "event_ids": [e.event_id for e in events]}
    return Response(orjson.dumps(answer), media_type="application/json",
                    headers={"Liverec-Duplicates": str(result.duplicates)})

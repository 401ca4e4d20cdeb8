"""POST /events: one event or a batch, acknowledged after its group's durable commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from liverec.core.bodies import batch, load_json, string_ids
from liverec.core.types import Event
from liverec.service.deps import IngestKey, Services, ServicesDep
from liverec.service.errors import CONFLICT, ERROR_RESPONSES, ServiceError
from liverec.service.ingest import Overloaded
from liverec.service.routes._body import json_body, validated
from liverec.service.schemas import EventBatch, EventIn, IngestAnswer

router = APIRouter(tags=["events"])
INLINE_BODY_BYTES = 4096  # about 25 events


def _parse(body: bytes, services: Services) -> tuple[list[Event], frozenset[str]]:
    """The body's events, validated, and the ids of those stamped on arrival (sent without a time)."""
    data = load_json(body)
    rows = batch(data, "events", single_ok=True, limit=services.settings.max_batch)
    single = isinstance(data, dict) and "events" not in data
    string_ids(rows, "events", ("event_id", "user_id", "item_id", "session_id"), located=not single)

    def validate(rows: Sequence[Any]) -> list[Event]:
        # Pseudonymised inside the validation, so a raw id the pseudonymizer refuses (too long,
        # blank) is located at its row like any other bad field.
        if services.pseudonyms.enabled:
            rows = [_pseudonymised(row, services) for row in rows]
        return services.engine.validate_events(rows)

    events = validated(rows, "events", validate, located=not single)
    stamped = frozenset(e.event_id for row, e in zip(rows, events, strict=True) if row.get("timestamp") is None)
    return events, stamped


def _pseudonymised(row: Any, services: Services) -> Any:
    if isinstance(row, dict) and isinstance(row.get("user_id"), str):
        return {**row, "user_id": services.user_id(row["user_id"])}
    return row


@router.post(
    "/events",
    response_model=IngestAnswer,
    responses=ERROR_RESPONSES | CONFLICT,
    openapi_extra=json_body(EventIn, EventBatch, description="one event, or {\"events\": [...]} (≤ max_batch)"),
    summary="Ingest events (idempotent by event_id; answered after the durable commit)",
)
async def post_events(request: Request, services: ServicesDep, key: IngestKey) -> Any:
    """Store and apply events. A retry acknowledges the same event ids; ``stored`` counts the
    events new to the log and ``duplicates`` (also the ``Liverec-Duplicates`` header) the rest:
    already stored, or repeated within the batch. An event id re-sent with other content is 409
    naming it. Once this answers, the next recommendations for these users reflect the events."""
    body = await request.body()
    # A few events parse in less time than the hop to a worker thread costs (measured in
    # benchmarks/serve_load.py); a large batch (tens of ms) must not hold up the event loop.
    if len(body) <= INLINE_BODY_BYTES:
        events, stamped = _parse(body, services)
    else:
        events, stamped = await run_in_threadpool(_parse, body, services)
    services.metrics.events_received.inc(len(events))
    try:
        future = services.committer.submit(events, stamped)
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
    event_ids = list(dict.fromkeys(e.event_id for e in events))  # a repeat within the batch is one event
    answer = {"received": len(events), "acknowledged": len(event_ids), "stored": result.stored,
              "duplicates": result.duplicates, "event_ids": event_ids}
    return Response(orjson.dumps(answer), media_type="application/json",
                    headers={"Liverec-Duplicates": str(result.duplicates)})

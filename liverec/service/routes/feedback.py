"""POST /feedback: impressions and clicks on a served list, counted per A/B variant.

Reported impressions also reach the user's live state as ``impression`` events (weight 0: they
move no interest): the ranker reads how often an item was shown without an action, and an item
shown three times without a click drops in that user's next list. Their event ids derive from
the request and the item, so a retried report stores nothing twice (and completes one whose
events were refused as overloaded).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from liverec.core.types import Event, EventType
from liverec.service.deps import IngestKey, ServicesDep
from liverec.service.errors import ERROR_RESPONSES, NOT_FOUND, ServiceError
from liverec.service.ingest import Overloaded
from liverec.service.schemas import FeedbackIn, FeedbackOut

router = APIRouter(tags=["feedback"])


@router.post("/feedback", response_model=FeedbackOut, responses=ERROR_RESPONSES | NOT_FOUND,
             summary="Report impressions or clicks on a recommendation list (idempotent per item)")
async def feedback(body: FeedbackIn, services: ServicesDep, key: IngestKey) -> Any:
    result = services.feedback.record(body.request_id, body.type, body.item_ids)
    items = services.engine.items
    shown = [Event.create(result.user_id, EventType.IMPRESSION, item_id, event_id=f"imp:{body.request_id}:{item_id}")
             for item_id in (result.items if body.type == "impression" else ())
             if items.find(item_id) is not None]  # an item since deleted: skipped
    if shown:
        try:
            # Stamped now, so a retried report's events differ from the stored ones only in time.
            future = services.committer.submit(shown, stamped=[e.event_id for e in shown])
        except Overloaded as exc:
            services.metrics.overloaded.labels("commit_queue").inc()
            raise ServiceError(503, f"ingest is overloaded ({exc}); retry the same report",
                               headers={"Retry-After": "1"}) from exc
        await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), services.settings.commit_timeout)
    return {"request_id": body.request_id, "variant": result.variant,
            "impressions_counted": result.impressions, "clicks_counted": result.clicks}

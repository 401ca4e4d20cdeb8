"""POST /feedback: impressions and clicks on a served list, counted per A/B variant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from liverec.service.deps import IngestKey, ServicesDep
from liverec.service.errors import ERROR_RESPONSES, NOT_FOUND
from liverec.service.schemas import FeedbackIn, FeedbackOut

router = APIRouter(tags=["feedback"])


@router.post("/feedback", response_model=FeedbackOut, responses=ERROR_RESPONSES | NOT_FOUND,
             summary="Report impressions or clicks on a recommendation list (idempotent per item)")
def feedback(body: FeedbackIn, services: ServicesDep, key: IngestKey) -> Any:
    result = services.feedback.record(body.request_id, body.type, body.item_ids)
    return {"request_id": body.request_id, "variant": result.variant,
            "impressions_counted": result.impressions, "clicks_counted": result.clicks}

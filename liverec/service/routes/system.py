"""Health and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from liverec.service.deps import ReadKey, ServicesDep
from liverec.service.errors import ERROR_RESPONSES
from liverec.service.schemas import Health, Stats

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=Health, summary="Liveness and what is loaded (no key needed)")
def healthz(services: ServicesDep) -> Any:
    engine = services.engine
    snapshot = engine.snapshot
    return {"status": "ok", "model_version": snapshot.version if snapshot is not None else None,
            "items": len(engine.items), "live_users": len(engine.states),
            "warm": services.warmed.is_set(),
            "uptime_seconds": round(time.time() - services.started, 3)}


@router.get("/metrics", response_class=Response, responses=ERROR_RESPONSES | {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics")
def metrics(services: ServicesDep, key: ReadKey) -> Response:
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/stats", response_model=Stats, responses=ERROR_RESPONSES,
            summary="The last hour in windows (events/s, requests, errors, 503s, latency percentiles) and sizes")
def stats(services: ServicesDep, key: ReadKey, since: float = 0.0) -> Any:
    timeline = services.metrics.timeline
    return {"interval": timeline.interval, "windows": timeline.windows(since), **services.sizes()}

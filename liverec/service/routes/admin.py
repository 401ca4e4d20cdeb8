"""Admin: background retraining and the A/B experiment's figures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from liverec.core.errors import NotFoundError
from liverec.experiments import variant_stats
from liverec.service.deps import AdminKey, ServicesDep
from liverec.service.errors import ERROR_RESPONSES, NOT_FOUND, ErrorBody
from liverec.service.schemas import TrainJob

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/train", response_model=TrainJob, status_code=202,
             responses=ERROR_RESPONSES | {409: {"model": ErrorBody, "description": "a run is in progress"}},
             summary="Retrain in the background; the new snapshot is swapped in atomically")
def train(services: ServicesDep, key: AdminKey) -> Any:
    return services.trainer.start("api").to_dict()


@router.get("/train", response_model=TrainJob, responses=ERROR_RESPONSES | NOT_FOUND,
            summary="The latest training run (running, succeeded or failed)")
def last_train(services: ServicesDep, key: AdminKey) -> Any:
    job = services.trainer.last
    if job is None:
        raise NotFoundError("no training has run since the service started", kind="job")
    return job.to_dict()


@router.get("/experiments", responses=ERROR_RESPONSES,
            summary="Per-variant requests, impressions, clicks, CTR with 95% CI, and lift versus control")
def experiments(services: ServicesDep, key: AdminKey) -> dict[str, Any]:
    return {"variants": [v.to_dict() for v in services.experiment.variants],
            "results": [s.to_dict() for s in variant_stats(services.feedback.counts(),
                                                            services.experiment.control.name)]}

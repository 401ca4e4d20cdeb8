"""Admin: background retraining, the A/B experiment's figures and the cleaning quarantine."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from liverec.core.errors import ConflictError, NotFoundError
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


class Quarantined(BaseModel):
    kind: str = Field(description="user or event")
    key: str = Field(description="the user's id, or the event's")
    user_id: str
    reason: str = Field(description="the rule and the figure that broke it")
    since: float


ADMIN_REASON = "quarantined by an admin"


class QuarantineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(ADMIN_REASON, min_length=1, max_length=500)


@router.get("/quarantine", response_model=list[Quarantined], responses=ERROR_RESPONSES,
            summary="Users and events kept from learning (robotic traffic, spam reviews), oldest first")
def quarantine(services: ServicesDep, key: AdminKey, kind: Literal["user", "event"] | None = None) -> Any:
    return [q.to_dict() for q in services.engine.quarantined(kind)]


@router.post("/quarantine/users/{user_id}", response_model=Quarantined, status_code=201,
             responses=ERROR_RESPONSES | {409: {"model": ErrorBody, "description": "already quarantined"}},
             summary="Keep a user's events, past and future, from learning (stored, not deleted)")
def quarantine_user(user_id: str, services: ServicesDep, key: AdminKey, body: QuarantineRequest | None = None) -> Any:
    engine = services.engine
    if not engine.quarantine_user(user_id, body.reason if body else ADMIN_REASON):
        raise ConflictError(f"user {user_id!r} is quarantined already", field="user_id", key=user_id)
    return next(q.to_dict() for q in engine.quarantined("user") if q.key == user_id)


@router.post("/quarantine/users/{user_id}/release", response_model=Quarantined,
             responses=ERROR_RESPONSES | NOT_FOUND,
             summary="Release a user: learning sees their events again at once")
def release_user(user_id: str, services: ServicesDep, key: AdminKey) -> Any:
    return services.engine.release("user", user_id).to_dict()


@router.post("/quarantine/events/{event_id}/release", response_model=Quarantined,
             responses=ERROR_RESPONSES | NOT_FOUND,
             summary="Release an event (a review screened out): learning sees it again at once")
def release_event(event_id: str, services: ServicesDep, key: AdminKey) -> Any:
    return services.engine.release("event", event_id).to_dict()

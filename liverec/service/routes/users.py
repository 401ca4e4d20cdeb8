"""A user's recommendations and interests, and erasure."""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from starlette.types import Scope

from liverec.core.types import MAX_ID_LENGTH
from liverec.service.deps import AdminKey, ReadKey, Services, ServicesDep
from liverec.service.errors import ERROR_RESPONSES, NOT_FOUND
from liverec.service.params import MAX_CATEGORIES, MAX_EXCLUDE, DiversityQuery, KQuery, RecommendParams
from liverec.service.privacy import naming_raw
from liverec.service.routes._out import items_out, json_response
from liverec.service.schemas import NOT_BLANK, ForgetOut, InterestsOut, RecommendationsOut

router = APIRouter(tags=["users"])
GROUP_TAGS = 3  # tags shown per interest group
WRITES_FLOWING = 0.5  # seconds since the last event request during which ranking leaves the loop
UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK)]


@router.get("/users/{user_id}/recommendations", response_model=RecommendationsOut, responses=ERROR_RESPONSES,
            summary="The best items for this user now, with reasons, a request id and the A/B variant")
async def recommendations(
    request: Request,
    user_id: UserId,
    services: ServicesDep,
    key: ReadKey,
    k: KQuery = 10,
    category: Annotated[list[str] | None, Query(description="only these categories (repeatable, or comma-separated)",
                                                json_schema_extra={"maxItems": MAX_CATEGORIES})] = None,
    exclude: Annotated[list[str] | None, Query(description="item ids to leave out (repeatable, or comma-separated)",
                                               json_schema_extra={"maxItems": MAX_EXCLUDE})] = None,
    diversity: DiversityQuery = None,
    exclude_seen: bool = True,
    explain_budget_ms: Annotated[float | None, Query(
        ge=0, le=10_000, description="explain the first few items: wait at most this long for generated "
        "sentences (0: cached ones or templates; default: the service's setting)")] = None,
) -> Any:
    params = RecommendParams.from_lists(k, category, exclude, diversity, exclude_seen)
    return json_response(await recommendations_body(services, request.scope, user_id, params, explain_budget_ms))


async def recommendations_body(
    services: Services, scope: Scope, user_id: str, params: RecommendParams, explain_budget_ms: float | None = None
) -> dict[str, Any]:
    """The recommendations response for checked parameters (the route's and the fast path's one body).

    Ranking on a thread is refused with 503 when its turn comes after the request's queue
    deadline (``max_queue_ms`` after it arrived). With the language-model stage on, or a budget
    asked for, the first items carry an ``explanation`` (:meth:`Narrator.explain`): waiting for
    generated ones happens on a worker thread, never on the event loop, and never past the budget."""
    request_id: str = scope["state"]["request_id"]
    uid = services.user_id(user_id)
    variant = services.experiment.assign(uid)
    recommend = partial(services.engine.recommend, uid, params.k, params.filters(),
                        diversity=params.diversity_for(variant.diversity), scorer=services.experiment.scorer(variant))
    # Where the ranking runs (measured with benchmarks/serve_load.py on 2 cores):
    # * a user whose state must first be rebuilt from the log (after a start or a retrain) may wait
    #   on the engine's write lock: a pool thread, so the event loop never stalls;
    # * while events are flowing, one dedicated ranking thread: the loop stays free to acknowledge
    #   commits (inline, an event's answer waited behind the rankings queued before it: mixed-load
    #   p99 30 ms; with the thread 9 ms);
    # * otherwise right here on the loop: ranking holds the GIL anyway, and any hop costs (p99 at
    #   200 req/s: 6 ms inline, 195 ms through the thread).
    if not services.engine.has_live_state(uid):
        recs = await services.offload(scope, recommend)
    elif time.monotonic() - services.committer.last_submit < WRITES_FLOWING:
        recs = await services.offload(scope, recommend, services.ranking)
    else:
        recs = recommend()
    items = items_out(services.engine, recs)
    narrator = services.narrator
    if narrator.enabled or explain_budget_ms is not None:
        budget = narrator.settings.explain_budget_ms if explain_budget_ms is None else explain_budget_ms
        explain = partial(narrator.explain, uid, recs, budget)
        texts = await anyio.to_thread.run_sync(explain) if budget > 0 and narrator.enabled else explain()
        for item in items:
            if item["item_id"] in texts:
                item["explanation"] = texts[item["item_id"]].to_dict()
    services.feedback.serve_later(request_id, variant.name, uid, [i["item_id"] for i in items])
    services.metrics.recommendations.labels(variant.name).inc()
    snapshot = services.engine.snapshot
    return {"request_id": request_id, "variant": variant.name,
            "model_version": snapshot.version if snapshot is not None else None, "items": items}


@router.get("/users/{user_id}/interests", response_model=InterestsOut, responses=ERROR_RESPONSES | NOT_FOUND,
            response_model_exclude_unset=True,  # no "summary": null unless one was asked for
            summary="The user's strongest interests now, as readable tags with decayed weights")
def interests(
    user_id: UserId, services: ServicesDep, key: ReadKey, k: KQuery = 10,
    summary: Annotated[bool, Query(description="add a sentence or two on what the user is into (generated in "
                                               "the background when a model is configured, never waited for)")] = False,
) -> Any:
    uid = services.user_id(user_id)
    engine = services.engine
    with naming_raw(user_id, uid):
        tags = engine.interests(uid, k)  # first: a bad k is 422 whether or not the user exists
        state = engine.state(uid)
        groups = state.interest_groups(GROUP_TAGS, engine.settings.interest_half_life)  # the state just read
        text = services.narrator.summary(uid) if summary else None
    body = {"user_id": user_id, "interests": [{"tag": t, "weight": w} for t, w in tags],
            "groups": [{"tags": g, "share": share} for g, share in groups],
            "events": state.n_events, "last_event": state.last_ts or None}
    if text is not None:
        body["summary"] = text.to_dict()
    return body


@router.delete("/users/{user_id}", response_model=ForgetOut, responses=ERROR_RESPONSES,
               summary="Erase a user: events, live state, served lists; future training never sees them")
def forget(user_id: UserId, services: ServicesDep, key: AdminKey) -> Any:
    uid = services.user_id(user_id)
    with naming_raw(user_id, uid):
        result = services.engine.forget_user(uid)
        served = services.feedback.forget_user(uid)
        services.narrator.forget(uid)
    return {"user_id": user_id, "events_removed": result.events_removed, "state_removed": result.state_removed,
            "served_requests_removed": served}

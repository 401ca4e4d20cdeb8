"""Candidate generators. Each returns its candidates for one user, best first, as an id list and a
score array (:data:`~liverec.models.base.Ranked`: no tuple or dict per candidate on the request path).

Recalls never filter by business rules beyond the ``blocked`` set (seen, dismissed, explicit
excludes) so their budget is not spent on items that would be dropped anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from liverec.models.als import ALSRecommender
from liverec.models.base import Ranked
from liverec.models.content import ContentModel
from liverec.models.covisit import CoVisitation
from liverec.models.popularity import TrendingPopularity
from liverec.realtime.state import UserState

# How many recent positive items seed co-visitation: the last few say most about "right now".
COVISIT_SEEDS = 5


@dataclass
class RecallInput:
    """What every recall may read for one request."""

    state: UserState | None
    interest: np.ndarray | None  # unit short-term interest vector
    session: np.ndarray | None  # unit vector of the last few positive actions (see Ranker.session_vector)
    als_vector: np.ndarray | None  # folded-in ALS user factors
    blocked: Collection[str]
    n: int


@dataclass
class RecallModels:
    """The models recalls draw on: the snapshot's plus the live content index."""

    content: ContentModel
    trending: TrendingPopularity | None
    covisit: CoVisitation | None
    als: ALSRecommender | None
    # Items added after the snapshot was trained and their text vectors, as one pair: two
    # separate calls could straddle an ingest and disagree in length.
    cold: Callable[[], tuple[list[str], np.ndarray]]


NOTHING: Ranked = ([], np.zeros(0))


def text_recalls(models: RecallModels, inp: RecallInput) -> dict[str, Ranked]:
    """Content and session recall, in one pass over the text index.

    ``content``: text neighbours of the decayed short-term interest vector. ``session``: text
    neighbours of what the user did in their last few actions — the decayed interest weighs a
    long camera history against three fresh hiking clicks; this recall looks only at the last
    actions, so a new interest shows at once.
    """
    queries = {name: vec for name, vec in (("content", inp.interest), ("session", inp.session)) if vec is not None}
    if not queries:
        return {}
    hits = models.content.search_ranked(list(queries.values()), inp.n, exclude=inp.blocked)
    return dict(zip(queries, hits, strict=True))


def als_recall(models: RecallModels, inp: RecallInput) -> Ranked:
    if models.als is None or inp.als_vector is None:
        return NOTHING
    return models.als.score_ranked(inp.als_vector, inp.n, exclude=inp.blocked)


def covisit_recall(models: RecallModels, inp: RecallInput) -> Ranked:
    if models.covisit is None or inp.state is None:
        return NOTHING
    history = [(a.item_id or "", a.weight) for a in inp.state.positive_item_actions(COVISIT_SEEDS)]
    if not history:
        return NOTHING
    return models.covisit.recommend_ranked(history, inp.n, exclude=inp.blocked)


def trending_recall(models: RecallModels, inp: RecallInput) -> Ranked:
    if models.trending is None:
        return NOTHING
    return models.trending.recommend_ranked(inp.n, exclude=inp.blocked)


def fresh_recall(models: RecallModels, inp: RecallInput) -> Ranked:
    """Items added since the last training, ranked by text similarity to the user's interest.

    They have no collaborative signal at all, so without this recall a new item could only
    surface through the content recall's crowded top-n.
    """
    if inp.interest is None:
        return NOTHING
    cold, vectors = models.cold()
    if not cold:
        return NOTHING
    scores = vectors @ inp.interest
    top = np.argsort(-scores)[: inp.n + len(inp.blocked)]
    keep = [i for i in top.tolist() if scores[i] > 0 and cold[i] not in inp.blocked][: inp.n]
    return [cold[i] for i in keep], scores[keep].astype(np.float64)


OTHER_RECALLS: dict[str, Callable[[RecallModels, RecallInput], Ranked]] = {
    "als": als_recall,
    "covisit": covisit_recall,
    "trending": trending_recall,
    "fresh": fresh_recall,
}
RECALLS = ("content", "session", *OTHER_RECALLS)


def run_recalls(models: RecallModels, inp: RecallInput) -> dict[str, Ranked]:
    """Every recall's candidates for one request, by recall name (in ``RECALLS`` order)."""
    found = text_recalls(models, inp)
    out = {name: found.get(name, NOTHING) for name in ("content", "session")}
    out.update((name, fn(models, inp)) for name, fn in OTHER_RECALLS.items())
    return out

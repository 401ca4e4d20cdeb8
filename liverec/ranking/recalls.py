"""Candidate generators. Each returns ``{item_id: score}`` for one user, best first.

Recalls never filter by business rules beyond the ``blocked`` set (seen, dismissed, explicit
excludes) so their budget is not spent on items that would be dropped anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from liverec.models.als import ALSRecommender
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


def text_recalls(models: RecallModels, inp: RecallInput) -> dict[str, dict[str, float]]:
    """Content and session recall, in one pass over the text index.

    ``content``: text neighbours of the decayed short-term interest vector. ``session``: text
    neighbours of what the user did in their last few actions — the decayed interest weighs a
    long camera history against three fresh hiking clicks; this recall looks only at the last
    actions, so a new interest shows at once.
    """
    queries = {name: vec for name, vec in (("content", inp.interest), ("session", inp.session)) if vec is not None}
    if not queries:
        return {}
    hits = models.content.search_many(list(queries.values()), inp.n, exclude=inp.blocked)
    return {name: dict(found) for name, found in zip(queries, hits, strict=True)}


def als_recall(models: RecallModels, inp: RecallInput) -> dict[str, float]:
    if models.als is None or inp.als_vector is None:
        return {}
    return dict(models.als.score(inp.als_vector, inp.n, exclude=inp.blocked))


def covisit_recall(models: RecallModels, inp: RecallInput) -> dict[str, float]:
    if models.covisit is None or inp.state is None:
        return {}
    history = [(a.item_id or "", a.weight) for a in inp.state.positive_item_actions(COVISIT_SEEDS)]
    if not history:
        return {}
    return dict(models.covisit.recommend(history, inp.n, exclude=inp.blocked))


def trending_recall(models: RecallModels, inp: RecallInput) -> dict[str, float]:
    if models.trending is None:
        return {}
    return dict(models.trending.recommend([], inp.n, exclude=inp.blocked))


def fresh_recall(models: RecallModels, inp: RecallInput) -> dict[str, float]:
    """Items added since the last training, ranked by text similarity to the user's interest.

    They have no collaborative signal at all, so without this recall a new item could only
    surface through the content recall's crowded top-n.
    """
    if inp.interest is None:
        return {}
    cold, vectors = models.cold()
    if not cold:
        return {}
    scores = vectors @ inp.interest
    top = np.argsort(-scores)[: inp.n + len(inp.blocked)]
    found = {cold[i]: float(scores[i]) for i in top if scores[i] > 0 and cold[i] not in inp.blocked}
    return dict(list(found.items())[: inp.n])


OTHER_RECALLS: dict[str, Callable[[RecallModels, RecallInput], dict[str, float]]] = {
    "als": als_recall,
    "covisit": covisit_recall,
    "trending": trending_recall,
    "fresh": fresh_recall,
}
RECALLS = ("content", "session", *OTHER_RECALLS)


def run_recalls(models: RecallModels, inp: RecallInput) -> dict[str, dict[str, float]]:
    """Every recall's candidates for one request, by recall name (in ``RECALLS`` order)."""
    found = text_recalls(models, inp)
    out = {name: found.get(name, {}) for name in ("content", "session")}
    out.update((name, fn(models, inp)) for name, fn in OTHER_RECALLS.items())
    return out

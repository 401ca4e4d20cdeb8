"""Item-to-item and query-to-item rankings: similar items and semantic search.

Both read the live catalog's text index, so a new item is findable the moment it is ingested;
similar items also fuse in what people viewed alongside the item (co-visitation) when a trained
snapshot has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from liverec.core.types import Reason, Recommendation
from liverec.ranking.reasons import shorten
from liverec.realtime.catalog import LiveCatalog
from liverec.realtime.state import UserState, unit

__all__ = ["INTEREST_NUDGE", "search", "similar_items"]

INTEREST_NUDGE = 0.1  # the query decides; a user's interest only breaks near-ties in search


def similar_items(
    catalog: LiveCatalog, models: Mapping[str, Any], item_id: str, k: int, min_similarity: float
) -> list[Recommendation]:
    """Items like ``item_id``: its text neighbours, fused with what people viewed alongside it.

    A text neighbour below ``min_similarity`` (a cosine; see ``Settings.similar_min_similarity``)
    is not "described like" the item: a small catalog's nearest laptop to trekking poles is no
    answer, so the list is shorter instead.
    """
    item = catalog.get(item_id)
    pool = 3 * k + 10
    scores: dict[str, dict[str, float]] = {}
    for other, s in catalog.content.similar_items(item_id, pool):
        if s >= min_similarity:
            scores.setdefault(other, {})["content"] = s
    covisit = models.get("covisit")
    if covisit is not None:
        for other, s in covisit.similar_items(item_id, pool):
            scores.setdefault(other, {})["covisit"] = s
    ranked = sorted(scores, key=lambda i: -sum(scores[i].values()))
    title = shorten(item.title)
    out = []
    for other in ranked:
        found = catalog.find(other)
        if found is None or not found.available:
            continue
        reasons = []
        if "content" in scores[other]:
            reasons.append(Reason("content", f"described like '{title}'", item_id))
        if "covisit" in scores[other]:
            reasons.append(Reason("covisit", f"people who viewed '{title}' also viewed this", item_id))
        out.append(Recommendation(other, round(sum(scores[other].values()), 6), tuple(reasons)))
        if len(out) == k:
            break
    return out


def search(catalog: LiveCatalog, query: str, k: int, state: UserState | None = None) -> list[Recommendation]:
    """Available items whose texts are nearest the query's, across languages; with a user's
    ``state`` the results are gently re-ranked toward their interest."""
    qvec = catalog.query_vector(query)
    hits = catalog.content.search(qvec, 3 * k + 10)
    ranked = [(i, s) for i, s in hits if (it := catalog.find(i)) is not None and it.available]
    interest = unit(state.short_vec) if state is not None else None
    if interest is not None:
        vecs = catalog.vectors_of([i for i, _ in ranked])
        ranked = [(i, s + INTEREST_NUDGE * float(v @ interest)) for (i, s), v in zip(ranked, vecs, strict=True)]
        ranked.sort(key=lambda x: -x[1])
    reason = Reason("search", f"matches '{shorten(query)}'", query)
    return [Recommendation(i, round(s, 6), (reason,)) for i, s in ranked[:k]]



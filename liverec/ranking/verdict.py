"""Why an item is, or is not, in a user's list: the question a merchandiser or a curious user asks
on an item's page ("why don't I see this?").

The answer replays the request path for the user now: the list itself, then every candidate the
recalls found with its score. A listed item gets the list's own reasons; one that is not gets what
kept it out, in the order the path applies them: not available, turned down, already seen, left
out by the request's filters, found by no recall (with how close its text is to the user's
interests), pushed down by negative feedback, or outranked (its rank among the candidates and the
score the list ends at). Costs about two recommendations; meant for pages, not for every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from liverec.core.types import EventType, Reason
from liverec.models.base import Ranked
from liverec.ranking.features import build_features
from liverec.ranking.filters import Filters
from liverec.ranking.ranker import RECALL_SIZE, Ranker
from liverec.ranking.recalls import NOTHING, recall_names
from liverec.ranking.scoring import Scorer
from liverec.realtime.state import UserState, unit

__all__ = ["Verdict", "verdict"]

# Below this, a push-down is worth naming (a factor of 0.9 moves an item a place or two at most).
NOTABLE_FACTOR = 0.9
_DONE = {EventType.VIEW: "viewed", EventType.CLICK: "opened", EventType.ADD_TO_CART: "put in your cart",
         EventType.PURCHASE: "bought", EventType.RATE: "rated", EventType.REVIEW: "reviewed"}


@dataclass(frozen=True)
class Verdict:
    """``position`` is the item's 1-based place in the list of ``k`` (None when not listed);
    ``rank`` its place among the ``candidates`` the recalls found (None when none found it);
    ``reasons`` what speaks for it, as the list words it; ``against`` what kept it out."""

    item_id: str
    k: int
    recommended: bool
    position: int | None
    rank: int | None
    candidates: int
    score: float | None
    reasons: tuple[Reason, ...]
    against: tuple[Reason, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "k": self.k, "recommended": self.recommended, "position": self.position,
                "rank": self.rank, "candidates": self.candidates, "score": self.score,
                "reasons": [r.to_dict() for r in self.reasons], "against": [r.to_dict() for r in self.against]}


def verdict(ranker: Ranker, state: UserState | None, item_id: str, k: int, filters: Filters, diversity: float,
            now: float, scorer: Scorer | None = None) -> Verdict:
    """The :class:`Verdict` on ``item_id`` for the user whose live state is ``state`` (None: a new visitor)."""
    scorer = scorer or ranker.scorer
    listed = ranker.recommend(state, k, filters, diversity, now, scorer)
    interest = unit(state.short_vec) if state is not None else None
    ctx, raw = ranker._recall(state, filters.blocked(state), RECALL_SIZE, interest, ranker.session_vector(state))
    features = build_features(raw, ctx, now, recall_names())
    candidates = features.item_ids
    row = next((r for r, i in enumerate(candidates) if i == item_id), None)
    rank = score = None
    reasons: tuple[Reason, ...] = ()
    if row is not None:
        totals = scorer.score(features)
        score = float(totals[row])
        rank = int((totals > score).sum()) + 1
        contributions = scorer.contributions(features, [row])[0]
        reasons = ranker.explainer.explain([item_id], {item_id: contributions}, state, now)[0]
    position = next((n for n, rec in enumerate(listed) if rec.item_id == item_id), None)
    if position is not None:
        rec = listed[position]
        return Verdict(item_id, k, True, position + 1, rank, len(candidates), rec.score, rec.reasons, ())
    against = _kept_out(ranker, state, item_id, filters)
    if not against and row is None:
        against = _not_found(ranker, state, item_id, interest, raw)
    elif not against:
        against = _pushed_down(ranker, state, item_id, score or 0.0)
        last = listed[-1].score if listed else 0.0
        if (rank or 0) <= k and not against:
            against = (Reason("diversity", f"it scored among the top {k}, but places kept for variety, new items "
                                           "or the current session went to others"),)
        else:
            against += (Reason("outranked", f"ranked #{rank} of {len(candidates)} candidates, scoring {score:.3f}; "
                                            f"the list of {k} ends at {last:.3f}"),)
    return Verdict(item_id, k, False, None, rank, len(candidates), score, reasons, against)


def _kept_out(ranker: Ranker, state: UserState | None, item_id: str, filters: Filters) -> tuple[Reason, ...]:
    """What removes the item before any ranking: availability, the user's own actions, the filters."""
    item = ranker.items.find(item_id)
    if item is None or not item.available:
        return (Reason("unavailable", "it is not available now"),)
    if state is not None and item_id in state.dismissed:
        return (Reason("dismissed", "you said you are not interested in it", item_id),)
    if item_id in filters.exclude_items:
        return (Reason("excluded", "this request excluded it"),)
    if state is not None and filters.exclude_seen and item_id in state.seen:
        last = next((a for a in reversed(state.recent) if a.item_id == item_id), None)
        done = _DONE.get(last.type, "acted on") if last is not None else "acted on"
        return (Reason("seen", f"you already {done} it; lists leave out what you have seen", item_id),)
    if not filters.allows(item_id, ranker.items, ()):
        return (Reason("filtered", "this request's category filters leave it out"),)
    return ()


def _not_found(ranker: Ranker, state: UserState | None, item_id: str, interest: np.ndarray | None,
               raw: Mapping[str, Ranked]) -> tuple[Reason, ...]:
    """Why no recall found the item: for a known user, how close its text is to their interests."""
    if interest is None:
        return (Reason("not_retrieved", "with no history yet, the list is what is popular now, and it is not "
                                        "among the most popular"),)
    closeness = float(ranker.content.vectors_of([item_id])[0] @ interest)
    content = raw.get("content", NOTHING)[1]
    cut = f"; the text recall's candidates reach down to {float(content.min()):.2f}" if len(content) else ""
    return (Reason("not_retrieved", f"none of the recalls found it for you: its text matches your interests at "
                                    f"{closeness:.2f}{cut}, and no one who did what you did went on to it"),)


def _pushed_down(ranker: Ranker, state: UserState | None, item_id: str, score: float) -> tuple[Reason, ...]:
    """The negative feedback that lowered the item's score (rejected look-alikes, ignored showings)."""
    if state is None:
        return ()
    out: list[Reason] = []
    if score <= 0:
        out.append(Reason("low_score", "nothing the scorer weighs speaks for it"))
    one = np.ones(1)
    rejected = float(ranker._push_down_rejected(state, ranker.content.vectors_of([item_id]), one)[0])
    if rejected < NOTABLE_FACTOR:
        out.append(Reason("like_rejected", f"it is like items you turned down (its score × {rejected:.2f})"))
    ignored = float(ranker._push_down_ignored(state, [item_id], one)[0])
    if ignored < NOTABLE_FACTOR:
        out.append(Reason("ignored", f"shown {state.shown.get(item_id, 0)} times without you acting on it "
                                     f"(its score × {ignored:.2f})", item_id))
    return tuple(out)

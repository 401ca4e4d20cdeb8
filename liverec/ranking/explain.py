"""Human-readable reasons that name the evidence behind each recommendation.

Template explanations are the default; a generative explainer (a local LLM) can later wrap
:class:`Explainer` and fall back to it within a latency budget — that is the seam.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import numpy as np

from liverec.core.types import EventType, Reason
from liverec.models.content import ContentModel
from liverec.models.covisit import CoVisitation
from liverec.ranking.catalog import ItemTable
from liverec.ranking.recalls import COVISIT_SEEDS
from liverec.realtime.state import RecentAction, UserState

# Only the last actions are evidence worth citing: older ones read as noise in a reason.
EVIDENCE_WINDOW = 20
# Below this cosine an action is not cited as the reason: "matches your search 'hiking boots'"
# on a laptop would be a false explanation (same-category pairs score ~0.4-0.8 with USE).
EVIDENCE_MIN_SIMILARITY = 0.3
VERBS = {
    EventType.VIEW: "viewed",
    EventType.CLICK: "clicked",
    EventType.ADD_TO_CART: "added to your cart",
    EventType.PURCHASE: "bought",
    EventType.RATE: "rated",
    EventType.REVIEW: "reviewed",
}


def ago(seconds: float, when: float) -> str:
    """'3 minutes ago', or a date for anything older than a month."""
    s = max(0.0, seconds)
    if s < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= size:
            n = int(s // size)
            if unit == "day" and n > 30:
                return "on " + datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d")
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Explainer:
    """Builds the reasons for a final list from the recalls that proposed each item."""

    def __init__(
        self,
        items: ItemTable,
        content: ContentModel,
        covisit: CoVisitation | None,
        query_vector: Callable[[str], np.ndarray],
    ) -> None:
        self.items = items
        self.content = content
        self.covisit = covisit
        self.query_vector = query_vector

    def explain(
        self,
        item_ids: list[str],
        contributions: Mapping[str, Mapping[str, float]],
        state: UserState | None,
        now: float,
        max_reasons: int = 2,
    ) -> list[tuple[Reason, ...]]:
        evidence = self._evidence(state)
        vectors = self.content.vectors_of(item_ids) if item_ids else np.zeros((0, 1), np.float32)
        user_tags = dict(state.top_tags(20)) if state is not None else {}
        covisited = self._covisited(state)
        out = []
        for row, item_id in enumerate(item_ids):
            reasons: list[Reason] = []
            for recall, _ in sorted(contributions.get(item_id, {}).items(), key=lambda kv: -kv[1]):
                reason = self._reason(recall, item_id, vectors[row], evidence, covisited, user_tags, now)
                if reason is not None and all(reason.text != r.text for r in reasons):
                    reasons.append(reason)
                if len(reasons) >= max_reasons:
                    break
            if not reasons:
                reasons.append(Reason("trending", "popular now"))
            out.append(tuple(reasons))
        return out

    def _evidence(self, state: UserState | None) -> tuple[list[RecentAction], np.ndarray | None]:
        """The user's recent positive actions and their text vectors (items and queries)."""
        if state is None:
            return [], None
        actions = [a for a in list(state.recent)[-EVIDENCE_WINDOW:] if a.weight > 0 and (a.item_id or a.text)]
        if not actions:
            return [], None
        matrix = self.content.vectors_of([a.item_id or "" for a in actions])
        for row, a in enumerate(actions):
            if a.item_id is None:
                matrix[row] = self.query_vector(a.text or "")
        known = np.linalg.norm(matrix, axis=1) > 0  # items since deleted have no vector
        return [a for a, ok in zip(actions, known, strict=True) if ok], matrix[known]

    def _covisited(self, state: UserState | None) -> dict[str, tuple[float, RecentAction]]:
        """For each item co-visited with a recent positive item: the strongest score and that action."""
        if self.covisit is None or state is None:
            return {}
        out: dict[str, tuple[float, RecentAction]] = {}
        for a in state.positive_item_actions(COVISIT_SEEDS):
            for neighbor, score in self.covisit.neighbors(a.item_id or ""):
                if score > out.get(neighbor, (0.0, a))[0]:
                    out[neighbor] = (score, a)
        return out

    def _reason(
        self,
        recall: str,
        item_id: str,
        vector: np.ndarray,
        evidence: tuple[list[RecentAction], np.ndarray | None],
        covisited: Mapping[str, tuple[float, RecentAction]],
        user_tags: Mapping[str, float],
        now: float,
    ) -> Reason | None:
        actions, matrix = evidence
        if recall in ("content", "session", "fresh") and matrix is not None:
            # The most similar action; among near-ties (same to 2 decimals) the latest, as actions
            # are in time order and the tiny index term only breaks ties.
            sims = np.round(matrix @ vector, 2)
            best = int(np.argmax(sims + 1e-6 * np.arange(len(actions))))
            prefix = "new, and " if recall == "fresh" else ""
            if sims[best] < EVIDENCE_MIN_SIMILARITY:
                return Reason(recall, f"{prefix}close to your recent interests")
            a = actions[best]
            if a.type is EventType.SEARCH:
                return Reason(recall, f"{prefix}matches your search '{shorten(a.text or '')}'", a.text)
            verb = VERBS.get(a.type, "viewed")
            title = shorten(self.items.title(a.item_id or ""))
            return Reason(recall, f"{prefix}like '{title}', which you {verb} {ago(now - a.timestamp, a.timestamp)}",
                          a.item_id)
        if recall == "covisit":
            hit = covisited.get(item_id)
            if hit is None:
                return None
            title = shorten(self.items.title(hit[1].item_id or ""))
            return Reason("covisit", f"people who viewed '{title}' also viewed this", hit[1].item_id)
        if recall == "als":
            tag = self._shared_tag(item_id, user_tags)
            if tag is not None:
                return Reason("tag", f"matches your interest '{tag}'", tag)
            return Reason("als", "liked by people with tastes like yours")
        if recall == "trending":
            return Reason("trending", "popular now")
        return None

    def _shared_tag(self, item_id: str, user_tags: Mapping[str, float]) -> str | None:
        shared = [t for t in self.items.tags(item_id) if t in user_tags]
        return max(shared, key=lambda t: user_tags[t]) if shared else None

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
        vectors: np.ndarray | None = None,
    ) -> list[tuple[Reason, ...]]:
        """Up to ``max_reasons`` reasons per item, strongest contribution first.

        ``vectors`` are the items' text vectors when the caller has them already.
        """
        actions, matrix = self._evidence(state)
        # One product for the whole list: every item's most similar recent action, computed once
        # (per reason it was ~25 small products and date formats per request; measured 1 ms → 0.2 ms).
        cited: list[RecentAction | None] = [None] * len(item_ids)
        if matrix is not None and item_ids:
            if vectors is None:
                vectors = self.content.vectors_of(item_ids)
            # Among near-ties (same to 2 decimals) the latest action: actions are in time order and
            # the tiny index term only breaks ties.
            sims = np.round(vectors @ matrix.T, 2) + 1e-6 * np.arange(len(actions))
            best = np.argmax(sims, axis=1)
            cited = [actions[b] if sims[row, b] >= EVIDENCE_MIN_SIMILARITY else None
                     for row, b in enumerate(best.tolist())]
        needs_covisit = [i for i in item_ids if "covisit" in contributions.get(i, {})]
        covisited = dict(zip(needs_covisit, self.covisit_evidence(state, needs_covisit), strict=True))
        context = _Context(self, state, now)
        out = []
        for row, item_id in enumerate(item_ids):
            reasons: list[Reason] = []
            for recall, _ in sorted(contributions.get(item_id, {}).items(), key=lambda kv: -kv[1]):
                action = covisited.get(item_id) if recall == "covisit" else cited[row]
                reason = context.reason(recall, item_id, action, matrix is not None)
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
        if not known.any():
            return [], None
        return [a for a, ok in zip(actions, known, strict=True) if ok], matrix[known]

    def covisit_evidence(self, state: UserState | None, item_ids: list[str]) -> list[RecentAction | None]:
        """Per item: the recent positive item it was most often viewed with (the oldest among equals)."""
        if self.covisit is None or state is None:
            return [None] * len(item_ids)
        seeds = state.positive_item_actions(COVISIT_SEEDS)
        if not seeds:
            return [None] * len(item_ids)
        scores = self.covisit.pair_scores([a.item_id or "" for a in seeds], item_ids)
        best = np.argmax(scores, axis=0)
        return [seeds[b] if scores[b, col] > 0 else None for col, b in enumerate(best.tolist())]

    def _shared_tag(self, item_id: str, user_tags: Mapping[str, float]) -> str | None:
        shared = [t for t in self.items.tags(item_id) if t in user_tags]
        return max(shared, key=lambda t: user_tags[t]) if shared else None


class _Context:
    """What one request's reasons draw on, each part computed at most once and only if cited."""

    def __init__(self, explainer: Explainer, state: UserState | None, now: float) -> None:
        self.explainer = explainer
        self.state = state
        self.now = now
        self._user_tags: dict[str, float] | None = None
        self._cites: dict[int, tuple[str, str | None]] = {}  # by id(action): (phrase, evidence)

    def reason(self, recall: str, item_id: str, action: RecentAction | None, has_evidence: bool) -> Reason | None:
        """The reason ``recall`` gives for ``item_id``; ``action`` is its evidence: for covisit the recent
        item it was viewed with, for the text recalls the recent action most like it."""
        if recall in ("content", "session", "fresh") and has_evidence:
            prefix = "new, and " if recall == "fresh" else ""
            if action is None:
                return Reason(recall, f"{prefix}close to your recent interests")
            phrase, evidence = self._cite(action)
            return Reason(recall, prefix + phrase, evidence)
        if recall == "covisit":
            if action is None:
                return None
            title = shorten(self.explainer.items.title(action.item_id or ""))
            return Reason("covisit", f"people who viewed '{title}' also viewed this", action.item_id)
        if recall == "als":
            if self._user_tags is None:
                self._user_tags = dict(self.state.top_tags(20)) if self.state is not None else {}
            tag = self.explainer._shared_tag(item_id, self._user_tags)
            if tag is not None:
                return Reason("tag", f"matches your interest '{tag}'", tag)
            return Reason("als", "liked by people with tastes like yours")
        if recall == "trending":
            return Reason("trending", "popular now")
        return None

    def _cite(self, a: RecentAction) -> tuple[str, str | None]:
        cite = self._cites.get(id(a))
        if cite is None:
            if a.type is EventType.SEARCH:
                cite = (f"matches your search '{shorten(a.text or '')}'", a.text)
            else:
                verb = VERBS.get(a.type, "viewed")
                title = shorten(self.explainer.items.title(a.item_id or ""))
                cite = (f"like '{title}', which you {verb} {ago(self.now - a.timestamp, a.timestamp)}", a.item_id)
            self._cites[id(a)] = cite
        return cite

"""Human-readable reasons that name the evidence behind each recommendation.

An item's reasons come from the scorer's contributions: the sources (recalls) that put the most
into its score speak first, each in its own words (:attr:`~liverec.ranking.recalls.Recall.explain`),
citing what the user did. Template explanations are the default; a generative explainer (a local
LLM) can later wrap :class:`Explainer` and fall back to it within a latency budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from liverec.core.types import Reason
from liverec.models.content import ContentModel
from liverec.ranking.reasons import EVIDENCE_MIN_SIMILARITY, EVIDENCE_WINDOW, ReasonContext
from liverec.ranking.recalls import RECALLS
from liverec.realtime.catalog import ItemLookup
from liverec.realtime.state import RecentAction, UserState

__all__ = ["POPULAR", "REASONS", "Explainer", "register_reason"]

POPULAR = Reason("trending", "popular now")  # when no contributor has anything to say

#: How a source that is not a recall (a feature block's, e.g. ``tags``) words its reason.
REASONS: dict[str, Callable[[ReasonContext, str, int], Reason | None]] = {}


def register_reason(source: str, explain: Callable[[ReasonContext, str, int], Reason | None]) -> None:
    """Make contributions of ``source`` explainable (recalls bring their own; see ``Recall.explain``)."""
    REASONS[source] = explain


class Explainer:
    """Builds the reasons for a final list from the sources that contributed to each item."""

    def __init__(
        self,
        items: ItemLookup,
        content: ContentModel,
        models: Mapping[str, Any],
        query_vector: Callable[[str], np.ndarray],
    ) -> None:
        self.items = items
        self.content = content
        self.models = models
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
        cited: list[RecentAction | None] = [None] * len(item_ids)
        if matrix is not None and item_ids:
            if vectors is None:
                vectors = self.content.vectors_of(item_ids)
            # One product for the whole list: every item's most similar recent action, computed once
            # (per reason it was ~25 small products and date formats per request; measured 1 ms → 0.2 ms).
            # Among near-ties (same to 2 decimals) the latest action: actions are in time order and
            # the tiny index term only breaks ties.
            sims = np.round(vectors @ matrix.T, 2) + 1e-6 * np.arange(len(actions))
            best = np.argmax(sims, axis=1)
            cited = [actions[b] if sims[row, b] >= EVIDENCE_MIN_SIMILARITY else None
                     for row, b in enumerate(best.tolist())]
        known = vectors

        def item_vectors() -> np.ndarray:
            return known if known is not None else self.content.vectors_of(item_ids)

        context = ReasonContext(self.items, state, now, item_ids, contributions, self.models, cited,
                                matrix is not None, item_vectors)
        out = []
        for row, item_id in enumerate(item_ids):
            reasons: list[Reason] = []
            for source, value in sorted(contributions.get(item_id, {}).items(), key=lambda kv: -kv[1]):
                if value <= 0:
                    break  # a source that pulled the item down is no reason for it
                recall = RECALLS.get(source)
                explain = recall.explain if recall is not None else REASONS.get(source)
                reason = explain(context, item_id, row) if explain is not None else None
                if reason is not None:
                    _merge(reasons, reason)
                if len(reasons) >= max_reasons:
                    break
            out.append(tuple(reasons) if reasons else (POPULAR,))
        return out

    def _evidence(self, state: UserState | None) -> tuple[list[RecentAction], np.ndarray | None]:
        """The user's recent positive actions and their text vectors (items and queries); never one
        on an item they rejected since ("like 'X', which you viewed" after a one-star review of X)."""
        if state is None:
            return [], None
        actions = [a for a in state.positive_actions() if a.item_id or a.text][-EVIDENCE_WINDOW:]
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


def _merge(reasons: list[Reason], reason: Reason) -> None:
    """Add ``reason`` to ``reasons`` (in place) unless it repeats one: one reason per evidence (an item,
    a query, a tag). Of two on the same evidence the fuller text stays, in the first one's place:
    "new, and like 'X', which you clicked 9 days ago" over "like 'X', which you clicked 9 days ago",
    never both (issue 13). Reasons without evidence repeat only by text."""
    for n, kept in enumerate(reasons):
        if kept.evidence != reason.evidence:
            continue
        if reason.text.endswith(kept.text):
            reasons[n] = reason
            return
        if kept.text.endswith(reason.text) or reason.evidence is not None:
            return
    reasons.append(reason)

"""The request path: recalls → fusion → negative feedback → filters → MMR → reasons."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import numpy as np

from liverec.core.types import Recommendation
from liverec.models.content import ContentModel
from liverec.ranking.catalog import ItemTable
from liverec.ranking.diversity import mmr
from liverec.ranking.explain import Explainer
from liverec.ranking.filters import Filters
from liverec.ranking.fusion import FusionWeights, fuse, scale
from liverec.ranking.recalls import RecallInput, RecallModels, run_recalls
from liverec.ranking.snapshot import ModelSnapshot
from liverec.realtime.state import UserState, decayed_norm, unit

# Candidates each recall contributes; enough that filters and MMR still have a choice.
RECALL_SIZE = 200
# Below this cosine to what the user rejected, an item is not considered "like" it.
NEGATIVE_FLOOR = 0.3


class Ranker:
    """Serves one model snapshot plus the live catalog; thread-safe for concurrent requests."""

    def __init__(
        self,
        items: ItemTable,
        content: ContentModel,
        snapshot: ModelSnapshot | None,
        query_vector: Callable[[str], np.ndarray],
        short_term_half_life: float,
    ) -> None:
        self.items = items
        self.content = content
        self.snapshot = snapshot
        self.half_life = short_term_half_life
        self.fusion = snapshot.fusion if snapshot is not None else FusionWeights()
        self.models = RecallModels(
            content=content,
            trending=snapshot.trending if snapshot else None,
            covisit=snapshot.covisit if snapshot else None,
            als=snapshot.als if snapshot else None,
            cold_items=self.cold_items,
        )
        self.explainer = Explainer(items, content, self.models.covisit, query_vector)
        self._als_cache: dict[str, tuple[int, np.ndarray | None]] = {}
        self._cold: list[str] | None = None
        self._lock = threading.Lock()

    def cold_items(self) -> list[str]:
        """Catalog items the snapshot has no interaction for, newest first (cached until items change)."""
        cold = self._cold
        if cold is None:
            trained = self.snapshot.trained_items if self.snapshot else frozenset()
            found = [i for i in self.items.ids() if i not in trained]
            found.sort(key=lambda i: -self.items.get(i).created_at)
            cold = self._cold = found
        return cold

    def items_changed(self) -> None:
        self._cold = None

    def als_vector(self, state: UserState | None) -> np.ndarray | None:
        """The user's ALS factors folded in from their interactions, cached per state version."""
        als = self.models.als
        if als is None or state is None or not state.interactions:
            return None
        hit = self._als_cache.get(state.user_id)
        if hit is not None and hit[0] == state.version:
            return hit[1]
        vec = als.user_vector(list(state.interactions.items()))
        with self._lock:
            self._als_cache[state.user_id] = (state.version, vec)
        return vec

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._als_cache.pop(user_id, None)

    def candidates(self, state: UserState | None, filters: Filters, n: int = RECALL_SIZE) -> dict[str, dict[str, float]]:
        """Each recall's min-max scaled candidates for the user (the ranker's features)."""
        blocked = filters.blocked(state)
        inp = RecallInput(
            state=state,
            interest=unit(state.short_vec) if state is not None else None,
            als_vector=self.als_vector(state),
            blocked=blocked,
            n=n,
        )
        raw = run_recalls(self.models, inp)
        return {name: scale(scores) for name, scores in raw.items()}

    def recommend(
        self,
        state: UserState | None,
        k: int,
        filters: Filters,
        diversity: float,
        now: float,
        weights: Mapping[str, float] | None = None,
    ) -> list[Recommendation]:
        scaled = self.candidates(state, filters)
        contributions = fuse(scaled, weights or self.fusion.weights)
        blocked = filters.blocked(state)
        ids = [i for i in contributions if filters.allows(i, self.items, blocked)]
        if not ids:
            return []
        scores = np.fromiter((sum(contributions[i].values()) for i in ids), dtype=np.float64, count=len(ids))
        pool = max(50, 5 * k)
        top = np.argsort(-scores, kind="stable")[:pool]
        ids = [ids[i] for i in top]
        scores = scores[top]
        vectors = self.content.vectors_of(ids)
        scores = self._push_down_rejected(state, vectors, scores)
        picked = mmr(scores, vectors, k, diversity)
        final = [ids[i] for i in picked]
        reasons = self.explainer.explain(final, contributions, state, now)
        return [Recommendation(ids[i], round(float(scores[i]), 6), r) for i, r in zip(picked, reasons, strict=True)]

    def _push_down_rejected(self, state: UserState | None, vectors: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Scale down items like those the user dismissed or reviewed badly, whichever recall found them.

        The factor is 1 − γ·relu((cos − floor)/(1 − floor)), γ = the rejection's decayed strength
        capped at 1: a fresh dismissal nearly removes near-duplicates and fades with the half-life.
        """
        if state is None:
            return scores
        direction = unit(state.neg_vec)
        if direction is None:
            return scores
        # Decayed on the user's own clock (their last action), not the wall clock: a user who
        # comes back after a month should not find the items they rejected back on top.
        gamma = min(1.0, decayed_norm(state.neg_vec, state.neg_ts, state.last_ts, self.half_life))
        likeness = np.clip((vectors @ direction - NEGATIVE_FLOOR) / (1.0 - NEGATIVE_FLOOR), 0.0, 1.0)
        return scores * (1.0 - gamma * likeness)

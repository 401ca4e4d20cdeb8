"""The request path: recalls → features → scorer → negative feedback → filters → MMR → fill → reasons."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

import numpy as np

from liverec.core.settings import Settings
from liverec.core.types import Reason, Recommendation
from liverec.models.base import Ranked
from liverec.models.content import FLAT_MAX_ITEMS
from liverec.models.popularity import TrendingPopularity
from liverec.ranking.diversity import mmr
from liverec.ranking.explain import Explainer, register_reason
from liverec.ranking.exposure import Calibration, groups_of, shares
from liverec.ranking.features import Features, build_features
from liverec.ranking.filters import Filters
from liverec.ranking.fusion import LinearFusion
from liverec.ranking.reasons import EVIDENCE_MIN_SIMILARITY
from liverec.ranking.recalls import NOTHING, ColdItems, RecallContext, recall_names, run_recalls
from liverec.ranking.scoring import Scorer
from liverec.ranking.snapshot import ModelSnapshot
from liverec.realtime.catalog import LiveCatalog
from liverec.realtime.state import ALIKE, RecentAction, UserState, decayed_norm, interest_directions, unit

__all__ = ["RECALL_SIZE", "Ranker", "Serving", "interest_slots"]

# Candidates each recall contributes. Measured on the demo world's validation users: 200 gives
# NDCG@10 0.129, 100 only 0.113 (targets deep in one recall still win when several recalls agree).
RECALL_SIZE = 200
# Below this cosine to what the user rejected, an item is not considered "like" it.
NEGATIVE_FLOOR = 0.3
# Two product rules on top of the learned fusion (which optimises the average next click):
# * fresh: items added since training have no collaborative evidence, so fusion ranks them low;
#   the best one whose text is at least FRESH_RELATIVE as close to the user's interest as the
#   best-matching catalog item takes slot FRESH_SLOT (cold start without retraining);
# * shift: when the last SESSION_ACTIONS actions point away from the profile
#   (cos < SHIFT_SIMILARITY), a third of the list follows the session at once.
FRESH_RELATIVE = 0.5
FRESH_SLOT = 3  # 0-based position
SESSION_ACTIONS = 3
SHIFT_SIMILARITY = 0.5
SHIFT_SLOTS = (1, 3, 5)
# * established interests (issue 13): one click elsewhere must not take the list from a long
#   history. The run is the user's newest actions of this session away from their other
#   interests; while it lasts n actions, the other interests keep at least
#   PROFILE_PRIOR / (n + PROFILE_PRIOR) of the list, times their share of the user's interest
#   strength, split by strength, and the run's own items (the session recall) take their part:
#   with PROFILE_PRIOR = 2 the shift rule's third after one action, half after two or more (at
#   most half: the scorer places the rest). Both ends are kept, not left to fusion: on the demo
#   world, fusion alone gave the new interest half the list after three clicks for only 75% of
#   users (tests/realtime/test_interest_stability.py).
PROFILE_PRIOR = 2.0
RUN_WINDOW = 10  # recent actions a run is counted over (past ten its share hardly moves)
SESSION_GAP = 1800.0  # seconds without an action that end a session (the usual web-analytics half hour)
# Feedback: the third showing without an action halves an item's score, each further one again.
IGNORED_FREE = 2
IGNORED_DECAY = 0.5
# The sources of items that fill a short list (Ranker._fill) after trending's, and their reasons.
NEW_IN_CATALOG = "new_in_catalog"
IN_CATALOG = "catalog"
register_reason(NEW_IN_CATALOG, lambda _ctx, _item_id, _row: Reason("fresh", "new in the catalog"))
register_reason(IN_CATALOG, lambda _ctx, _item_id, _row: Reason("catalog", "more from the catalog"))


class Ranker:
    """Serves one model snapshot plus the live catalog; thread-safe for concurrent requests."""

    def __init__(self, catalog: LiveCatalog, snapshot: ModelSnapshot | None, settings: Settings) -> None:
        self.catalog = catalog
        self.content = catalog.content  # the text index of the space this ranker serves
        self.snapshot = snapshot
        self.settings = settings
        self.half_life = settings.short_term_half_life
        self.models = snapshot.models if snapshot is not None else {}
        self.scorer: Scorer = snapshot.scorer if snapshot is not None else LinearFusion()
        self.items = catalog.table  # lookups straight from the table: filters ask per candidate
        self.explainer = Explainer(self.items, self.content, self.models, catalog.query_vector)
        self._memos: dict[str, dict[str, Any]] = {}  # each recall's, for this snapshot (RecallContext.memo)
        self._cold: tuple[int, ColdItems] | None = None
        self._newest: tuple[int, list[str]] | None = None

    def cold(self) -> ColdItems:
        """Catalog items added after the snapshot was trained (cached per catalog version, so a
        reader never sees ids and vectors of two catalogs), listed with their vectors only while
        few enough to scan per request (see :class:`ColdItems`). With no snapshot nothing is
        listed: every item is cold, and an untrained engine's catalog changes with every write."""
        cold = self._cold
        version = self.catalog.version
        if cold is None or cold[0] != version:
            known = self.snapshot.catalog_items if self.snapshot else frozenset()
            ids = [i for i in self.catalog.ids() if i not in known] if known else []
            if known and len(ids) <= FLAT_MAX_ITEMS:
                listed = ColdItems(ids, self.content.vectors_of(ids), known)
            else:
                listed = ColdItems([], None, known)
            cold = self._cold = (version, listed)
        return cold[1]

    def session_vector(self, state: UserState | None) -> np.ndarray | None:
        """What the user is after right now: their last SESSION_ACTIONS positive actions (items or
        queries), each by its event weight and halved per step back, so the latest explicit
        intent (a search, a purchase) leads."""
        return _session_of(self.recent_vectors(state, SESSION_ACTIONS))

    def recent_vectors(self, state: UserState | None, n: int) -> list[tuple[RecentAction, np.ndarray]]:
        """The user's last ``n`` positive actions (:meth:`UserState.positive_actions`) with their
        text vectors (the item's, or the query's), newest first."""
        if state is None:
            return []
        positive = state.positive_actions()[::-1]
        out: list[tuple[RecentAction, np.ndarray]] = []
        # Vectors a few actions at a time (one lookup each), as some items may have been deleted.
        for start in range(0, len(positive), 2 * n):
            chunk = positive[start : start + 2 * n]
            for action, vec in zip(chunk, self.content.vectors_of([a.item_id or "" for a in chunk]), strict=True):
                if action.item_id is None:
                    vec = self.catalog.query_vector(action.text or "")
                elif not vec.any():
                    continue  # an item since deleted
                out.append((action, vec))
                if len(out) == n:
                    return out
        return out

    def forget(self, user_id: str) -> None:
        """Drop what recalls remembered about the user and what the served models keep of them
        (an erasure; call with the engine's write lock held, as online models change under it)."""
        for memo in list(self._memos.values()):
            memo.pop(user_id, None)
        if self.snapshot is not None:
            self.snapshot.forget_users([user_id])

    def _recall(
        self,
        state: UserState | None,
        blocked: set[str],
        n: int,
        interest: np.ndarray | None,
        session: np.ndarray | None,
    ) -> tuple[RecallContext, dict[str, Ranked]]:
        ctx = RecallContext(state, interest, session, blocked, n, self.models, self.content, self.cold, self._memos,
                            self.items, self.settings.interest_half_life)
        return ctx, run_recalls(ctx, self.settings.recalls_off)

    def features(self, state: UserState | None, filters: Filters, now: float = 0.0,
                 n: int = RECALL_SIZE) -> Features:
        """The features of every recall's candidates for the user (what training tunes the scorer on)."""
        interest = unit(state.short_vec) if state is not None else None
        ctx, raw = self._recall(state, filters.blocked(state), n, interest, self.session_vector(state))
        return build_features(raw, ctx, now, recall_names())

    def recommend(
        self,
        state: UserState | None,
        k: int,
        filters: Filters,
        diversity: float,
        now: float,
        scorer: Scorer | None = None,
        exposure: float | None = None,
    ) -> list[Recommendation]:
        """The request path; ``scorer`` replaces the snapshot's (an A/B variant's), ``exposure``
        the settings' popularity calibration (:mod:`liverec.ranking.exposure`)."""
        scorer = scorer or self.scorer
        interest = unit(state.short_vec) if state is not None else None
        recent = self.recent_vectors(state, RUN_WINDOW)
        session = _session_of(recent[:SESSION_ACTIONS])
        blocked = filters.blocked(state)
        ctx, raw = self._recall(state, blocked, RECALL_SIZE, interest, session)
        features = build_features(raw, ctx, now, recall_names())
        candidates = features.item_ids
        totals = scorer.score(features)
        strength = self.settings.exposure if exposure is None else exposure
        # The exposure control needs what trends now and a history whose mix the list is drawn to.
        history = [a.item_id for a in state.positive_actions() if a.item_id] if strength > 0 and state else []
        trending = self.models.get("trending") if history else None
        if not isinstance(trending, TrendingPopularity):
            trending = None  # the ranker as without the control
        # Calibration picks from the pool only: a deeper one gives the tail room to rise.
        pool = max(50, 5 * k) if trending is None else max(100, 10 * k)
        rows: list[int] = []
        order = np.argsort(-totals, kind="stable")
        for row, total in zip(order.tolist(), totals[order].tolist(), strict=True):
            if total <= 0:
                break
            if filters.allows(candidates[row], self.items, blocked):  # lazily: only as far as the pool needs
                rows.append(row)
                if len(rows) == pool:
                    break
        ids = [candidates[r] for r in rows]
        scores = totals[rows]
        vectors = self.content.vectors_of(ids)
        scores = self._push_down_rejected(state, vectors, scores)
        scores = self._push_down_ignored(state, ids, scores)
        calibration = Calibration(groups_of(trending.quantiles(ids)), shares(groups_of(trending.quantiles(history))),
                                  strength) if trending is not None and ids else None
        final = [(ids[i], float(scores[i])) for i in mmr(scores, vectors, k, diversity, calibration)]
        placed: dict[str, str] = {}
        slots = interest_slots(ctx, recent, k)
        for recall, item_ids in self._reserved(interest, session, raw, slots, k).items():
            for item_id in self._reserve(final, item_ids, filters, blocked, k, recall, slots):
                placed[item_id] = recall
        if slots is not None:
            score_of = dict(zip(candidates, totals.tolist(), strict=True))
            for item_id in self._keep_established(final, slots, ctx, score_of, filters, blocked, k):
                placed[item_id] = "interests"
        placed |= self._fill(final, raw.get("trending", NOTHING)[0], filters, blocked, k)
        pool_row = {item_id: n for n, item_id in enumerate(ids)}
        final_ids = [i for i, _ in final]
        at = [pool_row.get(i, -1) for i in final_ids]
        # Each source's part of each listed item's score, for all items at once.
        known = iter(scorer.contributions(features, [rows[n] for n in at if n >= 0]))
        contributions: dict[str, dict[str, float]] = {}
        for item_id, n in zip(final_ids, at, strict=True):
            # A reserved item is explained by the recall whose rule placed it.
            own = {placed[item_id]: 1.0} if item_id in placed else {}
            if n >= 0:
                own |= next(known)
            contributions[item_id] = own
        final_vectors = np.stack([vectors[n] if n >= 0 else self.content.vectors_of([i])[0]
                                  for i, n in zip(final_ids, at, strict=True)]) if final_ids else None
        reasons = self.explainer.explain(final_ids, contributions, state, now, vectors=final_vectors)
        return [Recommendation(i, round(s, 6), r) for (i, s), r in zip(final, reasons, strict=True)]

    def _reserved(
        self, interest: np.ndarray | None, session: np.ndarray | None, raw: Mapping[str, Ranked],
        slots: InterestSlots | None, k: int,
    ) -> dict[str, list[str]]:
        """Candidates, best first, for the reserved slots of each product rule that applies now."""
        out: dict[str, list[str]] = {}
        content_scores = raw.get("content", NOTHING)[1]
        content_best = float(content_scores.max()) if content_scores.size else 0.0
        fresh_ids, fresh_scores = raw.get("fresh", NOTHING)
        fresh = [i for i, sim in zip(fresh_ids, fresh_scores.tolist(), strict=True)
                 if sim >= FRESH_RELATIVE * content_best > 0]
        if fresh:
            out["fresh"] = fresh
        shifted = interest is not None and session is not None and float(session @ interest) < SHIFT_SIMILARITY
        if shifted or slots is not None:  # away from the profile, or a run off it the list keeps room for
            places = max(len(SHIFT_SLOTS), len(_session_positions(k, slots)))
            out["session"] = list(raw.get("session", NOTHING)[0])[: 3 * places]  # some may be filtered out
        return out

    def _reserve(
        self,
        final: list[tuple[str, float]],
        candidates: list[str],
        filters: Filters,
        blocked: set[str],
        k: int,
        recall: str,
        slots: InterestSlots | None = None,
    ) -> list[str]:
        """Place candidates at the rule's slots (in place) unless the list already holds enough of them.

        A placed item takes the score of the item it displaces, so scores stay non-increasing.
        """
        positions = (FRESH_SLOT,) if recall == "fresh" else _session_positions(k, slots)
        chosen = {i for i, _ in final}
        missing = len(positions) - len(chosen & set(candidates))
        placed: list[str] = []
        for pos in positions[len(positions) - missing :] if missing > 0 else ():
            pick = next((i for i in candidates if i not in chosen and filters.allows(i, self.items, blocked)), None)
            if pick is None:
                break
            slot = min(pos, len(final))
            score = final[slot][1] if slot < len(final) else 0.0
            if len(final) >= k:
                final.pop()
            final.insert(slot, (pick, score))
            chosen.add(pick)
            placed.append(pick)
        return placed

    def _keep_established(
        self,
        final: list[tuple[str, float]],
        slots: InterestSlots,
        ctx: RecallContext,
        score_of: Mapping[str, float],
        filters: Filters,
        blocked: set[str],
        k: int,
    ) -> list[str]:
        """Give the user's established interests their slots in ``final`` (in place; see
        PROFILE_PRIOR and :class:`InterestSlots`).

        An item serves the interest it is most like, if it is like it at all (the cosine a reason
        cites an action at). Each interest holding fewer items than its own slots gets its text
        neighbours, best scored first, in turns (another holding more does not stand in for it).
        The list keeps its best item first; then each place goes to the established interests
        whenever they are behind their share at that depth, so they are not left at the bottom;
        the list's lowest other items make way. Places keep their scores, so scores stay
        non-increasing. Returns the items added.
        """
        ids = [item_id for item_id, _ in final]
        serving = _serves(self.content.vectors_of(ids), slots.interests)
        established = [item_id for item_id, i in zip(ids, serving, strict=True) if i in slots.others]
        held = Counter(i for i in serving if i in slots.others)
        # Each interest by its own slots: one holding more than its share does not stand in for another.
        short = {i: q - held[i] for i, q in slots.others.items() if q > held[i]}
        if not short:
            return []
        chosen = set(ids)
        found: list[list[str]] = []
        for i, m in short.items():
            hits = sorted((h for h in ctx.text_hits(f"interest:{i}")[0] if h not in chosen),
                          key=lambda h: -score_of.get(h, -np.inf))[: 3 * m + 10]  # stable: text order if unscored
            found.append([])
            for item_id, serves in zip(hits, _serves(self.content.vectors_of(hits), slots.interests), strict=True):
                if serves in slots.others and filters.allows(item_id, self.items, blocked):
                    found[-1].append(item_id)
                    chosen.add(item_id)
                    if len(found[-1]) == m:
                        break
        added = [item_id for group in zip_longest(*found) for item_id in group if item_id is not None]
        if not added:
            return []
        profile = deque([*established, *added])
        others = deque(item_id for item_id, i in zip(ids, serving, strict=True) if i not in slots.others)
        share = min(1.0, max(sum(slots.others.values()), len(profile)) / k)
        merged: list[str] = []
        count = 0
        while len(merged) < k and (profile or others):
            if profile and (not others or (merged and count < share * (len(merged) + 1))):
                merged.append(profile.popleft())
                count += 1
            else:
                merged.append(others.popleft())
        scores = [score for _, score in final]
        final[:] = [(item_id, scores[n] if n < len(scores) else 0.0) for n, item_id in enumerate(merged)]
        kept = set(merged)
        return [item_id for item_id in added if item_id in kept]

    def _fill(self, final: list[tuple[str, float]], popular: list[str], filters: Filters, blocked: set[str],
              k: int) -> dict[str, str]:
        """Fill ``final`` to ``k`` (in place) when the scored candidates ran short: ``popular``
        (trending's order), then items added since training, then any other item, newest first;
        each must pass the request's filters. Returns the source that placed each item.

        The scorer may weigh trending zero (an A/B variant, a tuning on a small store) and a store
        not yet trained has no models: a user with no history must still get a list (issue 13).
        Filled items score 0, below every scored one.
        """
        if len(final) >= k:
            return {}
        chosen = {item_id for item_id, _ in final}
        known = self.snapshot.catalog_items if self.snapshot is not None else frozenset()
        newest = self.newest()
        stages = (("trending", popular), (NEW_IN_CATALOG, (i for i in newest if i not in known)),
                  (IN_CATALOG, (i for i in newest if i in known)))
        placed: dict[str, str] = {}
        for source, item_ids in stages:
            for item_id in item_ids:
                if item_id not in chosen and filters.allows(item_id, self.items, blocked):
                    final.append((item_id, 0.0))
                    chosen.add(item_id)
                    placed[item_id] = source
                    if len(final) >= k:
                        return placed
        return placed

    def newest(self) -> list[str]:
        """Every catalog item, newest first (cached per catalog version)."""
        cached = self._newest
        version = self.catalog.version
        if cached is None or cached[0] != version:
            items = [item for item in map(self.items.find, self.catalog.ids()) if item is not None]
            items.sort(key=lambda item: -item.created_at)  # stable: catalog order among equals
            cached = self._newest = (version, [item.item_id for item in items])
        return cached[1]

    @staticmethod
    def _push_down_ignored(state: UserState | None, ids: list[str], scores: np.ndarray) -> np.ndarray:
        """Halve an item's score for every showing past IGNORED_FREE that the user let pass without
        acting on it (impression events): a list does not keep offering what was passed over."""
        if state is None or not state.shown:
            return scores
        shown = state.shown
        factors = [IGNORED_DECAY ** max(0, shown.get(i, 0) - IGNORED_FREE) for i in ids]
        return scores * np.asarray(factors)

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


def _session_positions(k: int, slots: InterestSlots | None) -> tuple[int, ...]:
    """The places in a list of ``k`` that the session's items take: the shift rule's (1, 3, 5) or,
    during a run off the profile, its share, going on every other place (never the first)."""
    if slots is None:
        return SHIFT_SLOTS[: max(1, k // 3)]
    order = [*range(1, k, 2), *range(2, k, 2)]  # the shift rule's places come first
    return tuple(sorted(order[: slots.session_places(k)]))


def _session_of(recent: list[tuple[RecentAction, np.ndarray]]) -> np.ndarray | None:
    """The session vector of the newest actions (see ``Ranker.session_vector``)."""
    total: np.ndarray | None = None
    for used, (action, vec) in enumerate(recent):
        part = (action.weight * 0.5**used) * vec
        total = part if total is None else total + part
    return unit(total)


@dataclass(frozen=True)
class InterestSlots:
    """The slots a list keeps for the user's established interests (see PROFILE_PRIOR).

    ``interests`` are the unit vectors of all the user's interests as rows, in
    ``RecallContext.interests()``'s order; ``others`` the slots of each established one, by row
    (every interest but the one the run is in).
    """

    interests: np.ndarray
    others: dict[int, int]
    run: int = 1

    def session_places(self, k: int) -> int:
        """How many places of a list of ``k`` the run's own items take: run / (run + PROFILE_PRIOR)
        of it, never fewer than the shift rule's, never more than half (the scorer keeps the rest)."""
        share = round(k * self.run / (self.run + PROFILE_PRIOR))
        return max(len(SHIFT_SLOTS[: max(1, k // 3)]), min(share, k // 2))


def interest_slots(ctx: RecallContext, recent: list[tuple[RecentAction, np.ndarray]], k: int
                   ) -> InterestSlots | None:
    """The slots the user's established interests keep in a list of ``k``, from their ``recent``
    actions (newest first); None when nothing is to be kept.

    The run is the newest action and the actions before it in the session (no SESSION_GAP
    between them) until one is ALIKE an established interest: one stronger than all the
    session's actions most like it weigh, so built (in part) before the session. Actions in a
    new interest count however varied their texts: a new interest may be split in several, each
    built by the session alone. Nothing is kept when the run's own interests are established: the
    user is back in one, not off the profile.
    """
    interests = ctx.interests()
    if len(interests) < 2 or not recent or ctx.state is None:
        return None
    rows = interest_directions(interests)
    strengths = np.array([i.strength(ctx.state.last_ts, ctx.interest_half_life) for i in interests])
    session = [recent[0]]
    for (newer, _), (older, vec) in zip(recent, recent[1:], strict=False):
        if newer.timestamp - older.timestamp >= SESSION_GAP:
            break
        session.append((older, vec))
    sims = np.stack([vec for _, vec in session]) @ rows.T
    nearest = np.argmax(sims, axis=1)
    # An interest's strength (its vector's decayed length) is at most the weights that built it.
    built = np.bincount(nearest, weights=[action.weight for action, _ in session], minlength=len(interests))
    established = strengths > built + 1e-3  # 1e-3: float32 norms
    in_run = np.zeros(len(interests), dtype=bool)
    run = 0
    for n, j in enumerate(nearest.tolist()):
        if n and sims[n, j] >= ALIKE and established[j]:
            break  # an established interest: the run ends here
        in_run[j] = True
        run += 1
    others = np.where(in_run, 0.0, strengths)
    if established[in_run].any() or others.sum() <= 0.0:
        return None
    slots = round(k * PROFILE_PRIOR / (run + PROFILE_PRIOR) * float(others.sum() / strengths.sum()))
    if slots < 1:
        return None
    # Split by strength, largest remainders first.
    exact = slots * others / others.sum()
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: slots - int(quota.sum())].tolist():
        quota[i] += 1
    return InterestSlots(rows, {i: q for i, q in enumerate(quota.tolist()) if q > 0}, run)


def _serves(vectors: np.ndarray, interests: np.ndarray) -> list[int | None]:
    """Per item vector, the row of the interest it is most like, or None when it is like none (the
    cosine below which a reason would not cite an action as alike)."""
    if not len(vectors):
        return []
    sims = vectors @ interests.T
    best = np.argmax(sims, axis=1)
    return [int(b) if sims[r, b] >= EVIDENCE_MIN_SIMILARITY else None for r, b in enumerate(best.tolist())]


class Serving:
    """The ranker being served; replaced in one reference assignment when a snapshot is adopted
    or the text space changes, so a request always ranks against one consistent pair."""

    def __init__(self, catalog: LiveCatalog, snapshot: ModelSnapshot | None, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.ranker = Ranker(catalog, snapshot, settings)

    @property
    def snapshot(self) -> ModelSnapshot | None:
        return self.ranker.snapshot

    def swap(self, snapshot: ModelSnapshot | None) -> Ranker:
        """Serve ``snapshot`` over the catalog's current text index; returns the new ranker."""
        self.ranker = ranker = Ranker(self.catalog, snapshot, self.settings)
        return ranker

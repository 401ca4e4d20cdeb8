"""Candidate generators ("recalls"), registered by name, each with how its reason reads.

A :class:`Recall` finds candidates for one user, best first, as an id list and a score array
(:data:`~liverec.models.base.Ranked`: no tuple or dict per candidate on the request path), and
words the reason it gives for an item it put on the list. Recalls never filter by business rules
beyond the ``blocked`` set (seen, dismissed, explicit excludes) so their budget is not spent on
items that would be dropped anyway.

Adding a recall is one :func:`register_recall` call: the request path, the features, fusion
tuning, A/B weights and explanations all iterate over the registry. Registration order is the
column order of the features (and so the order fusion tuning visits recalls in).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.core.types import Reason
from liverec.models.base import TYPE_INDEX, Ranked
from liverec.models.content import ContentModel
from liverec.ranking.reasons import ReasonContext, shorten
from liverec.realtime.catalog import ItemLookup
from liverec.realtime.state import Interest, RecentAction, UserState, unit

__all__ = [
    "ALS_MEMO",
    "COVISIT_SEEDS",
    "ColdItems",
    "NOTHING",
    "RECALLS",
    "Recall",
    "RecallContext",
    "recall_names",
    "register_recall",
    "check_recall_names",
    "cold_start_recalls",
    "run_recalls",
    "unregister_recall",
]

# How many recent positive items seed co-visitation: the last few say most about "right now".
COVISIT_SEEDS = 5
ALS_MEMO = 100_000  # users whose ALS fold-in is kept between their requests

NOTHING: Ranked = ([], np.zeros(0))


class ColdItems(NamedTuple):
    """Catalog items the served snapshot was not trained on ("cold"), as one consistent triple.

    Either the cold items are few enough to scan per request (``ids`` and their ``vectors``), or
    the fresh recall keeps the items not in ``known`` among the text index's neighbours
    (``vectors`` None, ``ids`` not listed): past FLAT_MAX_ITEMS cold items (the size up to which
    exact search is the text index's choice too), or with no snapshot, where every item is cold
    and the text neighbours already are the cold ranking.
    """

    ids: list[str]
    vectors: np.ndarray | None
    #: The snapshot's catalog: an item not in it is cold.
    known: Collection[str]


class RecallContext:
    """What every recall may read for one request; shared work is done once, on first use.

    Parameters
    ----------
    state
        The user's state (None: a user with no events).
    interest
        The unit short-term interest vector.
    session
        The unit vector of the user's last few positive actions (see ``Ranker.session_vector``).
    blocked
        Items no recall may return.
    n
        Candidates per recall.
    models
        The served snapshot's models by name (empty before any training).
    content
        The live text index.
    cold
        Items added after the snapshot was trained (:class:`ColdItems`), computed on first use.
    memos
        The ranker's memo per recall, kept between requests for one snapshot (see :meth:`memo`).
    items
        Titles, categories and tags of items (for features that read them).
    interest_half_life
        How the strength of the user's interests decays (their share of the interests recall).
    """

    def __init__(
        self,
        state: UserState | None,
        interest: np.ndarray | None,
        session: np.ndarray | None,
        blocked: Collection[str],
        n: int,
        models: Mapping[str, Any],
        content: ContentModel,
        cold: Callable[[], ColdItems],
        memos: dict[str, dict[str, Any]],
        items: ItemLookup | None = None,
        interest_half_life: float = 14 * 86400.0,
    ) -> None:
        self.state = state
        self.interest = interest
        self.session = session
        self.blocked = blocked
        self.n = n
        self.models = models
        self.content = content
        self.cold = cold
        self._memos = memos
        self.items = items
        self.interest_half_life = interest_half_life
        self._text: dict[str, Ranked] | None = None

    def text_hits(self, name: str) -> Ranked:
        """Text neighbours of the decayed interest (``content``), the session (``session``) or the
        user's k-th interest (``interest:k``).

        Every query is searched in one pass over the index, on the first call of any.
        """
        if self._text is None:
            queries = {k: v for k, v in (("content", self.interest), ("session", self.session)) if v is not None}
            for k, interest in enumerate(self.interests()):
                vector = unit(interest.vector)
                if vector is not None:
                    queries[f"interest:{k}"] = vector
            hits = self.content.search_ranked(list(queries.values()), self.n, exclude=self.blocked) if queries else []
            self._text = dict(zip(queries, hits, strict=True))
        return self._text.get(name, NOTHING)

    def interests(self) -> list[Interest]:
        """The user's interests, strongest first (strength decayed to their last action)."""
        state = self.state
        if state is None or not state.interests:
            return []
        h = self.interest_half_life
        return sorted(state.interests, key=lambda i: -i.strength(state.last_ts, h))

    def memo(self, recall: str) -> dict[str, Any]:
        """A dict ``recall`` may keep per-user work in between requests, by user id (the ranker drops
        a forgotten user's entries, and the whole memo when a new snapshot is served). Plain dict
        operations are atomic, so a race between requests only computes something twice."""
        memo = self._memos.get(recall)
        if memo is None:
            memo = self._memos.setdefault(recall, {})
        return memo


Find = Callable[[RecallContext], Ranked]
Explain = Callable[[ReasonContext, str, int], Reason | None]


@dataclass(frozen=True)
class Recall:
    """A registered recall.

    Parameters
    ----------
    name
        Unique; the name of its features, its fusion weight and its reasons' ``kind``.
    find
        Candidates for the request in a :class:`RecallContext`, best first.
    explain
        The reason for an item it contributed to: ``(context, item_id, row in the list)``; None
        when it has no evidence worth saying (the next contributor speaks instead).
    cold_start
        Whether it finds candidates for a user with no history at all. Scorer tuning never
        weighs such a recall zero: the users it alone serves are not in the validation sample.
    """

    name: str
    find: Find
    explain: Explain
    cold_start: bool = False


RECALLS: dict[str, Recall] = {}


def register_recall(recall: Recall) -> Recall:
    """Add ``recall`` (after those registered before); re-registering the same one is harmless."""
    if not isinstance(recall.name, str) or not recall.name.isidentifier():
        raise InvalidInputError(f"recall name {recall.name!r} must be an identifier", field="name", value=recall.name)
    known = RECALLS.get(recall.name)
    if known is not None and known != recall:
        raise InvalidInputError(f"recall {recall.name!r} is already registered", field="name", value=recall.name)
    RECALLS[recall.name] = recall
    return recall


def unregister_recall(name: str) -> None:
    """Remove a registration (for tests and plug-ins that come and go); unknown names are ignored."""
    RECALLS.pop(name, None)


def recall_names() -> tuple[str, ...]:
    """The registered recalls, in registration order."""
    return tuple(RECALLS)


def cold_start_recalls() -> frozenset[str]:
    """The registered recalls that find candidates for a user with no history (``cold_start``)."""
    return frozenset(name for name, recall in RECALLS.items() if recall.cold_start)


def run_recalls(ctx: RecallContext, off: Collection[str] = ()) -> dict[str, Ranked]:
    """Every registered recall's candidates for one request, by name, in registration order;
    those in ``off`` find nothing."""
    return {name: NOTHING if name in off else recall.find(ctx) for name, recall in RECALLS.items()}


def check_recall_names(names: Collection[str], field: str) -> None:
    """Refuse a name no recall is registered as (a misspelt setting must not silently do nothing)."""
    for name in names:
        if name not in RECALLS:
            raise InvalidInputError(f"{field}: no recall is registered as {name!r}; registered: "
                                    f"{', '.join(RECALLS)}", field=field, value=name)


# ---------------------------------------------------------------------------- the built-in recalls


def _content(ctx: RecallContext) -> Ranked:
    """Text neighbours of the decayed short-term interest vector."""
    return ctx.text_hits("content")


def _session(ctx: RecallContext) -> Ranked:
    """Text neighbours of what the user did in their last few actions: the decayed interest weighs
    a long camera history against three fresh hiking clicks; this looks only at the last actions,
    so a new interest shows at once."""
    return ctx.text_hits("session")


def _interests(ctx: RecallContext) -> Ranked:
    """Text neighbours of each of the user's interests, every interest given its share of the
    budget by strength (at least 1/(2K)), so a user into cameras, hiking and baby things gets all three."""
    interests = ctx.interests()
    if not interests:
        return NOTHING
    h, now = ctx.interest_half_life, ctx.state.last_ts if ctx.state is not None else 0.0
    strengths = np.array([i.strength(now, h) for i in interests])
    shares = np.maximum(strengths / max(float(strengths.sum()), 1e-12), 1.0 / (2 * len(interests)))
    best: dict[str, float] = {}
    for k, share in enumerate(shares.tolist()):
        ids, scores = ctx.text_hits(f"interest:{k}")
        for item_id, score in zip(ids[: max(1, math.ceil(share * ctx.n))], scores.tolist(), strict=False):
            if score > best.get(item_id, -np.inf):
                best[item_id] = score
    ranked = sorted(best.items(), key=lambda kv: -kv[1])[: ctx.n]
    return [i for i, _ in ranked], np.array([s for _, s in ranked], dtype=np.float64)


def _explain_interests(ctx: ReasonContext, item_id: str, row: int) -> Reason | None:
    interest = ctx.interest_of(row)
    if interest is None:
        return None
    tags = interest.top_tags(1)
    if not tags:
        return Reason("interest", "close to one of your interests")
    return Reason("interest", f"for your interest in '{tags[0]}'", tags[0])


def _als(ctx: RecallContext) -> Ranked:
    als = ctx.models.get("als")
    state = ctx.state
    liked = state.liked() if state is not None else {}
    if als is None or state is None or not liked:
        return NOTHING
    # The fold-in is cached per state version: a user's factors change only with their events.
    memo = ctx.memo("als")
    hit = memo.get(state.user_id)
    if hit is not None and hit[0] == state.version:
        vector = hit[1]
    else:
        vector = als.user_vector(list(liked.items()))
        if len(memo) >= ALS_MEMO:
            memo.clear()  # a fold-in costs ~0.1 ms: recomputing beats unbounded memory
        memo[state.user_id] = (state.version, vector)
    return als.score_ranked(vector, ctx.n, exclude=ctx.blocked)


def covisit_seeds(state: UserState | None) -> list[RecentAction]:
    """The recent positive item actions co-visitation starts from, oldest first."""
    return state.positive_item_actions(COVISIT_SEEDS) if state is not None else []


def _covisit(ctx: RecallContext) -> Ranked:
    covisit = ctx.models.get("covisit")
    if covisit is None:
        return NOTHING
    history = [(a.item_id or "", a.weight) for a in covisit_seeds(ctx.state)]
    if not history:
        return NOTHING
    return covisit.recommend_ranked(history, ctx.n, exclude=ctx.blocked)


def _trending(ctx: RecallContext) -> Ranked:
    trending = ctx.models.get("trending")
    if trending is None:
        return NOTHING
    return trending.recommend_ranked(ctx.n, exclude=ctx.blocked)


def _fresh(ctx: RecallContext) -> Ranked:
    """Items added since the last training, ranked by text similarity to the user's interest.

    They have no collaborative signal at all, so without this recall a new item could only
    surface through the content recall's crowded top-n.
    """
    if ctx.interest is None:
        return NOTHING
    cold = ctx.cold()
    if cold.vectors is None:
        # Too many to scan per request: the cold ones among the content recall's neighbours (the
        # same ranking, exactly so when every item is cold; past FLAT_MAX_ITEMS new items a
        # retraining is overdue, and the few this finds still fill the fresh slot).
        ids, scores = ctx.text_hits("content")
        keep = [n for n, item_id in enumerate(ids) if item_id not in cold.known and scores[n] > 0]
        return [ids[n] for n in keep], scores[keep].astype(np.float64)
    if not cold.ids:
        return NOTHING
    scores = cold.vectors @ ctx.interest
    want = min(ctx.n + len(ctx.blocked), scores.size)
    top = np.argpartition(-scores, want - 1)[:want]
    top = top[np.argsort(-scores[top], kind="stable")]
    keep = [i for i in top.tolist() if scores[i] > 0 and cold.ids[i] not in ctx.blocked][: ctx.n]
    return [cold.ids[i] for i in keep], scores[keep].astype(np.float64)


def _like_recent(kind: str, prefix: str = "") -> Explain:
    """A text recall's reason: the recent action most like the item, or a generic one."""

    def explain(ctx: ReasonContext, item_id: str, row: int) -> Reason | None:
        if not ctx.has_evidence:
            return None
        action = ctx.similar_action(row)
        if action is None:
            return Reason(kind, f"{prefix}close to your recent interests")
        phrase, evidence = ctx.cite(action)
        return Reason(kind, prefix + phrase, evidence)

    return explain


def covisit_evidence(covisit: Any, state: UserState | None, item_ids: list[str]) -> list[RecentAction | None]:
    """Per item: the recent positive item it was most often viewed with (the oldest among equals)."""
    seeds = covisit_seeds(state)
    if covisit is None or not seeds:
        return [None] * len(item_ids)
    scores = covisit.pair_scores([a.item_id or "" for a in seeds], item_ids)
    best = np.argmax(scores, axis=0)
    return [seeds[b] if scores[b, col] > 0 else None for col, b in enumerate(best.tolist())]


def sequence_vector(ctx: RecallContext) -> np.ndarray | None:
    """The sequence model's "what next" vector for the user's recent positive item actions (memoised
    per state version); items it never saw are read through their text vectors."""
    model = ctx.models.get("sequential")
    state = ctx.state
    if model is None or state is None:
        return None
    memo = ctx.memo("sequential")
    hit = memo.get(state.user_id)
    if hit is not None and hit[0] == state.version:
        return hit[1]
    actions = state.positive_item_actions(model.max_len)
    ids = [a.item_id or "" for a in actions]
    fresh = [i for i in ids if i not in model.item_index_]
    unknown = dict(zip(fresh, ctx.content.vectors_of(fresh), strict=True)) if fresh else None
    vector = model.user_vector(ids, [TYPE_INDEX[a.type] for a in actions], [a.timestamp for a in actions], unknown)
    if len(memo) >= ALS_MEMO:
        memo.clear()
    memo[state.user_id] = (state.version, vector)
    return vector


def _sequential(ctx: RecallContext) -> Ranked:
    """What usually comes next after the user's recent actions, in their order (the sequence model)."""
    vector = sequence_vector(ctx)
    if vector is None:
        return NOTHING
    return ctx.models["sequential"].score_ranked(vector, ctx.n, exclude=ctx.blocked)


def _explain_sequential(ctx: ReasonContext, item_id: str, row: int) -> Reason | None:
    seeds = ctx.state.positive_item_actions(1) if ctx.state is not None else []
    if not seeds:
        return None
    last = seeds[0]
    title = shorten(ctx.items.title(last.item_id or ""))
    return Reason("sequential", f"often chosen next after '{title}'", last.item_id)


def _explain_covisit(ctx: ReasonContext, item_id: str, row: int) -> Reason | None:
    found = ctx.evidence("covisit", lambda ids: covisit_evidence(ctx.models.get("covisit"), ctx.state, ids))
    action = found.get(item_id)
    if action is None:
        return None
    title = shorten(ctx.items.title(action.item_id or ""))
    return Reason("covisit", f"people who viewed '{title}' also viewed this", action.item_id)


def _explain_als(ctx: ReasonContext, item_id: str, row: int) -> Reason | None:
    tag = ctx.shared_tag(item_id)
    if tag is not None:
        return Reason("tag", f"matches your interest '{tag}'", tag)
    return Reason("als", "liked by people with tastes like yours")


def _explain_trending(ctx: ReasonContext, item_id: str, row: int) -> Reason | None:
    return Reason("trending", "popular now")


for _recall in (
    Recall("content", _content, _like_recent("content")),
    Recall("session", _session, _like_recent("session")),
    Recall("als", _als, _explain_als),
    Recall("covisit", _covisit, _explain_covisit),
    Recall("trending", _trending, _explain_trending, cold_start=True),
    Recall("fresh", _fresh, _like_recent("fresh", "new, and ")),
    Recall("sequential", _sequential, _explain_sequential),
    Recall("interests", _interests, _explain_interests),
):
    register_recall(_recall)

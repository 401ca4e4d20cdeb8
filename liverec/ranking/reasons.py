"""What one list's reasons draw on: the user's recent actions as evidence, computed once per list.

Each registered recall words its own reason (:attr:`liverec.ranking.recalls.Recall.explain`)
from a :class:`ReasonContext`; the context computes each kind of evidence at most once per list
and only if some reason cites it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from liverec.core.types import EventType
from liverec.realtime.catalog import ItemLookup
from liverec.realtime.state import Interest, RecentAction, UserState, interest_directions

__all__ = ["EVIDENCE_MIN_SIMILARITY", "EVIDENCE_WINDOW", "VERBS", "ReasonContext", "ago", "shorten"]

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
    """``text`` on one line, cut to at most ``limit`` characters with "…": at the last word break
    in its second half where it has one (a reason never ends in half a word), else mid-run (CJK)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–/(") + "…"


class ReasonContext:
    """The evidence for one list's reasons.

    Parameters
    ----------
    items
        Titles and tags of items.
    state
        The user's state (None: a user with no events).
    now
        The request's time ("3 minutes ago").
    item_ids
        The listed items, in list order (``row`` in :meth:`similar_action` is a position here).
    contributions
        Per item, each source's part of its score: which recalls a reason may speak for.
    models
        The snapshot's models, for recalls whose evidence is a model's (co-visitation pairs).
    cited
        Per row, the recent action most like the item (None: nothing alike enough).
    has_evidence
        Whether the user has any recent action that could be cited at all.
    item_vectors
        The listed items' text vectors, computed on first use (for the interest an item serves).
    """

    def __init__(
        self,
        items: ItemLookup,
        state: UserState | None,
        now: float,
        item_ids: Sequence[str],
        contributions: Mapping[str, Mapping[str, float]],
        models: Mapping[str, Any],
        cited: Sequence[RecentAction | None],
        has_evidence: bool,
        item_vectors: Callable[[], np.ndarray] | None = None,
    ) -> None:
        self.items = items
        self.state = state
        self.now = now
        self.item_ids = item_ids
        self.contributions = contributions
        self.models = models
        self.cited = cited
        self.has_evidence = has_evidence
        self._item_vectors = item_vectors
        self._served: list[Interest | None] | None = None
        self._user_tags: dict[str, float] | None = None
        self._evidence: dict[str, dict[str, Any]] = {}
        self._cites: dict[int, tuple[str, str | None]] = {}  # by id(action): (phrase, evidence)

    def similar_action(self, row: int) -> RecentAction | None:
        """The recent action (item or search) most like the item at ``row``."""
        return self.cited[row]

    def interest_of(self, row: int) -> Interest | None:
        """The user's interest the item at ``row`` is most like (None: no interests, or no vectors)."""
        if self._served is None:
            interests = self.state.interests if self.state is not None else []
            self._served = [None] * len(self.item_ids)
            if interests and self._item_vectors is not None and len(self.item_ids):
                matrix = interest_directions(interests)
                best = np.argmax(self._item_vectors() @ matrix.T, axis=1)
                self._served = [interests[b] for b in best.tolist()]
        return self._served[row]

    def evidence(self, source: str, compute: Callable[[list[str]], Sequence[Any]]) -> dict[str, Any]:
        """Per item that ``source`` contributed to, what ``compute`` (called once, on those items) says."""
        found = self._evidence.get(source)
        if found is None:
            ids = [i for i in self.item_ids if source in self.contributions.get(i, {})]
            found = self._evidence[source] = dict(zip(ids, compute(ids), strict=True))
        return found

    def user_tags(self) -> dict[str, float]:
        """The user's 20 strongest interest tags."""
        if self._user_tags is None:
            self._user_tags = dict(self.state.top_tags(20)) if self.state is not None else {}
        return self._user_tags

    def shared_tag(self, item_id: str) -> str | None:
        """The user's strongest interest tag the item carries."""
        user_tags = self.user_tags()
        shared = [t for t in self.items.tags(item_id) if t in user_tags]
        return max(shared, key=lambda t: user_tags[t]) if shared else None

    def cite(self, action: RecentAction) -> tuple[str, str | None]:
        """How a reason names ``action``, and the evidence it records (the item id or the query)."""
        cite = self._cites.get(id(action))
        if cite is None:
            if action.type is EventType.SEARCH:
                cite = (f"matches your search '{shorten(action.text or '')}'", action.text)
            else:
                verb = VERBS.get(action.type, "viewed")
                title = shorten(self.items.title(action.item_id or ""))
                cite = (f"like '{title}', which you {verb} {ago(self.now - action.timestamp, action.timestamp)}",
                        action.item_id)
            self._cites[id(action)] = cite
        return cite


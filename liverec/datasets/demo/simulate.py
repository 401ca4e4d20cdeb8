"""Acting out the demo users' sessions: searches, views, clicks, carts, purchases, ratings, reviews.

A session is about one category: usually one the user likes (weighted by their current
preferences, so a drift shows up at once), sometimes (13%) an unfamiliar one — that exploration is
where most dismissals come from. Items are drawn by Zipf base popularity times the user's taste for
subtype, brand, price and language, restricted to items that already exist at that moment. What
happens to a viewed item follows a funnel whose rates rise with how well it fits the user; ratings
and reviews of purchases arrive at the start of the user's next session.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from liverec.datasets.demo.catalog import CATEGORIES, CATEGORY_IDS, LANGUAGES, CatalogFacts, lower_subtype
from liverec.datasets.demo.spec import CategorySpec
from liverec.datasets.demo.text import QUERY_TEMPLATES, REVIEW_TEMPLATES, sentiment_of_rating
from liverec.datasets.demo.users import DemoUser, Taste

EXPLORE_SESSION = 0.13
EXPLORE_VIEW = 0.03
SEARCH_SESSION = 0.45
QUERY_OTHER_LANGUAGE = 0.15
SESSION_GAP = 600.0  # at least ten minutes between a user's sessions

# One simulated action: (timestamp, user index, sequence number within the user, type, item index or
# -1, value or None, text or None, session id). The first three make a total, deterministic order.
RawEvent = tuple[float, int, int, str, int, float | None, str | None, str]


@dataclass(frozen=True, slots=True)
class _Shelf:
    """The items of one category ordered by creation time, so "what exists at t" is a prefix."""

    index: np.ndarray
    created_at: np.ndarray
    subtype: np.ndarray
    brand: np.ndarray
    features: np.ndarray


def _shelves(facts: CatalogFacts) -> list[_Shelf]:
    out = []
    for c in range(len(CATEGORIES)):
        members = np.flatnonzero(facts.category == c)
        members = members[np.argsort(facts.created_at[members], kind="stable")]
        out.append(
            _Shelf(
                index=members,
                created_at=facts.created_at[members],
                subtype=facts.subtype[members],
                brand=facts.brand[members],
                features=facts.features[members],
            )
        )
    return out


def affinity(facts: CatalogFacts, item: int, user: DemoUser, taste: Taste, liked: bool) -> float:
    """How well ``item`` fits ``user`` in [0, 1]: subtype taste, favourite brand, price; halved off-interest."""
    c, s = int(facts.category[item]), int(facts.subtype[item])
    row = taste.subtypes[c]
    score = 0.45 * row[s] / row.max() + 0.2 * float(taste.brands[c, int(facts.brand[item])])
    score += 0.35 * (1.0 - abs(float(facts.price_level[item]) - user.price_level))
    return score if liked else 0.5 * score


def rating_for(fit: float, quality: float, noise: float) -> int:
    """A 1–5 star rating: high when the item fits the user and is well made, low otherwise."""
    score = 0.5 * fit + 0.5 * quality + noise
    return 1 + int(np.searchsorted((0.42, 0.52, 0.62, 0.74), score, side="right"))


def review_text(spec: CategorySpec, subtype: int, rating: int, language: str, rng: random.Random) -> str:
    """A templated review in ``language`` whose polarity matches ``rating``."""
    templates = REVIEW_TEMPLATES[sentiment_of_rating(rating)][language]
    sub = spec.subtypes[subtype]
    name = lower_subtype(sub.en) if language == "en" else sub.zh
    n = 2 if rng.random() < 0.25 else 1
    sentences = [templates[k].replace("{sub}", name) for k in rng.sample(range(len(templates)), n)]
    return (" " if language == "en" else "").join(sentences)


def search_query(
    spec: CategorySpec, subtype: int, language: str, favourite_brands: np.ndarray, rng: random.Random
) -> tuple[str, int, int]:
    """A query for ``subtype`` in ``language``; returns (text, feature index or -1, brand index or -1)."""
    sub = spec.subtypes[subtype]
    template = rng.choice(QUERY_TEMPLATES[language])
    feature = rng.randrange(len(sub.features)) if "{feat}" in template else -1
    brand = -1
    if "{brand}" in template:
        liked = np.flatnonzero(favourite_brands[: len(spec.brands)])
        brand = int(liked[rng.randrange(len(liked))]) if len(liked) else rng.randrange(len(spec.brands))
    if language == "en":
        text = template.replace("{sub}", sub.en.lower())
        if feature >= 0:
            text = text.replace("{feat}", sub.features[feature][0].lower())
        if brand >= 0:
            text = text.replace("{brand}", spec.brands[brand].en)
    else:
        text = template.replace("{sub}", sub.zh)
        if feature >= 0:
            text = text.replace("{feat}", sub.features[feature][1])
        if brand >= 0:
            text = text.replace("{brand}", spec.brands[brand].zh)
    return text, feature, brand


class Simulator:
    """Plays every user's sessions over ``[start, end)`` and returns raw events.

    Everything random comes from the one generator given, in a fixed order (user by user, session
    by session), so the same seed replays the same world.
    """

    def __init__(self, facts: CatalogFacts, rng: np.random.Generator, *, start: float, end: float) -> None:
        self.facts = facts
        self.np_rng = rng
        # Scalar draws go through random.Random: numpy's per-call overhead dominated the run time.
        self.rng = random.Random(int(rng.integers(2**63)))
        self.start = start
        self.end = end
        self.shelves = _shelves(facts)
        order = np.argsort(facts.created_at, kind="stable")
        self._global_order = order
        self._global_created = facts.created_at[order]
        self._global_cum = np.cumsum(np.where(facts.available[order], facts.popularity[order], 0.0))

    def run(self, users: list[DemoUser], tastes: list[Taste]) -> list[RawEvent]:
        events: list[RawEvent] = []
        for u, (user, taste) in enumerate(zip(users, tastes, strict=True)):
            events.extend(self._user(u, user, taste))
        return events

    def _explore_item(self, t: float) -> int:
        """Any existing, available item, by base popularity: the odd look outside one's interests."""
        n = int(np.searchsorted(self._global_created, t, side="right"))
        if n == 0 or self._global_cum[n - 1] <= 0:
            return -1
        k = int(np.searchsorted(self._global_cum[:n], self.rng.random() * self._global_cum[n - 1], side="right"))
        return int(self._global_order[min(k, n - 1)])

    def _appeal(self, user: DemoUser, taste: Taste) -> np.ndarray:
        """Per item, how likely ``user`` is to look at it once in its category: popularity times taste."""
        facts = self.facts
        subtypes = taste.subtypes[facts.category, facts.subtype]
        best = taste.subtypes.max(axis=1)[facts.category]
        w = np.where(facts.available, facts.popularity, 0.0) * (0.15 + subtypes / best)
        w *= 1.0 + 1.5 * taste.brands[facts.category, facts.brand]
        w *= np.where(facts.language == LANGUAGES.index(user.language), 1.0, taste.cross_language)
        w *= 1.2 - np.abs(facts.price_level - user.price_level)
        return w

    def _user(self, u: int, user: DemoUser, taste: Taste) -> list[RawEvent]:
        appeal = self._appeal(user, taste)
        n_sessions = max(1, int(self.np_rng.poisson(user.activity)))
        spread = self.np_rng.random(n_sessions) * (self.end - self.start - 3 * 3600.0)
        starts = self.start + np.sort(np.floor(spread))  # whole offsets: another start only shifts them
        out: list[RawEvent] = []
        pending: list[tuple[int, float]] = []  # (item, fit) of purchases awaiting a rating or review
        t_free = self.start
        for k, planned in enumerate(starts):
            t = max(float(planned), t_free)
            if t > self.end - 2 * 3600.0:
                break
            session = f"{user.user_id}-s{k + 1:03d}"
            t = self._feedback(out, u, user, pending, t, session)
            pending = []
            t = self._session(out, u, user, taste, appeal, pending, t, session)
            t_free = t + SESSION_GAP
        return out

    def _emit(
        self,
        out: list[RawEvent],
        u: int,
        t: float,
        kind: str,
        item: int,
        session: str,
        value: float | None = None,
        text: str | None = None,
    ) -> None:
        out.append((t, u, len(out), kind, item, value, text, session))

    def _feedback(
        self, out: list[RawEvent], u: int, user: DemoUser, pending: list[tuple[int, float]], t: float, session: str
    ) -> float:
        rng, facts = self.rng, self.facts
        for item, fit in pending:
            c = int(facts.category[item])
            rating = rating_for(fit, float(facts.quality[item]), float(rng.gauss(0.0, 0.08)))
            if rng.random() < 0.45:
                t += float(rng.randrange(5, 40))
                self._emit(out, u, t, "rate", item, session, value=float(rating))
            if rng.random() < 0.3:
                language = user.language if rng.random() < 0.9 else LANGUAGES[int(facts.language[item])]
                text = review_text(CATEGORIES[c], int(facts.subtype[item]), rating, language, rng)
                value = float(rating) if rng.random() < 0.85 else None
                t += float(rng.randrange(20, 120))
                self._emit(out, u, t, "review", item, session, value=value, text=text)
        return t

    def _session(
        self,
        out: list[RawEvent],
        u: int,
        user: DemoUser,
        taste: Taste,
        appeal: np.ndarray,
        pending: list[tuple[int, float]],
        t: float,
        session: str,
    ) -> float:
        rng, facts = self.rng, self.facts
        prefs = user.preferences_at(t)
        liked_ids = list(prefs)
        explore = rng.random() < EXPLORE_SESSION
        if explore:
            others = [c for c in range(len(CATEGORIES)) if CATEGORY_IDS[c] not in prefs]
            c = others[rng.randrange(len(others))]
        else:
            weights = [prefs[cid] for cid in liked_ids]
            c = CATEGORY_IDS.index(rng.choices(liked_ids, weights=weights)[0])
        spec, shelf = CATEGORIES[c], self.shelves[c]
        n = int(np.searchsorted(shelf.created_at, t, side="right"))
        if n == 0:
            return t
        row = taste.subtypes[c]
        w = appeal[shelf.index[:n]]
        if rng.random() < (0.2 if explore else SEARCH_SESSION):
            language = user.language
            if rng.random() < QUERY_OTHER_LANGUAGE:
                language = LANGUAGES[1 - LANGUAGES.index(user.language)]
            n_sub = len(spec.subtypes)
            s = rng.choices(range(n_sub), weights=row[:n_sub].tolist())[0] if not explore else rng.randrange(n_sub)
            text, feature, brand = search_query(spec, s, language, taste.brands[c], rng)
            t += float(rng.randrange(2, 15))
            self._emit(out, u, t, "search", -1, session, text=text)
            w = w * np.where(shelf.subtype[:n] == s, 1.0, 0.03)
            if feature >= 0:
                w = w * np.where(shelf.features[:n] & (1 << feature), 3.0, 1.0)
            if brand >= 0:
                w = w * np.where(shelf.brand[:n] == brand, 4.0, 1.0)
        cum = np.cumsum(w)
        if cum[-1] <= 0:
            return t
        n_views = min(1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - 0.28)), 12)  # geometric, mean 3.6
        picks = np.searchsorted(cum, np.array([rng.random() for _ in range(n_views)]) * cum[-1], side="right")
        viewed = list(dict.fromkeys(int(shelf.index[min(int(p), n - 1)]) for p in picks))
        for item in viewed:
            if rng.random() < EXPLORE_VIEW:
                item = self._explore_item(t)
                if item < 0:
                    continue
            t += float(rng.randrange(8, 90))
            self._emit(out, u, t, "view", item, session)
            liked = CATEGORY_IDS[int(facts.category[item])] in prefs
            fit = affinity(facts, item, user, taste, liked)
            if (not liked and rng.random() < 0.3) or (liked and fit < 0.3 and rng.random() < 0.06):
                t += float(rng.randrange(2, 15))
                self._emit(out, u, t, "dismiss", item, session)
                continue
            if rng.random() >= 0.2 + 0.45 * fit:
                continue
            t += float(rng.randrange(3, 30))
            self._emit(out, u, t, "click", item, session)
            if rng.random() >= 0.06 + 0.3 * fit:
                continue
            t += float(rng.randrange(10, 120))
            self._emit(out, u, t, "add_to_cart", item, session)
            if rng.random() < 0.5:
                t += float(rng.randrange(30, 300))
                self._emit(out, u, t, "purchase", item, session)
                pending.append((item, fit))
        return t

"""Demo users: hidden tastes that the simulation acts out, and that tests check recommendations against.

Each user likes one to three main categories (a sparse Dirichlet over the catalog's categories),
prefers some subtypes and brands inside each, has a price level and a language. About 30% of users
*drift*: at some moment one main interest is replaced by a category they never looked at, which is
what real-time interest capture has to notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from liverec.datasets.demo.catalog import CATEGORIES, CATEGORY_IDS, LANGUAGES

ENGLISH_USER_SHARE = 0.6
DRIFT_SHARE = 0.3
MAIN_CATEGORY_COUNTS = (1, 2, 3)
MAIN_CATEGORY_PROBS = (0.3, 0.45, 0.25)


class Drift(NamedTuple):
    """One main interest of a user moves from ``from_category`` to ``to_category`` at ``time``."""

    time: float
    from_category: str
    to_category: str


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A simulated user and the hidden truth about them.

    ``preferences`` maps each main category to its weight at the end of the simulation;
    ``initial_preferences`` is the same before any drift. Categories not listed are only seen
    through exploration. ``activity`` is the expected number of sessions over the simulated window
    and ``price_level`` where in a subtype's price range they like to buy (0 cheapest, 1 dearest).
    """

    user_id: str
    language: str
    preferences: dict[str, float]
    initial_preferences: dict[str, float]
    drift: Drift | None
    activity: float
    price_level: float

    def preferences_at(self, timestamp: float) -> dict[str, float]:
        """The category weights in force at ``timestamp`` (before or after the drift)."""
        if self.drift is not None and timestamp >= self.drift.time:
            return self.preferences
        return self.initial_preferences


@dataclass(frozen=True, slots=True)
class Taste:
    """Finer hidden taste the simulation uses but the public :class:`DemoUser` does not expose.

    ``subtypes[c, s]`` is the user's Dirichlet weight for subtype ``s`` of category ``c``;
    ``brands[c, b]`` is True for the one or two brands they favour in category ``c``;
    ``cross_language`` is how much less they look at items written in their other language.
    """

    subtypes: np.ndarray
    brands: np.ndarray
    cross_language: float


def generate_users(
    n_users: int, rng: np.random.Generator, *, start: float, end: float
) -> tuple[list[DemoUser], list[Taste]]:
    """Draw ``n_users`` users ``u0001`` … with tastes, activity and drifts inside ``[start, end)``."""
    n_cat = len(CATEGORIES)
    n_sub = max(len(c.subtypes) for c in CATEGORIES)
    n_brand = max(len(c.brands) for c in CATEGORIES)
    sub_exists = np.arange(n_sub)[None, :] < np.array([len(c.subtypes) for c in CATEGORIES])[:, None]
    brand_exists = np.arange(n_brand)[None, :] < np.array([len(c.brands) for c in CATEGORIES])[:, None]
    # Some categories draw more people than others, as in any shop.
    category_popularity = rng.dirichlet(np.full(n_cat, 8.0))
    width = max(4, len(str(n_users)))
    users: list[DemoUser] = []
    tastes: list[Taste] = []
    for u in range(n_users):
        language = LANGUAGES[0] if rng.random() < ENGLISH_USER_SHARE else LANGUAGES[1]
        k = int(rng.choice(MAIN_CATEGORY_COUNTS, p=MAIN_CATEGORY_PROBS))
        mains = rng.choice(n_cat, size=k, replace=False, p=category_popularity)
        weights = rng.dirichlet(np.full(k, 2.0))
        initial = {CATEGORY_IDS[int(c)]: round(float(w), 4) for c, w in zip(mains, weights, strict=True)}
        drift: Drift | None = None
        final = dict(initial)
        if rng.random() < DRIFT_SHARE:
            source = CATEGORY_IDS[int(mains[int(rng.integers(k))])]
            others = np.array([c for c in range(n_cat) if CATEGORY_IDS[c] not in initial])
            p = category_popularity[others] / category_popularity[others].sum()
            target = CATEGORY_IDS[int(rng.choice(others, p=p))]
            when = start + float(np.floor((end - start) * rng.uniform(0.3, 0.7)))
            drift = Drift(when, source, target)
            final = {(target if c == source else c): w for c, w in initial.items()}
        # A Dirichlet(0.5) row per category, drawn as normalised gammas: a few subtypes dominate.
        subtypes = np.where(sub_exists, rng.gamma(0.5, size=(n_cat, n_sub)), 0.0)
        subtypes /= subtypes.sum(axis=1, keepdims=True)
        # One or two favourite brands per category: the lowest one or two of random keys.
        keys = np.where(brand_exists, rng.random((n_cat, n_brand)), np.inf)
        ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
        brands = ranks < rng.integers(1, 3, size=(n_cat, 1))
        users.append(
            DemoUser(
                user_id=f"u{u + 1:0{width}d}",
                language=language,
                preferences=final,
                initial_preferences=initial,
                drift=drift,
                activity=round(float(np.clip(rng.lognormal(np.log(14.0), 0.7), 2.0, 60.0)), 3),
                price_level=round(float(rng.beta(2.0, 2.0)), 4),
            )
        )
        tastes.append(Taste(subtypes=subtypes, brands=brands, cross_language=float(rng.uniform(0.25, 0.6))))
    return users, tastes

"""A/B experiments: split users between ranking variants and measure each variant's click-through rate.

An :class:`Experiment` assigns every user to one :class:`Variant` by a salted hash, so the same
user sees the same variant on every request, in every process, with no assignment table to keep.
A :class:`FeedbackLog` remembers which variant served each recommendation list and counts the
impressions and clicks reported against it; :meth:`FeedbackLog.stats` turns the counts into a CTR
per variant with a Wilson interval, and compares every variant with the control (the first).

CTR here is clicks per impressed item: each (request, item) pair counts at most once as an
impression and once as a click, so a client that retries a report cannot inflate the numbers.

This module is library code: it raises :mod:`liverec.core.errors`, never HTTP errors.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist
from types import MappingProxyType
from typing import Any

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.ranking.recalls import RECALLS

#: The two-sided 95% normal quantile, 1.95996...
Z95 = NormalDist().inv_cdf(0.975)

FEEDBACK_KINDS = ("impression", "click")

_VARIANT_KEYS = ("name", "share", "weights", "diversity")


# ---------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment.

    Parameters
    ----------
    name
        Unique within the experiment; it is what the feedback log and the stats report.
    share
        This variant's fraction of users (the shares of an :class:`Experiment` sum to 1).
    weights
        Recall fusion weights that replace the trained ones (recalls left out weigh 0), or
        ``None`` to serve with the trained weights.
    diversity
        The ``diversity`` passed to ``Engine.recommend`` (the MMR trade-off: 0 keeps the relevance
        order, 1 favours mutually different items), or ``None`` for the request's own or the default.
    """

    name: str
    share: float = 1.0
    weights: Mapping[str, float] | None = None
    diversity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the same keys :meth:`Experiment.from_config` reads."""
        return {
            "name": self.name,
            "share": self.share,
            "weights": None if self.weights is None else dict(self.weights),
            "diversity": self.diversity,
        }


def _is_number(value: object) -> bool:
    # bool is an int subclass; ``share: true`` in a config is a mistake, not 1.0.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked_variant(variant: Variant, where: str) -> Variant:
    """``variant`` with its weights copied read-only, or InvalidInputError naming ``where.field``."""
    name = variant.name
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{where}.name {name!r} must be a non-empty string", field=f"{where}.name", value=name)
    share = variant.share
    if not _is_number(share) or not math.isfinite(share) or share <= 0:
        raise InvalidInputError(
            f"{where}.share {share!r} must be a positive number", field=f"{where}.share", value=share
        )
    weights = variant.weights
    if weights is not None:
        if not isinstance(weights, Mapping):
            raise InvalidInputError(
                f"{where}.weights must map recall names to numbers, not {type(weights).__name__}",
                field=f"{where}.weights", value=weights,
            )
        for recall, weight in weights.items():
            field = f"{where}.weights.{recall}"
            if recall not in RECALLS:
                raise InvalidInputError(
                    f"recall {recall!r} in {where}.weights is not one of {', '.join(RECALLS)}",
                    field=field, value=recall,
                )
            if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
                raise InvalidInputError(
                    f"{field} {weight!r} must be a finite number >= 0", field=field, value=weight
                )
        # All-zero weights would score every candidate 0, and an empty mapping would silently
        # fall back to the trained weights in the ranker: neither is what the author meant.
        if not any(w > 0 for w in weights.values()):
            raise InvalidInputError(
                f"{where}.weights needs at least one positive weight", field=f"{where}.weights", value=dict(weights)
            )
        weights = MappingProxyType({r: float(w) for r, w in weights.items()})
    diversity = variant.diversity
    if diversity is not None:
        if not _is_number(diversity) or not 0.0 <= diversity <= 1.0:
            raise InvalidInputError(
                f"{where}.diversity {diversity!r} must be between 0 and 1", field=f"{where}.diversity", value=diversity
            )
        diversity = float(diversity)
    return Variant(name, float(share), weights, diversity)


class Experiment:
    """Variants with traffic shares, and the stable assignment of users to them.

    The first variant is the control: :meth:`FeedbackLog.stats` compares the others with it.
    Shares are normalised to sum to 1, so ``1, 1`` and ``0.5, 0.5`` mean the same split.
    Changing ``salt`` reshuffles every user, which is how a new experiment starts from a fresh split.

    Examples
    --------
    >>> exp = Experiment.from_config([{"name": "control", "share": 3}, {"name": "mmr", "diversity": 0.5}])
    >>> [(v.name, v.share) for v in exp.variants]
    [('control', 0.75), ('mmr', 0.25)]
    >>> exp.assign("u1") is exp.assign("u1")
    True
    """

    def __init__(self, variants: Sequence[Variant], salt: str = "") -> None:
        if isinstance(variants, str | bytes) or not isinstance(variants, Sequence) or not variants:
            raise InvalidInputError("variants must be a list of at least one variant", field="variants",
                                    value=variants)
        if not isinstance(salt, str):
            raise InvalidInputError(f"salt {salt!r} must be a string", field="salt", value=salt)
        checked: list[Variant] = []
        seen: set[str] = set()
        for i, variant in enumerate(variants):
            if not isinstance(variant, Variant):
                raise InvalidInputError(f"variants[{i}] is a {type(variant).__name__}, not a Variant",
                                        field=f"variants[{i}]", value=variant)
            v = _checked_variant(variant, f"variants[{i}]")
            if v.name in seen:
                raise InvalidInputError(f"variant name {v.name!r} is used twice", field=f"variants[{i}].name",
                                        value=v.name)
            seen.add(v.name)
            checked.append(v)
        total = math.fsum(v.share for v in checked)
        self.variants: tuple[Variant, ...] = tuple(replace(v, share=v.share / total) for v in checked)
        self.salt = salt
        # Upper bounds of each variant's slice of [0, 1); the last is pinned to 1 so rounding in
        # the cumulative sum can never leave a sliver of users unassigned.
        bounds = []
        acc = 0.0
        for v in self.variants:
            acc += v.share
            bounds.append(acc)
        bounds[-1] = 1.0
        self._bounds = tuple(bounds)

    @classmethod
    def from_config(cls, variants: Sequence[Mapping[str, Any]], salt: str = "") -> Experiment:
        """Build from plain mappings (parsed JSON or TOML), each with the keys of :class:`Variant`.

        ``name`` is required; ``share`` defaults to 1 (an equal split); ``weights`` and
        ``diversity`` default to ``None``. Any other key is an error rather than ignored, so a
        misspelt ``divresity`` cannot quietly run an experiment without its treatment.

        Raises
        ------
        InvalidInputError
            With ``field`` naming the offending entry, e.g. ``variants[1].weights.als``.
        """
        if isinstance(variants, str | bytes) or not isinstance(variants, Sequence):
            raise InvalidInputError("variants must be a list of mappings", field="variants", value=variants)
        parsed: list[Variant] = []
        for i, entry in enumerate(variants):
            where = f"variants[{i}]"
            if not isinstance(entry, Mapping):
                raise InvalidInputError(f"{where} must be a mapping, not {type(entry).__name__}", field=where,
                                        value=entry)
            for key in entry:
                if key not in _VARIANT_KEYS:
                    raise InvalidInputError(
                        f"{where} has unknown key {key!r}; expected {', '.join(_VARIANT_KEYS)}",
                        field=f"{where}.{key}", value=key,
                    )
            if "name" not in entry:
                raise InvalidInputError(f"{where} has no name", field=f"{where}.name")
            parsed.append(Variant(entry["name"], entry.get("share", 1.0), entry.get("weights"),
                                  entry.get("diversity")))
        return cls(parsed, salt=salt)

    @classmethod
    def single(cls) -> Experiment:
        """No experiment: one variant named ``default`` serving everyone with the defaults."""
        return cls([Variant("default")])

    @property
    def control(self) -> Variant:
        return self.variants[0]

    def variant(self, name: str) -> Variant:
        """The variant called ``name``; :class:`NotFoundError` (kind ``variant``) if there is none."""
        for v in self.variants:
            if v.name == name:
                return v
        raise NotFoundError(f"no variant {name!r} in the experiment", kind="variant", key=name)

    def bucket(self, user_id: str) -> float:
        """The user's point in [0, 1): the first 8 bytes of sha256(salt + user_id), big-endian, / 2**64.

        A cryptographic hash rather than :func:`hash`: Python salts ``hash`` per process, and the
        point must be the same in every worker and after every restart.
        """
        digest = hashlib.sha256((self.salt + user_id).encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def assign(self, user_id: str) -> Variant:
        """The variant whose slice of [0, 1) holds :meth:`bucket` of ``user_id``."""
        if not isinstance(user_id, str) or not user_id:
            raise InvalidInputError(f"user_id {user_id!r} must be a non-empty string", field="user_id",
                                    value=user_id)
        point = self.bucket(user_id)
        for variant, bound in zip(self.variants, self._bounds, strict=True):
            if point < bound:
                return variant
        return self.variants[-1]  # unreachable: the last bound is 1 and point < 1

    def to_dict(self) -> dict[str, Any]:
        return {"salt": self.salt, "variants": [v.to_dict() for v in self.variants]}

    def __repr__(self) -> str:
        return f"Experiment({[(v.name, round(v.share, 4)) for v in self.variants]!r}, salt={self.salt!r})"


# ---------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0 or n
    successes, which is where CTRs of a fresh variant live. With ``n == 0`` it is (0, 1):
    nothing is known yet.

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(10, 100)]
    [0.0552, 0.1744]
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n))
    # At 0 (or n) successes the bound is exactly 0 (or 1); pin it against rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def newcombe_interval(s1: int, n1: int, s2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """A CI for p1 - p2 by Newcombe's hybrid score method (method 10 of Newcombe, 1998).

    It combines the two Wilson intervals, so it inherits their good coverage at small counts
    and near 0, where the normal (Wald) interval for a difference collapses. Needs n1, n2 > 0.
    """
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson_interval(s1, n1, z)
    l2, u2 = wilson_interval(s2, n2, z)
    diff = p1 - p2
    return diff - math.hypot(p1 - l1, u2 - p2), diff + math.hypot(u1 - p1, p2 - l2)


def two_proportion_p_value(s1: int, n1: int, s2: int, n2: int) -> float:
    """The two-sided p-value of the pooled two-proportion z-test of p1 == p2. Needs n1, n2 > 0.

    When both samples are all misses (or all hits) the pooled variance is 0 and the proportions
    are equal, so there is no evidence of a difference: the p-value is 1.
    """
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return 1.0
    z = (s1 / n1 - s2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2.0))


@dataclass(frozen=True)
class VariantStats:
    """One variant's counts, its CTR with a 95% Wilson interval, and its comparison with the control.

    ``ctr`` is 0 while there are no impressions (the interval, (0, 1), says it is unknown). The
    ``lift`` fields are ``None`` for the control itself, and while either side has no impressions.
    ``lift`` is ``ctr - control ctr``; its interval is Newcombe's hybrid score interval and
    ``p_value`` is the two-sided pooled two-proportion z-test.
    """

    name: str
    requests: int
    impressions: int
    clicks: int
    ctr: float
    ci_low: float
    ci_high: float
    control: bool = False
    lift: float | None = None
    lift_ci_low: float | None = None
    lift_ci_high: float | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FeedbackResult:
    """What one :meth:`FeedbackLog.record` call newly counted (0 and 0 for a retried report)."""

    request_id: str
    variant: str
    impressions: int
    clicks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _variant_stats(name: str, requests: int, impressions: int, clicks: int) -> VariantStats:
    low, high = wilson_interval(clicks, impressions)
    return VariantStats(name, requests, impressions, clicks, clicks / impressions if impressions else 0.0, low, high)


def _versus(stats: VariantStats, control: VariantStats) -> VariantStats:
    if stats.impressions == 0 or control.impressions == 0:
        return stats
    low, high = newcombe_interval(stats.clicks, stats.impressions, control.clicks, control.impressions)
    p_value = two_proportion_p_value(stats.clicks, stats.impressions, control.clicks, control.impressions)
    return replace(stats, lift=stats.ctr - control.ctr, lift_ci_low=low, lift_ci_high=high, p_value=p_value)

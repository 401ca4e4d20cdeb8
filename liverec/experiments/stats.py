"""Per-variant click-through rates from the feedback log's counts, with intervals and tests.

The store's feedback log (:class:`liverec.storage.FeedbackLog`) remembers which variant served
each recommendation list and counts the impressions and clicks reported against it;
:func:`variant_stats` turns those counts into a CTR per variant with a Wilson interval, and
compares every variant with the control.

CTR here is clicks per impressed item: each (request, item) pair counts at most once as an
impression and once as a click, so a client that retries a report cannot inflate the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist
from typing import Any

from liverec.storage.feedback import VariantCounts

__all__ = ["Z95", "VariantStats", "newcombe_interval", "two_proportion_p_value", "variant_stats", "wilson_interval"]

#: The two-sided 95% normal quantile, 1.95996...
Z95 = NormalDist().inv_cdf(0.975)


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


def variant_stats(counts: Sequence[VariantCounts], control: str | None = None) -> list[VariantStats]:
    """Each variant's CTR with its Wilson interval, and every variant compared with the control.

    Parameters
    ----------
    counts
        A feedback log's :meth:`~liverec.storage.FeedbackLog.counts`, in the order variants were
        first served.
    control
        The variant the others are compared with (pass the experiment's ``control.name``); it
        comes first, and is listed with zero counts even before it has served anything. By
        default the first of ``counts`` is the control.

    Examples
    --------
    >>> control, mmr = variant_stats([VariantCounts("mmr", 5, 100, 20), VariantCounts("control", 5, 100, 10)],
    ...                              control="control")
    >>> (control.name, control.control, control.ctr), (mmr.name, round(mmr.lift, 2))
    (('control', True, 0.1), ('mmr', 0.1))
    """
    stats = [_variant_stats(c) for c in counts]
    if control is not None:
        rest = [s for s in stats if s.name != control]
        first = next((s for s in stats if s.name == control), _variant_stats(VariantCounts(control, 0, 0, 0)))
        stats = [first, *rest]
    if not stats:
        return []
    base = replace(stats[0], control=True)
    return [base, *(_versus(s, base) for s in stats[1:])]


def _variant_stats(counts: VariantCounts) -> VariantStats:
    name, requests, impressions, clicks = counts.name, counts.requests, counts.impressions, counts.clicks
    low, high = wilson_interval(clicks, impressions)
    return VariantStats(name, requests, impressions, clicks, clicks / impressions if impressions else 0.0, low, high)


def _versus(stats: VariantStats, control: VariantStats) -> VariantStats:
    if stats.impressions == 0 or control.impressions == 0:
        return stats
    low, high = newcombe_interval(stats.clicks, stats.impressions, control.clicks, control.impressions)
    p_value = two_proportion_p_value(stats.clicks, stats.impressions, control.clicks, control.impressions)
    return replace(stats, lift=stats.ctr - control.ctr, lift_ci_low=low, lift_ci_high=high, p_value=p_value)

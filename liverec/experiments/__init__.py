"""A/B experiments: variants, the stable assignment of users to them, and per-variant statistics.

* :mod:`~liverec.experiments.variants` — :class:`Variant`, :class:`Experiment` (salted-hash split)
  behind the :class:`Assignment` protocol the service reads;
* :mod:`~liverec.experiments.stats` — CTR per variant with Wilson intervals, lift versus the
  control with Newcombe's interval and a two-proportion test, from the feedback log's counts.
"""

from __future__ import annotations

from liverec.experiments.stats import (
    Z95,
    VariantStats,
    newcombe_interval,
    two_proportion_p_value,
    variant_stats,
    wilson_interval,
)
from liverec.experiments.variants import Assignment, Experiment, Variant

__all__ = [
    "Z95",
    "Assignment",
    "Experiment",
    "Variant",
    "VariantStats",
    "newcombe_interval",
    "two_proportion_p_value",
    "variant_stats",
    "wilson_interval",
]

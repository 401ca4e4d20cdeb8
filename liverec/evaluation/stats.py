"""Uncertainty: bootstrap confidence intervals of a mean and a paired test between two systems.

Both resample *users*, the unit a recommender is evaluated on. The paired test is the
randomisation (sign-flip) test that Smucker, Allan and Carterette (CIKM 2007) found the most
reliable for IR evaluation: under the null hypothesis a user's two scores are exchangeable,
so each per-user difference keeps or flips its sign at random.

>>> low, high = bootstrap_ci(np.array([0.0, 1.0] * 50), seed=0)
>>> bool(low < 0.5 < high)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 2000


def bootstrap_ci(
    values: np.ndarray, *, confidence: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    # Resampled means in chunks: n_resamples × n indices at once would be gigabytes for big tests.
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // values.size)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


@dataclass(frozen=True)
class PairedComparison:
    """``a`` against ``b`` on the same users: mean difference, its bootstrap CI and the p-value."""

    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    users: int

    @property
    def relative(self) -> float:
        """a / b − 1 (e.g. +0.12 = a is 12% better); nan when b is 0."""
        return self.mean_a / self.mean_b - 1.0 if self.mean_b else float("nan")


def paired_test(a: np.ndarray, b: np.ndarray, *, n_resamples: int = N_RESAMPLES, seed: int = 0) -> PairedComparison:
    """Two-sided randomisation test of mean(a) = mean(b) on paired per-user values.

    The p-value counts the sign-flipped mean differences at least as extreme as the observed
    one, with the observed assignment included, so it is never 0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in shape: {a.shape} vs {b.shape}")
    diff = a - b
    observed = float(diff.mean()) if diff.size else 0.0
    rng = np.random.default_rng(seed)
    extreme = 0
    chunk = max(1, 2_000_000 // max(1, diff.size))
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        signs = rng.integers(0, 2, size=(stop - start, diff.size)) * 2 - 1
        extreme += int((np.abs((signs * diff).mean(axis=1)) >= abs(observed) - 1e-12).sum())
    low, high = bootstrap_ci(diff, n_resamples=n_resamples, seed=seed)
    return PairedComparison(
        mean_a=float(a.mean()) if a.size else 0.0,
        mean_b=float(b.mean()) if b.size else 0.0,
        difference=observed,
        ci_low=low,
        ci_high=high,
        p_value=(extreme + 1) / (n_resamples + 1),
        users=int(diff.size),
    )

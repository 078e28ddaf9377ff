"""Confidence intervals and significance: seeded bootstrap, paired bootstrap, exact McNemar."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["bootstrap_ci", "expected_calibration_error", "mcnemar_exact", "paired_bootstrap"]

RESAMPLES = 1000


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_ci(
    n: int,
    statistic: Callable[[np.ndarray], float],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(indices)`` over ``n`` samples (resampled with replacement).

    ``statistic`` takes an index array, so corpus-level metrics (BLEU from summed counts, a ratio
    of sums) resample correctly, not only means.
    """
    if n == 0:
        return (math.nan, math.nan)
    values = np.array([statistic(row) for row in _indices(n, resamples, seed)])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def mean_ci(values: np.ndarray, *, seed: int = 0, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Bootstrap CI of a mean, vectorized."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (math.nan, math.nan)
    means = values[_indices(len(values), resamples, seed)].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, seed: int = 0, resamples: int = RESAMPLES
) -> tuple[float, tuple[float, float], float]:
    """mean(a - b), its 95% CI, and a two-sided bootstrap p-value for 'no difference'."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = a - b
    if len(diff) == 0:
        return math.nan, (math.nan, math.nan), math.nan
    means = diff[_indices(len(diff), resamples, seed)].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    # (k + 1) / (R + 1): a bootstrap cannot show p below its resolution, so it never reports 0
    at_or_below, at_or_above = int((means <= 0).sum()), int((means >= 0).sum())
    p = min(1.0, 2 * (min(at_or_below, at_or_above) + 1) / (resamples + 1))
    return float(diff.mean()), (float(low), float(high)), float(p)


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the samples where exactly one is right.

    The binomial tail is summed in log space: with exact integers (``math.comb``) a 100,000-sample
    summary spent 7 s here; this agrees with them to about 1e-12 (tests/eval/test_stats.py).
    """
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = np.arange(min(only_a, only_b) + 1)
    log_terms = _log_factorial(n) - _log_factorial(k) - _log_factorial(n - k) - n * math.log(2)
    peak = log_terms.max()
    tail = math.exp(peak) * float(np.exp(log_terms - peak).sum())
    return min(1.0, 2 * tail)


def _log_factorial(n: int | np.ndarray) -> np.ndarray:
    """log(n!) for an int or an array of ints."""
    return np.vectorize(math.lgamma, otypes=[float])(np.asarray(n) + 1)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """ECE: the mean |accuracy - confidence| over equal-width confidence bins, weighted by their
    share of the samples (Guo et al. 2017). ``correct`` may be fractional (a vqa accuracy)."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if not len(confidence):
        return 0.0
    which = np.minimum((np.clip(confidence, 0, 1) * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        members = which == b
        total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)

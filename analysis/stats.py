"""Paired significance tests over queries, and the Holm adjustment, with scipy.stats.

One comparison pairs two systems' per-query values on the same queries (each
value already averaged over the seeds both systems share). It reports the
mean difference with a 95 % paired bootstrap interval over queries, a
two-sided paired t-test and a two-sided paired randomisation (sign-flip)
test. The randomisation test enumerates all 2**n sign patterns when that is
at most :data:`RANDOMISATION_RESAMPLES`, else it draws that many, seeded; its
p-value is scipy's ``permutation_test``'s, computed with one matrix product.

Degenerate inputs get defined answers rather than NaN: identical systems
(every difference 0) have p = 1 and a zero-width interval; a single query
gives no t-test (p = 1) and no bootstrap (the interval is the difference).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

#: Sign flips drawn by the randomisation test (all 2**n are enumerated when fewer).
RANDOMISATION_RESAMPLES = 10_000
BOOTSTRAP_RESAMPLES = 10_000
CONFIDENCE = 0.95
#: Holm p (or a single test's p) below this is called significant. Not ``alpha``: that is the hybrid
#: strategy's monolingual share.
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison of system A against system B (differences are A - B)."""

    mean_diff: float
    ci_low: float
    ci_high: float
    p_ttest: float
    p_randomization: float
    n_queries: int
    exact: bool  # whether the randomisation test enumerated every sign pattern


def _mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> PairedTest:
    """Compare per-query values ``a`` and ``b`` (same queries, same order)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired values need two equally long lists; got {x.shape} and {y.shape}")
    if len(x) == 0:
        raise ValueError("no query is shared by both systems: nothing to compare")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("per-query values must be finite numbers")
    d = x - y
    mean = float(d.mean())
    p_flip, exact = _flip_p(d, seed)
    if np.all(d == d[0]):
        # No spread: the t statistic is 0/0 or x/0 and every bootstrap resample is the same.
        # Equal systems have p = 1; a constant non-zero shift on several queries has p = 0.
        p_t = 1.0 if d[0] == 0 or len(d) == 1 else 0.0
        return PairedTest(mean, mean, mean, p_t, p_flip, len(d), exact)
    p_t = float(stats.ttest_rel(x, y).pvalue) if len(d) > 1 else 1.0
    low, high = _bootstrap_interval(d, seed) if len(d) > 1 else (mean, mean)
    return PairedTest(mean, low, high, p_t, p_flip, len(d), exact)


def _flip_p(d: np.ndarray, seed: int) -> tuple[float, bool]:
    """Two-sided sign-flip p-value of the mean difference; exact enumeration when 2**n is small.

    The p-value is ``scipy.stats.permutation_test``'s for one sample with
    ``permutation_type="samples"`` (tests check it against scipy): twice the
    smaller tail share, counting null values within 100 ulp of the observed
    mean as reaching it, with the observed pattern added to a drawn null. The
    null means are one matrix product of the sign patterns with ``d``, since
    scipy's generic resampler is slow for this one-sample case and a study's
    findings run a thousand tests.
    """
    n = len(d)
    if n == 1:  # +d and -d are equally extreme
        return 1.0, True
    exact = 2**n <= RANDOMISATION_RESAMPLES
    if exact:
        flipped = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    else:  # eight fair coins from each random byte
        random_bytes = np.random.default_rng(seed).integers(0, 256, size=(RANDOMISATION_RESAMPLES, (n + 7) // 8),
                                                            dtype=np.uint8)
        flipped = np.unpackbits(random_bytes, axis=1, count=n)
    null = (d.sum() - 2 * (flipped.astype(float) @ d)) / n  # the sum with the flipped values negated
    observed = float(np.mean(d))
    gamma = abs(observed) * np.finfo(float).eps * 100
    adjustment = 0 if exact else 1
    less = (np.count_nonzero(null <= observed + gamma) + adjustment) / (len(null) + adjustment)
    greater = (np.count_nonzero(null >= observed - gamma) + adjustment) / (len(null) + adjustment)
    return float(min(1.0, 2 * min(less, greater))), exact


def _bootstrap_interval(d: np.ndarray, seed: int) -> tuple[float, float]:
    """95 % BCa interval of the mean difference, resampling queries; percentile where BCa degenerates.

    Resampling the differences is resampling the query pairs (scipy draws the
    same indices either way, so the interval is the paired one) with one array
    to index instead of two.
    """
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            # BCa's acceleration is 0/0 when the differences vary only by float rounding: the
            # interval comes out NaN, and the percentile one below is used instead.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.bootstrap(
                (d,), _mean, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=CONFIDENCE, method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    mean = float(np.mean(d))
    return mean, mean


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order (scipy has none; statsmodels is not needed).

    Sorted ascending, the i-th smallest of m gets ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted

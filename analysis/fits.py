"""Saturating power-law fits of a scaling curve, metric(N) = a - b * N**(-c), through scipy.optimize.

The fit is to the seed means at each training size, with intervals from a
bootstrap that resamples seeds (per size) and queries together, so an
interval says how much the curve depends on which seeds and which queries
happened to be measured. ``a`` is the level the curve approaches, ``b`` how
far below it (above it, for a falling metric) the curve starts, ``c`` how
fast it gets there.

Three parameters need more than three points to say anything, so a fit is
refused below :data:`MIN_SIZES` sizes (one line, not a bad fit). Sizes are
scaled by the largest one before fitting, which keeps ``b`` of order one
and the optimiser stable; the reported ``b`` is for N in raw units.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import optimize

MIN_SIZES = 4
BOOTSTRAP_FITS = 300
#: Bounds on the exponent: flatter than N**-0.001 is a line, steeper than N**-3 is a step.
EXPONENT_BOUNDS = (1e-3, 3.0)


class FitError(ValueError):
    """The points cannot support a fit (too few sizes, or the optimiser did not converge)."""


@dataclass(frozen=True)
class PowerLaw:
    a: float
    b: float
    c: float

    def __call__(self, n: np.ndarray | float) -> np.ndarray | float:
        return self.a - self.b * np.power(n, -self.c)


@dataclass(frozen=True)
class ScalingFit:
    """A fitted curve with 95 % bootstrap intervals for each parameter (None when no resample converged)."""

    curve: PowerLaw
    sizes: tuple[int, ...]
    means: tuple[float, ...]
    a_interval: tuple[float, float] | None
    b_interval: tuple[float, float] | None
    c_interval: tuple[float, float] | None
    resamples: int


def _scaled_model(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


def fit_power_law(sizes: Sequence[int], means: Sequence[float]) -> PowerLaw:
    """Least-squares fit of ``a - b N**-c`` to (size, mean) points; FitError below MIN_SIZES sizes."""
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(means, dtype=float)
    if len(set(sizes)) < MIN_SIZES:
        raise FitError(f"a scaling fit needs at least {MIN_SIZES} training sizes; this curve has {len(set(sizes))}")
    if not np.isfinite(y).all():
        raise FitError("a scaling fit needs finite values at every size")
    scale = n.max()
    x = n / scale
    start = (float(y[np.argmax(n)]), float(y[np.argmax(n)] - y[np.argmin(n)]) or 1e-3, 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            (a, b_scaled, c), _ = optimize.curve_fit(
                _scaled_model, x, y, p0=start,
                bounds=([-np.inf, -np.inf, EXPONENT_BOUNDS[0]], [np.inf, np.inf, EXPONENT_BOUNDS[1]]),
                maxfev=20_000,
            )
    except (RuntimeError, ValueError) as error:
        raise FitError(f"the power-law fit did not converge ({error})") from None
    # a - b_s (N/scale)^-c = a - (b_s scale^c) N^-c
    return PowerLaw(float(a), float(b_scaled * scale**c), float(c))


def fit_with_intervals(
    values: Mapping[int, Mapping[int, Mapping[str, float]]], seed: int = 0, resamples: int = BOOTSTRAP_FITS,
) -> ScalingFit:
    """Fit one curve from per-query values: ``values[size][seed][query_id]``.

    The point at a size is the mean over its seeds of the mean over its
    queries. Each bootstrap resample draws the seeds of every size and the
    queries (one draw of query ids, shared by all sizes and seeds, so paired
    structure is kept) with replacement and fits again.
    """
    sizes = sorted(values)
    means = [_point(values[size], None, None) for size in sizes]
    curve = fit_power_law(sizes, means)
    rng = np.random.default_rng(seed)
    queries = sorted({q for by_seed in values.values() for per_query in by_seed.values() for q in per_query})
    draws: list[tuple[float, float, float]] = []
    for _ in range(resamples):
        query_draw = list(rng.choice(queries, size=len(queries), replace=True))
        resampled = []
        for size in sizes:
            seeds = sorted(values[size])
            resampled.append(_point(values[size], list(rng.choice(seeds, size=len(seeds), replace=True)), query_draw))
        if not all(math.isfinite(m) for m in resampled):
            continue
        try:
            fitted = fit_power_law(sizes, resampled)
        except FitError:
            continue
        draws.append((fitted.a, fitted.b, fitted.c))
    intervals: list[tuple[float, float] | None] = [None, None, None]
    if draws:
        array = np.array(draws)
        intervals = [(float(np.percentile(array[:, i], 2.5)), float(np.percentile(array[:, i], 97.5))) for i in range(3)]
    return ScalingFit(curve, tuple(sizes), tuple(means), intervals[0], intervals[1], intervals[2], len(draws))


def _point(by_seed: Mapping[int, Mapping[str, float]], seeds: Sequence[int] | None, queries: Sequence[str] | None) -> float:
    """Mean over ``seeds`` (default all) of the mean over ``queries`` (default each seed's own) of the values."""
    chosen = list(by_seed) if seeds is None else seeds
    seed_means = []
    for s in chosen:
        per_query = by_seed[s]
        picked = [per_query[q] for q in queries if q in per_query] if queries is not None else list(per_query.values())
        if picked:
            seed_means.append(float(np.mean(picked)))
    return float(np.mean(seed_means)) if seed_means else math.nan


def crossover(first: PowerLaw, second: PowerLaw, low: float, high: float) -> float | None:
    """The size in [low, high] beyond which ``first`` stays above ``second``, or None if it never overtakes.

    Found on a log grid and refined with brentq: the last sign change of
    first - second from negative to positive.
    """
    grid = np.geomspace(low, high, 400)
    gap = first(grid) - second(grid)
    if gap[-1] <= 0:
        return None
    below = np.nonzero(gap <= 0)[0]
    if len(below) == 0:
        return float(low)  # ahead from the start
    left, right = grid[below[-1]], grid[below[-1] + 1]
    return float(optimize.brentq(lambda n: first(n) - second(n), left, right))

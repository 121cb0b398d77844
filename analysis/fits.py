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

A least-squares fit always returns a curve, even through noise around a
flat line, and its exponent then wanders over the whole allowed range. So a
fit is only *shown* (:func:`why_not_shown`) where the points have a trend:
the slope of the means over log N is significant (scipy's ``linregress``),
and the exponent's bootstrap interval stays inside its bounds. A crossover
of two shown fits comes with an interval from the paired bootstrap refits
(:func:`crossover_interval`), and is stated only when that interval is finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import optimize, stats

from analysis.stats import CONFIDENCE, SIGNIFICANCE

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
class Trend:
    """The least-squares line of the means over log10 N: its slope (change per tenfold N) and two-sided p."""

    slope: float
    p: float

    @property
    def significant(self) -> bool:
        return self.p < SIGNIFICANCE


def trend(sizes: Sequence[int], means: Sequence[float]) -> Trend:
    """Whether the means move with log N at all: scipy's linregress of the means on log10 N (two-sided t-test).

    Constant means have no trend (p = 1), where linregress would divide by zero.
    """
    y = np.asarray(means, dtype=float)
    if np.ptp(y) == 0:
        return Trend(0.0, 1.0)
    result = stats.linregress(np.log10(np.asarray(sizes, dtype=float)), y)
    return Trend(float(result.slope), float(result.pvalue))


@dataclass(frozen=True)
class ScalingFit:
    """A fitted curve with 95 % bootstrap intervals for each parameter (None when no resample converged).

    ``draws`` holds the bootstrap refits' (a, b, c) rows, in resample order, non-finite ones
    included (so the i-th rows of two fits stay the same resample), for intervals of what is
    derived from two curves (:func:`crossover_interval`).
    """

    curve: PowerLaw
    sizes: tuple[int, ...]
    means: tuple[float, ...]
    a_interval: tuple[float, float] | None
    b_interval: tuple[float, float] | None
    c_interval: tuple[float, float] | None
    resamples: int
    trend: Trend
    draws: np.ndarray = field(default_factory=lambda: np.empty((0, 3)), compare=False, repr=False)


def _linear_part(x: np.ndarray, y: np.ndarray, c: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For fixed exponents the model y = a + b z (z = -x**-c) is a line: (a, b, residual sum of squares).

    Vectorised over an array of exponents (one row each), so a whole grid costs one numpy call.
    """
    z = -np.power(x[None, :], -np.atleast_1d(c)[:, None])
    z_mean, y_mean = z.mean(axis=1, keepdims=True), y.mean()
    b = ((z - z_mean) * (y - y_mean)).sum(axis=1) / ((z - z_mean) ** 2).sum(axis=1)
    a = y_mean - b * z_mean[:, 0]
    residual = y[None, :] - a[:, None] - b[:, None] * z
    return a, b, (residual**2).sum(axis=1)


def fit_power_law(sizes: Sequence[int], means: Sequence[float]) -> PowerLaw:
    """Least-squares fit of ``a - b N**-c`` to (size, mean) points; FitError below MIN_SIZES sizes.

    Variable projection: (a, b) are solved exactly for each exponent, so the
    search is one-dimensional in c — a log grid over :data:`EXPONENT_BOUNDS`,
    then scipy's bounded scalar minimiser around the best grid point. It has no
    starting-point sensitivity and costs well under a millisecond, which keeps
    hundreds of bootstrap refits cheap.
    """
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(means, dtype=float)
    if len(set(sizes)) < MIN_SIZES:
        raise FitError(f"a scaling fit needs at least {MIN_SIZES} training sizes; this curve has {len(set(sizes))}")
    if not np.isfinite(y).all():
        raise FitError("a scaling fit needs finite values at every size")
    scale = n.max()
    x = n / scale
    grid = np.geomspace(*EXPONENT_BOUNDS, 64)
    errors = _linear_part(x, y, grid)[2]
    best = int(np.argmin(errors))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    result = optimize.minimize_scalar(lambda c: float(_linear_part(x, y, c)[2][0]), bounds=(low, high),
                                      method="bounded", options={"xatol": 1e-10})
    c = float(result.x) if result.success and result.fun <= errors[best] else float(grid[best])
    a_values, b_values, _ = _linear_part(x, y, c)
    a, b_scaled = float(a_values[0]), float(b_values[0])
    if not (math.isfinite(a) and math.isfinite(b_scaled)):
        raise FitError("the power-law fit did not converge")
    # a - b_s (N/scale)^-c = a - (b_s scale^c) N^-c
    return PowerLaw(a, float(b_scaled * scale**c), c)


#: Exponents the bootstrap refits choose from: a log grid over EXPONENT_BOUNDS, 0.4 % apart.
_REFIT_GRID = np.geomspace(*EXPONENT_BOUNDS, 2000)


def _refit_many(sizes: Sequence[int], points: np.ndarray) -> np.ndarray:
    """``(a, b, c)`` rows, one least-squares fit per row of ``points``, the exponent chosen on :data:`_REFIT_GRID`.

    For a fixed exponent the residual sum of squares of the line y = a + b z is
    Syy - Szy**2 / Szz, so every (resample, exponent) pair is one matrix product.
    """
    n = np.asarray(sizes, dtype=float)
    scale = n.max()
    z = -np.power((n / scale)[None, :], -_REFIT_GRID[:, None])  # grid x sizes
    z_centred = z - z.mean(axis=1, keepdims=True)
    szz = (z_centred**2).sum(axis=1)
    y_centred = points - points.mean(axis=1, keepdims=True)
    szy = y_centred @ z_centred.T  # resamples x grid
    best = np.argmin((y_centred**2).sum(axis=1, keepdims=True) - szy**2 / szz[None, :], axis=1)
    c = _REFIT_GRID[best]
    b_scaled = szy[np.arange(len(points)), best] / szz[best]
    a = points.mean(axis=1) - b_scaled * z.mean(axis=1)[best]
    return np.column_stack([a, b_scaled * scale**c, c])


def fit_with_intervals(
    values: Mapping[int, Mapping[str, Mapping[str, float]]], seed: int = 0, resamples: int = BOOTSTRAP_FITS,
) -> ScalingFit:
    """Fit one curve from per-query values: ``values[size][seed][query_id]``.

    The point at a size is the mean over its seeds of the mean over its
    queries. Each bootstrap resample draws the seeds of every size and the
    queries (one draw of query ids, shared by all sizes and seeds, so the
    paired structure is kept) with replacement, and fits again, the exponent
    on a fine grid (:func:`_refit_many`: all resamples in one array operation,
    where :func:`fit_power_law` refines its one fit with scipy). Queries that
    some run of the curve lacks are left out of the resamples.
    """
    sizes = sorted(values)
    means = [float(np.mean([np.mean(list(per_query.values())) for per_query in values[size].values()]))
             for size in sizes]
    curve = fit_power_law(sizes, means)
    slope = trend(sizes, means)
    shared = sorted(set.intersection(*(set(q) for by_seed in values.values() for q in by_seed.values())))
    if not shared:
        return ScalingFit(curve, tuple(sizes), tuple(means), None, None, None, 0, slope)
    # size -> (seeds x shared queries) matrix, so a resample is two index draws and a mean.
    matrices = [np.array([[per_query[q] for q in shared] for per_query in values[size].values()]) for size in sizes]
    rng = np.random.default_rng(seed)
    points = np.empty((resamples, len(sizes)))
    for row in range(resamples):
        queries = rng.integers(len(shared), size=len(shared))
        points[row] = [m[rng.integers(len(m), size=len(m))][:, queries].mean() for m in matrices]
    draws = _refit_many(sizes, points)
    finite = draws[np.isfinite(draws).all(axis=1)]
    intervals: list[tuple[float, float] | None] = [None, None, None]
    if len(finite):
        intervals = [_interval(finite[:, i]) for i in range(3)]
    return ScalingFit(curve, tuple(sizes), tuple(means), intervals[0], intervals[1], intervals[2], len(finite), slope,
                      draws)


def _interval(values: np.ndarray, method: str = "linear") -> tuple[float, float]:
    tail = 100 * (1 - CONFIDENCE) / 2
    return float(np.percentile(values, tail, method=method)), float(np.percentile(values, 100 - tail, method=method))


def _reaches_bounds(interval: tuple[float, float]) -> bool:
    """Whether an exponent interval touches EXPONENT_BOUNDS (to the refit grid's spacing, with room)."""
    low, high = EXPONENT_BOUNDS
    return interval[0] <= low * 1.01 or interval[1] >= high * 0.99


def why_not_shown(fit: ScalingFit) -> str | None:
    """None when the fit may be shown; else the sentence shown instead of a curve, an exponent and a crossover.

    No trend: the means do not move with log N beyond their own scatter,
    so any curve through them is noise ("flat within noise"). A trend whose
    exponent interval reaches a bound of its range (or has none) is a real
    slope, but the data do not say which power law it is, so only the slope is given.
    """
    slope = f"slope {fit.trend.slope:+.4f} per tenfold n, p = {fit.trend.p:.3g}"
    if not fit.trend.significant:
        return f"flat within noise ({slope})"
    if fit.c_interval is None or _reaches_bounds(fit.c_interval):
        where = "has no bootstrap interval" if fit.c_interval is None else (
            f"interval {fit.c_interval[0]:.3g} to {fit.c_interval[1]:.3g} reaches the bounds "
            f"{EXPONENT_BOUNDS[0]:g} to {EXPONENT_BOUNDS[1]:g}")
        return f"a trend ({slope}) but no power law: the exponent's {where}"
    return None


#: Below this exponent N**-c is close to linear in log N over any measured range (1 - c ln N), so a fit
#: says "a logarithmic trend" and its plateau ``a`` lies far past the data; at the upper bound it says "a step".
MIN_SATURATING_EXPONENT = 0.05


def saturates(curve: PowerLaw) -> bool:
    """Whether the fit describes a curve that levels off: its exponent is neither near zero (a logarithmic
    trend, where ``a`` and ``b`` grow large and cancel) nor at the upper bound (a step)."""
    return MIN_SATURATING_EXPONENT <= curve.c < EXPONENT_BOUNDS[1] * 0.99


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


def crossover_interval(first: ScalingFit, second: ScalingFit, low: float, high: float) -> tuple[float, float] | None:
    """A 95 % interval of :func:`crossover` from the two fits' bootstrap refits, paired by resample; None when open.

    Both fits draw their resamples from the same generator seed, so with the
    same seeds and queries the i-th refits of the two curves come from the same
    draw. A refit in which ``first`` never overtakes counts as an infinite
    crossover, so if more than 2.5 % of them never do, the interval is open
    (None) and no crossover is stated. A resample in which either refit did not
    converge counts as never overtaking too.
    """
    pairs = min(len(first.draws), len(second.draws))
    if pairs == 0:
        return None
    finite = np.isfinite(first.draws[:pairs]).all(axis=1) & np.isfinite(second.draws[:pairs]).all(axis=1)
    at = [crossover(PowerLaw(*first.draws[i]), PowerLaw(*second.draws[i]), low, high) if finite[i] else None
          for i in range(pairs)]
    # inverted_cdf picks a refit's own value: no interpolation towards an infinite one
    bounds = _interval(np.array([math.inf if x is None else x for x in at]), method="inverted_cdf")
    return bounds if all(math.isfinite(b) for b in bounds) else None

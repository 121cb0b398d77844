"""Power-law scaling fits: exact recovery, refusal below four sizes, bootstrap intervals, crossovers."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.fits import (
    FitError,
    PowerLaw,
    crossover,
    crossover_interval,
    fit_power_law,
    fit_with_intervals,
    trend,
    why_not_shown,
)

SIZES = [16, 64, 256, 1024]


def test_noise_free_points_give_back_the_curve():
    true = PowerLaw(0.8, 0.5, 0.4)
    fitted = fit_power_law(SIZES, [true(n) for n in SIZES])
    assert (fitted.a, fitted.b, fitted.c) == pytest.approx((0.8, 0.5, 0.4), rel=1e-5)


def test_a_falling_metric_fits_with_negative_b():
    true = PowerLaw(5.0, -40.0, 0.5)  # e.g. a mean rank that drops towards 5
    fitted = fit_power_law(SIZES, [true(n) for n in SIZES])
    assert (fitted.a, fitted.b, fitted.c) == pytest.approx((5.0, -40.0, 0.5), rel=1e-4)


def test_fewer_than_four_sizes_are_refused():
    with pytest.raises(FitError, match="at least 4 training sizes; this curve has 3"):
        fit_power_law([16, 64, 256], [0.1, 0.2, 0.3])


def test_bootstrap_intervals_cover_the_true_parameters():
    true = PowerLaw(0.8, 0.5, 0.4)
    rng = np.random.default_rng(1)
    values = {n: {s: {f"q{i}": float(true(n) + rng.normal(0, 0.05)) for i in range(80)} for s in range(3)}
              for n in SIZES}
    fit = fit_with_intervals(values, resamples=100)
    assert fit.resamples > 50
    assert fit.a_interval[0] < 0.8 < fit.a_interval[1]
    assert fit.c_interval[0] < 0.4 < fit.c_interval[1]
    assert fit.means[0] == pytest.approx(np.mean([np.mean(list(v.values())) for v in values[16].values()]))


def test_crossover_is_where_the_first_curve_overtakes():
    # 0.9 - 0.8/sqrt(N) = 0.7 - 0.2/sqrt(N)  <=>  sqrt(N) = 3
    assert crossover(PowerLaw(0.9, 0.8, 0.5), PowerLaw(0.7, 0.2, 0.5), 1, 1e6) == pytest.approx(9.0)
    assert crossover(PowerLaw(0.7, 0.2, 0.5), PowerLaw(0.9, 0.8, 0.5), 1, 1e6) is None  # falls behind for good


def test_the_bootstrap_refits_agree_with_the_refined_fit():
    """The grid refits of the bootstrap (all resamples at once) find the fit scipy refines, to the grid's 0.4 %."""
    from analysis.fits import _refit_many

    rng = np.random.default_rng(4)
    curves = [PowerLaw(0.8, 0.5, 0.4), PowerLaw(5.0, -40.0, 0.5), PowerLaw(0.6, 0.3, 1.7)]
    points = np.array([[curve(n) + rng.normal(0, 0.002) for n in SIZES] for curve in curves])
    for (a, b, c), row in zip(_refit_many(SIZES, points), points):
        refined = fit_power_law(SIZES, list(row))
        assert c == pytest.approx(refined.c, rel=5e-3)
        assert a == pytest.approx(refined.a, rel=1e-2, abs=1e-3)


def per_query(curve, noise: float, seed: int) -> dict:
    """values[size][seed][query] around ``curve``, 60 queries and 3 seeds per size."""
    rng = np.random.default_rng(seed)
    return {n: {s: {f"q{i}": float(curve(n) + rng.normal(0, noise)) for i in range(60)} for s in range(3)}
            for n in SIZES}


def test_a_flat_study_gets_no_fit_and_says_so_with_scipys_slope_test():
    from scipy import stats

    fit = fit_with_intervals(per_query(lambda n: 0.6, 0.05, seed=3), resamples=100)
    expected = stats.linregress(np.log10(SIZES), fit.means)
    assert (fit.trend.slope, fit.trend.p) == pytest.approx((expected.slope, expected.pvalue))
    assert expected.pvalue >= 0.05
    assert why_not_shown(fit) == f"flat within noise (slope {expected.slope:+.4f} per tenfold n, p = {expected.pvalue:.3g})"


def test_constant_means_have_no_trend():
    assert trend(SIZES, [0.5] * 4) == trend(SIZES, [0.5, 0.5, 0.5, 0.5])
    assert (trend(SIZES, [0.5] * 4).slope, trend(SIZES, [0.5] * 4).p) == (0.0, 1.0)


def test_a_clear_trend_is_shown_with_intervals_and_crossings_get_one():
    mono, hybrid = PowerLaw(0.85, 1.2, 0.5), PowerLaw(0.95, 2.8, 0.5)  # equal where 1.6 / sqrt(N) = 0.1: N = 256
    mono_fit = fit_with_intervals(per_query(mono, 0.02, seed=1), resamples=200)
    hybrid_fit = fit_with_intervals(per_query(hybrid, 0.02, seed=2), resamples=200)
    for fit in (mono_fit, hybrid_fit):
        assert why_not_shown(fit) is None and fit.trend.p < 0.05
        assert 1e-3 * 1.01 < fit.c_interval[0] < 0.5 < fit.c_interval[1] < 3 * 0.99
    assert crossover(hybrid, mono, 16, 1e5) == pytest.approx(256)
    low, high = crossover_interval(hybrid_fit, mono_fit, 16, 1e5)
    assert low < 256 < high < 1e5
    # a curve that never overtakes has no interval: the crossing is not stated
    assert crossover_interval(mono_fit, hybrid_fit, 16, 1e5) is None


def test_an_exponent_interval_at_its_bound_is_a_trend_without_a_power_law():
    """A straight line in log N: significant slope, but c runs to its lower bound, so no fit is shown."""
    fit = fit_with_intervals(per_query(lambda n: 0.3 + 0.05 * np.log10(n), 0.01, seed=4), resamples=100)
    reason = why_not_shown(fit)
    assert reason.startswith("a trend (slope +0.049")  # +0.05 per decade, less the noise of 4 means
    assert "but no power law: the exponent's interval 0.001 to" in reason


def test_a_refit_that_did_not_converge_keeps_the_pairing_and_counts_as_never_overtaking():
    """Refits are paired by resample: a non-finite row is kept in place (dropping it would pair the next
    resample of one curve with this one of the other), and counts as no crossover."""
    import dataclasses

    from analysis.fits import PowerLaw, ScalingFit, Trend, crossover_interval

    def fit(rows: np.ndarray) -> ScalingFit:
        return ScalingFit(PowerLaw(*rows[-1]), (16, 64, 256, 1024), (0.0,) * 4, None, None, None, len(rows),
                          Trend(0.1, 0.001), rows)

    rising = fit(np.tile([1.0, 1.0, 0.5], (40, 1)))  # 1 - n^-0.5: above 0.9 from n = 100
    flat = fit(np.tile([0.9, 0.0, 0.5], (40, 1)))
    assert crossover_interval(rising, flat, 16, 10_000) == pytest.approx((100.0, 100.0))
    failed = rising.draws.copy()
    failed[:2] = np.nan  # 2 of 40 refits (5 %) did not converge: more than the 2.5 % an interval may leave open
    assert crossover_interval(dataclasses.replace(rising, draws=failed), flat, 16, 10_000) is None

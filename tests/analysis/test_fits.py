"""Power-law scaling fits: exact recovery, refusal below four sizes, bootstrap intervals, crossovers."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.fits import FitError, PowerLaw, crossover, fit_power_law, fit_with_intervals

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

"""Paired tests and the Holm adjustment against hand computations and brute-force enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from analysis.stats import holm, paired_test


def test_sign_flip_p_is_the_enumerated_share_and_t_test_matches_the_t_distribution():
    a = [0.5, 0.7, 0.2, 0.9, 0.4]
    b = [0.4, 0.6, 0.3, 0.5, 0.4]
    result = paired_test(a, b)
    # d = 0.1, 0.1, -0.1, 0.4, 0: of the 32 sign patterns, 16 reach |sum| >= 0.5 (counted by hand).
    assert result.mean_diff == pytest.approx(0.1)
    assert result.exact and result.p_randomization == pytest.approx(0.5)
    # t = 0.1 / (sd / sqrt 5) with sd = sqrt(0.14 / 4); two-sided p from Student's t with 4 df.
    t = 0.1 / (math.sqrt(0.14 / 4) / math.sqrt(5))
    assert result.p_ttest == pytest.approx(2 * stats.t.sf(t, 4), rel=1e-9)
    assert result.ci_low < result.mean_diff < result.ci_high
    assert result.n_queries == 5


def test_exact_randomisation_equals_brute_force_enumeration():
    rng = np.random.default_rng(7)
    a, b = rng.random(11), rng.random(11)
    d = a - b
    flips = np.array(list(itertools.product((1, -1), repeat=len(d))))
    brute = np.mean(np.abs((flips * d).mean(axis=1)) >= abs(d.mean()) - 1e-12)
    result = paired_test(a, b)
    assert result.exact and result.p_randomization == pytest.approx(brute)


def _scipy_flip_p(d: np.ndarray, resamples: float, seed: int) -> float:
    return stats.permutation_test((d,), lambda v, axis: np.mean(v, axis=axis), permutation_type="samples",
                                  n_resamples=resamples, alternative="two-sided",
                                  rng=np.random.default_rng(seed)).pvalue


@pytest.mark.parametrize("n", [2, 6, 13])
def test_exact_randomisation_p_equals_scipys_permutation_test(n):
    rng = np.random.default_rng(n)
    a, b = rng.random(n), rng.random(n)
    b[0] = a[0]  # a zero difference, as tied queries give
    result = paired_test(a, b)
    assert result.exact and result.p_randomization == pytest.approx(_scipy_flip_p(a - b, np.inf, 0), abs=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.02, 0.05])
def test_drawn_randomisation_p_agrees_with_scipys_within_monte_carlo_error(shift):
    rng = np.random.default_rng(11)
    a = rng.random(40)
    b = a - shift + rng.normal(0, 0.12, 40)
    ours, theirs = paired_test(a, b, seed=4).p_randomization, _scipy_flip_p(a - b, 10_000, 5)
    error = 4 * math.sqrt(max(theirs * (1 - theirs), 1e-4) / 10_000) * math.sqrt(2)
    assert abs(ours - theirs) <= error, (ours, theirs)


def test_many_queries_draw_sign_flips_and_find_a_real_shift():
    rng = np.random.default_rng(3)
    a = rng.random(200)
    b = a - 0.05 + rng.normal(0, 0.05, 200)
    result = paired_test(a, b, seed=1)
    assert not result.exact
    assert result.p_randomization < 0.001 and result.p_ttest < 0.001
    assert 0 < result.ci_low < 0.05 < result.ci_high  # the interval covers the true shift and excludes 0
    assert paired_test(a, b, seed=1) == result  # seeded


def test_the_interval_is_scipys_paired_bca_bootstrap():
    rng = np.random.default_rng(5)
    a = rng.random(60)
    b = a - 0.02 + rng.normal(0, 0.05, 60)
    expected = stats.bootstrap((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True,
                               n_resamples=10_000, method="BCa", rng=np.random.default_rng(2)).confidence_interval
    result = paired_test(a, b, seed=2)
    assert (result.ci_low, result.ci_high) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_degenerate_inputs_have_defined_answers():
    same = paired_test([0.2, 0.4, 0.6], [0.2, 0.4, 0.6])
    assert (same.mean_diff, same.ci_low, same.ci_high, same.p_ttest, same.p_randomization) == (0, 0, 0, 1, 1)
    shifted = paired_test([1, 2, 3], [0, 1, 2])
    assert shifted.p_randomization == pytest.approx(2 / 8)  # only all-plus and all-minus are as extreme
    single = paired_test([0.9], [0.1])
    assert single.p_ttest == 1.0 and single.p_randomization == 1.0
    with pytest.raises(ValueError, match="no query is shared"):
        paired_test([], [])


def test_holm_by_hand():
    # sorted 0.01 x4 = 0.04, 0.03 x3 = 0.09, 0.04 x2 = 0.08 -> 0.09 (monotone), 0.5 x1
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == []

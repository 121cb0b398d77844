"""Findings: leader and hybrid tables, families for Holm, and sentences that only say what the tables show."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.compare import RunValues
from analysis.findings import build_findings, to_markdown
from vocabulary.series import SeriesName

SIZES = (16, 64, 256, 1024)
QUERIES = [f"q{i:02d}" for i in range(40)]
UNTRAINED, MONO, CROSS = SeriesName("untrained m"), SeriesName("mono", "mono"), SeriesName("cross", "cross")
#: The hybrid table is found by the strategy table (hybrid uses alpha), not by the label.
HYBRID = SeriesName("hybrid α=0.5", "hybrid", 0.5)


def study(hybrid_gain: float) -> list[RunValues]:
    """mono / cross / hybrid at four sizes and three seeds, plus the untrained model; hybrid gets
    ``hybrid_gain`` on half the queries on top of cross."""
    rng = np.random.default_rng(5)
    base = rng.uniform(0.2, 0.8, len(QUERIES))
    runs = [RunValues(UNTRAINED, 0, "", "yo", "en", dict(zip(QUERIES, base - 0.1)))]
    for size in SIZES:
        level = 0.2 - 0.8 * size**-0.5  # a saturating curve, so the fits have a trend and an exponent to find
        for seed in ("0", "1", "2"):
            noise = lambda: rng.normal(0, 0.01, len(QUERIES))  # noqa: E731
            cross = base + level + noise()
            runs.append(RunValues(CROSS, size, seed, "yo", "en", dict(zip(QUERIES, cross))))
            runs.append(RunValues(MONO, size, seed, "yo", "en", dict(zip(QUERIES, base + level - 0.03 + noise()))))
            hybrid = cross + noise() + np.where(np.arange(len(QUERIES)) % 2 == 0, hybrid_gain, 0.0)
            runs.append(RunValues(HYBRID, size, seed, "yo", "en", dict(zip(QUERIES, hybrid))))
    return runs


def test_an_injected_gain_is_found_and_reported():
    findings = build_findings("afriqa/test", "cross", "nDCG@10", study(hybrid_gain=0.1))
    [yo] = findings.languages
    assert [row.best for row in yo.leaders] == ["hybrid α=0.5"] * 4
    assert all(row.runner_up.baseline == "cross" and row.runner_up.p_holm < 0.05 for row in yo.leaders)
    assert all(abs(row.runner_up.mean_diff - 0.05) < 0.01 for row in yo.leaders)  # +0.1 on half the queries
    versus_cross = [c for c in yo.hybrid if c.baseline == "cross"]
    assert len(versus_cross) == 4 and all(c.p_holm < 0.05 for c in versus_cross)
    text = " ".join(yo.sentences)
    assert "significantly better than cross at n = 16, 64, 256, 1024" in text
    assert "Fitted exponents" in text
    table = "\n".join(to_markdown(findings))
    assert "| 1024 |" in table and "hybrid α=0.5 − cross" in table


def test_no_difference_is_never_called_significant():
    findings = build_findings("afriqa/test", "cross", "nDCG@10", study(hybrid_gain=0.0))
    [yo] = findings.languages
    versus_cross = [c for c in yo.hybrid if c.baseline == "cross"]
    assert all(c.p_holm >= 0.05 for c in versus_cross)
    text = " ".join(yo.sentences)
    assert "hybrid α=0.5 is not significantly different from cross at any size" in text
    assert "significantly better than cross" not in text


def test_the_holm_family_is_each_table_and_fewer_than_four_sizes_give_no_fit():
    runs = [r for r in study(hybrid_gain=0.1) if r.size in (0, 16, 64)]
    findings = build_findings("afriqa/test", "cross", "nDCG@10", runs)
    [yo] = findings.languages
    raw = [c.p_randomization for c in yo.hybrid]
    assert max(c.p_holm for c in yo.hybrid) <= min(1.0, len(raw) * max(raw)) + 1e-12
    assert all(c.p_holm >= c.p_randomization for c in yo.hybrid)
    assert "Scaling fits: no fit: 2 training sizes, a fit needs at least 4" in " ".join(yo.sentences)


def test_a_flat_curve_gets_no_fit_and_a_log_linear_one_no_exponent():
    """Flat within noise: no curve, exponent or crossover, with scipy's slope test; log-linear: a slope, no power law."""
    from scipy import stats

    rng = np.random.default_rng(12)
    base = rng.uniform(0.3, 0.7, len(QUERIES))
    runs = [RunValues(UNTRAINED, 0, "", "yo", "en", dict(zip(QUERIES, base)))]
    hybrid_means = []
    for size in SIZES:
        seed_means = []
        for seed in ("0", "1", "2"):
            mono = base - 0.02 * np.log10(size) + rng.normal(0, 0.001, len(QUERIES))
            hybrid = base + 0.05 + rng.normal(0, 0.05, len(QUERIES))
            runs.append(RunValues(MONO, size, seed, "yo", "en", dict(zip(QUERIES, mono))))
            runs.append(RunValues(HYBRID, size, seed, "yo", "en", dict(zip(QUERIES, hybrid))))
            seed_means.append(hybrid.mean())
        hybrid_means.append(np.mean(seed_means))
    [yo] = build_findings("afriqa/test", "cross", "nDCG@10", runs).languages
    expected = stats.linregress(np.log10(SIZES), hybrid_means)
    assert expected.pvalue >= 0.05
    assert yo.fits[HYBRID] == f"flat within noise (slope {expected.slope:+.4f} per tenfold n, p = {expected.pvalue:.3g})"
    assert yo.fits[MONO].startswith("a trend (slope -0.0200 per tenfold n, p = ")
    assert "but no power law: the exponent's interval 0.001 to" in yo.fits[MONO]
    text = " ".join(yo.sentences)
    assert f"hybrid α=0.5: {yo.fits[HYBRID]}" in text
    assert "Fitted exponents" not in text and "plateau" not in text and "curve" not in text and "overtakes" not in text


def test_a_clear_trend_gets_a_fit_with_intervals_and_a_crossover_only_with_one():
    """Saturating curves that cross: exponents with intervals inside the bounds, the crossover with its interval."""
    from analysis.fits import PowerLaw, crossover

    rng = np.random.default_rng(6)
    base = rng.uniform(0.3, 0.5, len(QUERIES))
    mono_law, hybrid_law = PowerLaw(0.25, 0.6, 0.5), PowerLaw(0.35, 1.6, 0.5)  # hybrid starts lower, ends higher
    runs = [RunValues(UNTRAINED, 0, "", "yo", "en", dict(zip(QUERIES, base)))]
    for size in SIZES:
        for seed in ("0", "1", "2"):
            for series, law in ((MONO, mono_law), (HYBRID, hybrid_law)):
                values = base + law(size) + rng.normal(0, 0.01, len(QUERIES))
                runs.append(RunValues(series, size, seed, "yo", "en", dict(zip(QUERIES, values))))
    [yo] = build_findings("afriqa/test", "cross", "nDCG@10", runs).languages
    for series, law in ((MONO, mono_law), (HYBRID, hybrid_law)):
        fit = yo.fits[series]
        assert not isinstance(fit, str), fit
        assert fit.trend.p < 0.05
        assert fit.c_interval[0] < 0.5 < fit.c_interval[1] and fit.c_interval[0] > 0.001 and fit.c_interval[1] < 3
    text = " ".join(yo.sentences)
    assert "Fitted exponents of a - b·N^-c: mono c = 0.5" in text
    true_crossing = crossover(hybrid_law, mono_law, 16, 1e5)  # (1.6 - 0.6) / 0.1 = 10, squared: n = 100
    assert true_crossing == pytest.approx(100)
    sentence = next(s for s in yo.sentences if "overtakes mono" in s)
    low, high = (float(x.replace(",", "")) for x in sentence.split("95% interval ")[1].split(")")[0].split(" to "))
    assert low < 100 < high and "within the measured sizes" in sentence


def test_a_curve_ahead_on_a_lower_is_better_measure_is_said_to_be_below():
    """LangBias-like: hybrid lower (better) than mono at every size; the fit sentence must not say 'above'."""
    rng = np.random.default_rng(3)
    base = rng.uniform(100, 140, len(QUERIES))
    runs = [RunValues(UNTRAINED, 0, "", "yo", "all", dict(zip(QUERIES, base)))]
    for size in SIZES:
        for seed in ("0", "1", "2"):
            mono = base + 80 * size**-0.5 + rng.normal(0, 0.1, len(QUERIES))
            runs.append(RunValues(MONO, size, seed, "yo", "all", dict(zip(QUERIES, mono))))
            runs.append(RunValues(HYBRID, size, seed, "yo", "all", dict(zip(QUERIES, mono - 5))))
    [yo] = build_findings("flores/test", "multi", "LangBias", runs, lower_is_better=True).languages
    text = " ".join(yo.sentences)
    assert "The fitted hybrid α=0.5 curve is below mono (lower is better) from the smallest size (n = 16) on" in text
    assert "is above mono" not in text


def ceiling_study() -> list[RunValues]:
    """mono, cross and hybrid with every query perfect at every size (FLORES cross at 1.0000), two seeds."""
    ones = dict.fromkeys(QUERIES, 1.0)
    runs = [RunValues(UNTRAINED, 0, "", "yo", "en", dict(zip(QUERIES, np.linspace(0.9, 1.0, len(QUERIES)))))]
    for size in SIZES:
        for seed in ("0", "1"):
            runs += [RunValues(series, size, seed, "yo", "en", ones) for series in (MONO, CROSS, HYBRID)]
    return runs


def test_series_at_the_ceiling_tie_for_best_instead_of_one_being_named():
    findings = build_findings("flores/test", "cross", "nDCG@10", ceiling_study())
    [yo] = findings.languages
    assert all(set(row.tied) == {"mono", "cross", "hybrid α=0.5"} and row.tied[0] == row.best for row in yo.leaders)
    first = yo.sentences[0]
    assert "mono, cross and hybrid α=0.5 tie for best (1.0000, 2 seeds)" in first
    assert "is best" not in first and "lead over" not in first
    assert yo.sentences[1].startswith(f"Against untrained m {yo.leaders[-1].best}, the first of them, differs by +")
    assert "| tie: " in "\n".join(to_markdown(findings))

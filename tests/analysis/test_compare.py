"""Comparisons over seeds and queries: seed averaging, references, Holm over the family, skipped cells."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.compare import FIELDS, CompareError, RunValues, compare
from analysis.stats import paired_test
from vocabulary.series import SeriesName

QUERIES = [f"q{i}" for i in range(20)]


def runs(series: str, size: int, per_seed: dict[str, list[float]], x: str = "sw", y: str = "en") -> list[RunValues]:
    return [RunValues(series, size, seed, x, y, dict(zip(QUERIES, values))) for seed, values in per_seed.items()]


def test_values_are_averaged_over_shared_seeds_before_pairing():
    rng = np.random.default_rng(0)
    a = {s: list(rng.random(20)) for s in ("0", "1", "2")}
    b = {s: list(rng.random(20)) for s in ("0", "1")}  # seed 2 is missing on this side
    hybrid, cross = SeriesName("hybrid α=0.5", "hybrid", 0.5), SeriesName("cross", "cross")
    [result] = compare(runs(hybrid, 64, a) + runs(cross, 64, b), baseline="cross")
    order = np.argsort(QUERIES)  # pairs are formed in query-id order
    mean_a = np.mean([a["0"], a["1"]], axis=0)[order]
    mean_b = np.mean([b["0"], b["1"]], axis=0)[order]
    expected = paired_test(mean_a, mean_b)
    assert (result.strategy, result.baseline, result.size, result.n_seeds) == (hybrid, cross, 64, 2)
    assert result.mean_diff == pytest.approx(expected.mean_diff)
    assert result.p_randomization == pytest.approx(expected.p_randomization)
    assert result.p_holm == pytest.approx(result.p_randomization)  # a family of one
    per_seed_a = [np.mean(a[s]) for s in ("0", "1")]
    assert result.seed_sd_strategy == pytest.approx(np.std(per_seed_a, ddof=1))
    row = result.as_dict()
    assert list(row) == list(FIELDS)
    # Each side as its strategy key, its alpha and its series name, never one label to parse.
    assert {k: row[k] for k in FIELDS[:6]} == {"strategy": "hybrid", "alpha": 0.5, "series": "hybrid α=0.5",
                                               "baseline": "cross", "baseline_alpha": None, "baseline_series": "cross"}


def test_a_reference_pairs_with_every_seed_and_every_size():
    trained = runs("mono", 16, {"0": [0.5] * 20, "1": [0.7] * 20}) + runs("mono", 64, {"0": [0.9] * 20})
    untrained = [RunValues("untrained m", 0, "", "sw", "en", dict(zip(QUERIES, [0.4] * 20)))]
    results = compare(trained + untrained, baseline="untrained m")
    assert [(r.size, r.n_seeds, r.seed_sd_baseline) for r in results] == [(16, 2, None), (64, 1, None)]
    assert [r.mean_diff for r in results] == pytest.approx([0.2, 0.5])


def test_two_references_are_compared_once_not_at_every_size():
    trained = runs("mono", 16, {"0": [0.5] * 20}) + runs("mono", 64, {"0": [0.9] * 20})
    references = [RunValues(name, 0, "", "sw", "en", dict(zip(QUERIES, [value] * 20)))
                  for name, value in (("BM25", 0.3), ("untrained m", 0.4))]
    pairs = [(r.strategy, r.baseline, r.size) for r in compare(trained + references)]
    assert pairs == [("BM25", "untrained m", 0), ("BM25", "mono", 16), ("mono", "untrained m", 16),
                     ("BM25", "mono", 64), ("mono", "untrained m", 64)]


def test_holm_runs_over_every_comparison_returned():
    rng = np.random.default_rng(1)
    series = []
    for name, shift in (("a", 0.0), ("b", 0.02), ("c", 0.3)):
        series += runs(name, 16, {"0": list(rng.random(20) + shift)})
    results = compare(series)  # every pair: a-b, a-c, b-c
    assert len(results) == 3
    raw = sorted(r.p_randomization for r in results)
    assert sorted(r.p_holm for r in results)[0] == pytest.approx(min(1.0, 3 * raw[0]))


def test_cells_without_shared_queries_are_skipped_and_unknown_baselines_refused():
    left = [RunValues("a", 16, "0", "sw", "en", {"q1": 0.1})]
    right = [RunValues("b", 16, "0", "sw", "en", {"q2": 0.1})]
    assert compare(left + right) == []
    with pytest.raises(CompareError, match="no series 'zz'"):
        compare(left + right, baseline="zz")

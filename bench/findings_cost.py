"""The Findings page's cost: one paired test (a "cell" of a table) and a whole study's findings.

    python bench/findings_cost.py [--queries 1000] [--seeds 3] [--repeat 3]

A synthetic study shaped like the paper's (mono, cross, hybrid at three
alphas, multi and cross+semantic; four training sizes; ``--seeds`` seeds; the
untrained model and BM25 as references; sw and yo queries) with random
per-query values, so the cost does not depend on a database. It prints:

* the cost of one cell's test, ours (:func:`analysis.stats.paired_test`:
  sign flips as one matrix product, scipy's bootstrap) against the plain scipy
  peer (``scipy.stats.permutation_test`` and ``scipy.stats.bootstrap``, the
  same resample counts), with the ratio;
* the whole findings (:func:`analysis.findings.build_findings`, fits
  included), with the number of tests it ran, against testing every pair of
  series first (:func:`analysis.compare.compare`, what the page did before).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import stats

from analysis.compare import RunValues, compare
from analysis.findings import build_findings
from analysis.stats import BOOTSTRAP_RESAMPLES, RANDOMISATION_RESAMPLES, paired_test
from vocabulary.series import SeriesName

SERIES = [SeriesName("mono", "mono"), SeriesName("cross", "cross"), SeriesName("multi", "multi"),
          SeriesName("cross+semantic", "contrastive"),
          *(SeriesName(f"hybrid α={a}", "hybrid", a) for a in (0.25, 0.5, 0.75))]
REFERENCES = [SeriesName("untrained m"), SeriesName("BM25", lexical=True)]
SIZES = (75, 225, 675, 2025)


def study(queries: int, seeds: int) -> list[RunValues]:
    rng = np.random.default_rng(0)
    ids = [f"q{i}" for i in range(queries)]
    runs = []
    for language in ("sw", "yo"):
        for reference in REFERENCES:
            runs.append(RunValues(reference, 0, "", language, "en", dict(zip(ids, rng.random(queries)))))
        for series in SERIES:
            for size in SIZES:
                for seed in range(seeds):
                    runs.append(RunValues(series, size, str(seed), language, "en", dict(zip(ids, rng.random(queries)))))
    return runs


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def scipy_peer(a: np.ndarray, b: np.ndarray) -> None:
    d = a - b
    stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=RANDOMISATION_RESAMPLES,
                           vectorized=True, rng=np.random.default_rng(0))
    stats.bootstrap((d,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, method="BCa", rng=np.random.default_rng(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    a, b = rng.random(args.queries), rng.random(args.queries)
    paired_test(a, b)  # warm-up (and the sign patterns drawn once, as in a study)
    ours = timed(lambda: paired_test(a, b), args.repeat * 5)
    peer = timed(lambda: scipy_peer(a, b), args.repeat)
    print(f"one cell, {args.queries} queries: ours {ours * 1000:.1f} ms, scipy peer {peer * 1000:.1f} ms, "
          f"ratio peer / ours {peer / ours:.1f}x")

    runs = study(args.queries, args.seeds)
    found = build_findings("synthetic", "cross", "nDCG@10", runs)
    tests = sum(len(f.hybrid) + sum(1 + len(r.versus_references) for r in f.leaders) for f in found.languages)
    whole = timed(lambda: build_findings("synthetic", "cross", "nDCG@10", runs), args.repeat)
    every_pair_count = 0

    def every_pair() -> None:
        nonlocal every_pair_count
        every_pair_count = sum(len(compare([r for r in runs if r.query_language == x])) for x in ("sw", "yo"))
    all_pairs = timed(every_pair, 1)
    print(f"whole findings ({len(runs)} runs x cells, {len(SERIES)} series, {len(SIZES)} sizes, {args.seeds} seeds, "
          f"2 languages): {whole:.2f} s for {tests} table tests and the fits "
          f"({whole / tests * 1000:.0f} ms per test, fits included); testing every pair first: {all_pairs:.2f} s "
          f"for {every_pair_count} tests")


if __name__ == "__main__":
    main()

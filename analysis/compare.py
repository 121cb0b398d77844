"""Paired comparisons of strategies at each training size, on per-query values averaged over shared seeds.

For one eval set, setting and metric, every (training size, query language,
passage language) cell compares series A with series B:

1. the seeds both have are kept (a reference without seeds, such as the
   untrained model or BM25, pairs with every seed of the other side);
2. each side's value of a query is its mean over those seeds;
3. the queries both sides scored are paired, and :func:`analysis.stats.paired_test`
   gives the mean difference A - B, its bootstrap interval and both p-values;
4. Holm's adjustment runs over the whole family of comparisons returned, so
   ``p_holm`` is only as strong as the number of tests asked for deserves.

The between-seed spread of a side is the sample standard deviation, over the
shared seeds, of that side's mean over the paired queries (None with one
seed: one seed says nothing about spread).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from analysis.stats import holm, paired_test
from vocabulary.series import SeriesName

#: What the JSON objects of ``hybridscale compare`` (and the rows of comparisons.csv) carry, in this order:
#: each side as its strategy key, its alpha (empty unless the strategy uses one) and its series label.
FIELDS: tuple[str, ...] = (
    "strategy", "alpha", "series", "baseline", "baseline_alpha", "baseline_series", "size", "query_language",
    "passage_language", "mean_diff", "ci_low", "ci_high",
    "p_ttest", "p_randomization", "p_holm", "n_queries", "n_seeds", "seed_sd_strategy", "seed_sd_baseline",
)


@dataclass(frozen=True)
class RunValues:
    """One run's per-query values in one cell, with what places it: its series, size and seed."""

    series: SeriesName
    size: int
    seed: str  # the replicate: its seeds as text; "" for a run that has none (an evaluation-only reference)
    query_language: str
    passage_language: str
    values: Mapping[str, float]


@dataclass(frozen=True)
class Comparison:
    """Series ``strategy`` minus series ``baseline`` in one cell and size."""

    strategy: SeriesName
    baseline: SeriesName
    size: int
    query_language: str
    passage_language: str
    mean_diff: float
    ci_low: float
    ci_high: float
    p_ttest: float
    p_randomization: float
    p_holm: float
    n_queries: int
    n_seeds: int
    seed_sd_strategy: float | None
    seed_sd_baseline: float | None

    def as_dict(self) -> dict:
        sides = {"strategy": self.strategy.strategy, "alpha": self.strategy.alpha, "series": str(self.strategy),
                 "baseline": self.baseline.strategy, "baseline_alpha": self.baseline.alpha,
                 "baseline_series": str(self.baseline)}
        values = {**asdict(self), **sides}
        return {name: values[name] for name in FIELDS}


class CompareError(ValueError):
    """The comparison asked for has nothing to compare (no such baseline, no shared queries)."""


def compare(runs: Iterable[RunValues], baseline: str | None = None, seed: int = 0) -> list[Comparison]:
    """Every series against ``baseline`` (or every pair of series) in every cell where both were measured.

    References (runs without a seed, at size 0) are compared at each size of
    the series they are paired with, and with each other once, at size 0.
    Pairs with no common query are skipped.
    """
    cells: dict[tuple[int, str, str], dict[str, dict[str, Mapping[str, float]]]] = {}
    references: dict[tuple[str, str], dict[str, Mapping[str, float]]] = {}
    for run in runs:
        if run.seed == "" and run.size == 0:
            references.setdefault((run.query_language, run.passage_language), {})[run.series] = run.values
        else:
            cell = cells.setdefault((run.size, run.query_language, run.passage_language), {})
            cell.setdefault(run.series, {})[run.seed] = run.values
    known = {name for cell in cells.values() for name in cell} | {name for ref in references.values() for name in ref}
    if baseline is not None and baseline not in known:
        raise CompareError(f"no series {baseline!r} in these results; choose one of {', '.join(sorted(known))}")
    if baseline is not None:
        baseline = next(name for name in known if name == baseline)  # the series itself, with its strategy and alpha
    pending: list[tuple] = []
    # Two references are compared once per language cell, at size 0, not again at every trained size.
    reference_cells = {(0, x, y): {} for (x, y) in references}
    for (size, x, y), by_series in sorted({**reference_cells, **cells}.items()):
        in_cell = references.get((x, y), {})
        sides = {name: seeds for name, seeds in by_series.items()}
        sides.update({name: {"": values} for name, values in in_cell.items()})
        for a, b in _pairs(sorted(sides), baseline):
            if size > 0 and a in in_cell and b in in_cell:
                continue
            result = _compare_pair(sides[a], sides[b], seed)
            if result is not None:
                pending.append((a, b, size, x, y, *result))
    adjusted = holm([row[-1] for row in pending])  # p_randomization is the family's test
    return [
        Comparison(a, b, size, x, y, test.mean_diff, test.ci_low, test.ci_high, test.p_ttest, test.p_randomization,
                   p_holm, test.n_queries, n_seeds, sd_a, sd_b)
        for (a, b, size, x, y, test, n_seeds, sd_a, sd_b, _p), p_holm in zip(pending, adjusted)
    ]


def _pairs(names: Sequence[str], baseline: str | None) -> list[tuple[str, str]]:
    if baseline is None:
        return list(itertools.combinations(names, 2))
    return [(name, baseline) for name in names if name != baseline and baseline in names]


def _compare_pair(a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]], seed: int):
    """(test, seeds used, spread of a, spread of b, p for Holm) or None when nothing is shared."""
    a_reference, b_reference = "" in a, "" in b
    if a_reference or b_reference:  # a reference pairs with every seed of the other side
        seeds_a = [""] if a_reference else sorted(a)
        seeds_b = [""] if b_reference else sorted(b)
    else:
        seeds_a = seeds_b = sorted(set(a) & set(b))
    if not seeds_a:
        return None
    queries = sorted(set.intersection(*(set(a[s]) for s in seeds_a), *(set(b[s]) for s in seeds_b)))
    if not queries:
        return None
    mean_a = np.array([[a[s][q] for q in queries] for s in seeds_a]).mean(axis=0)
    mean_b = np.array([[b[s][q] for q in queries] for s in seeds_b]).mean(axis=0)
    test = paired_test(mean_a, mean_b, seed)
    n_seeds = max(len(seeds_a), len(seeds_b))
    return test, n_seeds, _seed_spread(a, seeds_a, queries), _seed_spread(b, seeds_b, queries), test.p_randomization


def _seed_spread(side: Mapping[str, Mapping[str, float]], seeds: Sequence[str], queries: Sequence[str]) -> float | None:
    if len(seeds) < 2:
        return None
    means = [float(np.mean([side[s][q] for q in queries])) for s in seeds]
    spread = float(np.std(means, ddof=1))
    return spread if math.isfinite(spread) else None

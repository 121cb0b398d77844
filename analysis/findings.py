"""The findings of one eval set, setting and metric: tables of means and tests, fits, and plain sentences.

For each query language (and passage language) and training size the
*leader table* gives every series' mean over seeds with its between-seed
spread, the best series, and its difference to the runner-up and to each
reference (the untrained model, BM25), each with its Holm-adjusted
randomisation p-value. The *hybrid table* compares every hybrid series (each
series whose strategy trains with a share alpha, as the strategy table says)
with every other trained series at every size, because that is the research
question. Holm runs over each table's own tests (its family), for both
languages and every size together, and the tables say so.

Sentences are generated from those tables alone, and only say what a table
row supports: "significant" means Holm p < :data:`SIGNIFICANCE`; everything
else is reported as not significant, with the smallest p seen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from analysis.compare import Comparison, RunValues, compare
from analysis.fits import (
    MIN_SIZES,
    FitError,
    ScalingFit,
    Trend,
    crossover,
    crossover_interval,
    fit_with_intervals,
    saturates,
    why_not_shown,
)
from analysis.stats import SIGNIFICANCE, holm
from vocabulary.languages import language_name
from vocabulary.records import LOWER_IS_BETTER
from vocabulary.series import SeriesName, series_order

#: Means are shown to this many decimals; series whose means agree to them tie for best.
DECIMALS = 4


@dataclass(frozen=True)
class Mean:
    series: SeriesName
    size: int
    mean: float
    spread: float | None  # sd over seeds; None with one seed
    n_seeds: int
    n_queries: int


@dataclass(frozen=True)
class LeaderRow:
    size: int
    means: tuple[Mean, ...]  # every series at this size, display order
    best: SeriesName
    runner_up: Comparison | None
    versus_references: tuple[Comparison, ...]
    #: Every series whose mean equals the best's to DECIMALS, in display order (the best first).
    tied: tuple[SeriesName, ...] = ()

    @property
    def best_label(self) -> str:
        """The best series, or "tie: A, B, ..." when several share its shown mean."""
        return self.best if len(self.tied) < 2 else "tie: " + ", ".join(self.tied)


@dataclass
class LanguageFindings:
    query_language: str
    passage_language: str
    references: tuple[Mean, ...]
    leaders: list[LeaderRow] = field(default_factory=list)
    hybrid: list[Comparison] = field(default_factory=list)
    #: series -> fit, or why none is shown (too few sizes, flat within noise, no power law)
    fits: dict[SeriesName, ScalingFit | str] = field(default_factory=dict)
    #: series -> the slope of its means over log N, for every series with enough sizes for a fit
    trends: dict[SeriesName, Trend] = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)


@dataclass
class Findings:
    eval_set: str
    setting: str
    metric: str
    lower_is_better: bool
    languages: list[LanguageFindings]


def _better(lower_is_better: bool, a: float, b: float) -> bool:
    return a < b if lower_is_better else a > b


def _means(runs: Sequence[RunValues]) -> dict[tuple[str, str, int, SeriesName], Mean]:
    """(x, y, size, series) -> mean over seeds of the per-seed mean over queries."""
    grouped: dict[tuple[str, str, int, SeriesName], dict[str, list[float]]] = {}
    for run in runs:
        key = (run.query_language, run.passage_language, run.size, run.series)
        grouped.setdefault(key, {})[run.seed] = list(run.values.values())
    result = {}
    for key, by_seed in grouped.items():
        seed_means = [float(np.mean(v)) for v in by_seed.values() if v]
        spread = float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else None
        queries = max(len(v) for v in by_seed.values())
        result[key] = Mean(key[3], key[2], float(np.mean(seed_means)), spread, len(seed_means), queries)
    return result


def build_findings(eval_set: str, setting: str, metric: str, runs: Iterable[RunValues], *,
                   lower_is_better: bool | None = None, seed: int = 0) -> Findings:
    """The findings of one eval set, setting and metric; ``lower_is_better`` defaults to the metric's own
    direction (:data:`vocabulary.records.LOWER_IS_BETTER`)."""
    if lower_is_better is None:
        lower_is_better = metric in LOWER_IS_BETTER
    runs = list(runs)
    means = _means(runs)
    cells = sorted({(x, y) for x, y, _size, _series in means})
    languages = []
    leader_tests: list[Comparison] = []
    hybrid_tests: list[Comparison] = []
    for x, y in cells:
        in_cell = [r for r in runs if (r.query_language, r.passage_language) == (x, y)]
        references = tuple(m for (mx, my, size, _), m in means.items() if (mx, my) == (x, y) and size == 0)
        found = LanguageFindings(x, y, tuple(sorted(references, key=lambda m: m.series)))
        pairwise = _Pairs(in_cell, seed)
        for size in sorted({s for (mx, my, s, _) in means if (mx, my) == (x, y) and s > 0}):
            row = _leader_row(size, [m for (mx, my, s, _), m in means.items() if (mx, my, s) == (x, y, size)],
                              references, pairwise, lower_is_better)
            found.leaders.append(row)
            leader_tests += [c for c in (row.runner_up, *row.versus_references) if c is not None]
            hybrid_tests += _hybrid_tests(size, [m.series for m in row.means], pairwise, found)
        found.fits, found.trends = _fits(in_cell, seed)
        languages.append(found)
    adjusted = {**_family_p(leader_tests), **_family_p(hybrid_tests)}
    for found in languages:
        found.leaders = [_with_family_p(row, adjusted) for row in found.leaders]
        found.hybrid = [dataclasses.replace(c, p_holm=adjusted[id(c)]) for c in found.hybrid]
    findings = Findings(eval_set, setting, metric, lower_is_better, languages)
    for found in languages:
        found.sentences = _sentences(findings, found)
    return findings


class _Pairs:
    """The comparisons of one language cell, each tested when a table first asks for it.

    The tables use a few pairs per size (best against runner-up and the
    references, hybrid against the others), not every pair of series, and a
    test costs thousands of resamples: testing all pairs up front was most of
    a study's findings time. A pair is tested exactly as :func:`compare` tests
    it among all the others (same runs, same seed, same direction).
    """

    def __init__(self, runs: Sequence[RunValues], seed: int) -> None:
        self._runs = runs
        self._seed = seed
        self._tested: dict[tuple[str, str, int], Comparison | None] = {}

    def _test(self, a: str, b: str, size: int) -> Comparison | None:
        key = (a, b, size) if a <= b else (b, a, size)  # compare() orders each pair by name
        if key not in self._tested:
            runs = [r for r in self._runs if r.series in key[:2] and (r.size == size or (r.seed == "" and r.size == 0))]
            found = [c for c in compare(runs, seed=self._seed) if (c.strategy, c.baseline, c.size) == key]
            self._tested[key] = found[0] if found else None
        return self._tested[key]

    def oriented(self, a: str, b: str, size: int) -> Comparison | None:
        """A new comparison a - b at ``size``, or None when the two share no query there.

        Always a new object: the same pair may sit in two tables, each with its own family's Holm p.
        """
        tested = self._test(a, b, size)
        if tested is None:
            return None
        if (tested.strategy, tested.baseline) == (a, b):
            return dataclasses.replace(tested)
        return Comparison(a, b, size, tested.query_language, tested.passage_language, -tested.mean_diff,
                          -tested.ci_high, -tested.ci_low, tested.p_ttest, tested.p_randomization, tested.p_holm,
                          tested.n_queries, tested.n_seeds, tested.seed_sd_baseline, tested.seed_sd_strategy)


def _leader_row(size: int, at_size: list[Mean], references: Sequence[Mean], pairwise: _Pairs,
                lower_is_better: bool) -> LeaderRow:
    ordered = sorted(at_size, key=lambda m: series_order(m.series))
    ranked = sorted(at_size, key=lambda m: m.mean, reverse=not lower_is_better)
    top = round(ranked[0].mean, DECIMALS)
    tied = tuple(m.series for m in ordered if round(m.mean, DECIMALS) == top)
    best = tied[0]  # of a tie, the first in display order, so the tests beside it do not depend on rounding noise
    others = [m for m in ranked if m.series != best]
    runner_up = pairwise.oriented(best, others[0].series, size) if others else None
    versus = tuple(c for ref in references if (c := pairwise.oriented(best, ref.series, size)) is not None)
    return LeaderRow(size, tuple(ordered), best, runner_up, versus, tied)


def _hybrid_tests(size: int, series: list[SeriesName], pairwise: _Pairs, found: LanguageFindings) -> list[Comparison]:
    tests = []
    for hybrid in (s for s in series if s.uses_alpha):
        for other in sorted((s for s in series if s != hybrid), key=series_order):
            comparison = pairwise.oriented(hybrid, other, size)
            if comparison is not None:
                found.hybrid.append(comparison)
                tests.append(comparison)
    return tests


def _family_p(tests: list[Comparison]) -> dict[int, float]:
    """Holm over one table's family: the adjusted p of each test, by object identity."""
    return {id(test): p for test, p in zip(tests, holm([t.p_randomization for t in tests]))}


def _with_family_p(row: LeaderRow, adjusted: dict[int, float]) -> LeaderRow:
    def replaced(c: Comparison | None) -> Comparison | None:
        return None if c is None else dataclasses.replace(c, p_holm=adjusted[id(c)])

    return dataclasses.replace(row, runner_up=replaced(row.runner_up),
                               versus_references=tuple(replaced(c) for c in row.versus_references))


def _fits(runs: Sequence[RunValues], seed: int) -> tuple[dict[SeriesName, ScalingFit | str], dict[SeriesName, Trend]]:
    by_series: dict[SeriesName, dict[int, dict[str, dict[str, float]]]] = {}
    for run in runs:
        if run.size > 0:
            by_series.setdefault(run.series, {}).setdefault(run.size, {})[run.seed] = dict(run.values)
    fits: dict[SeriesName, ScalingFit | str] = {}
    trends: dict[SeriesName, Trend] = {}
    for series, values in sorted(by_series.items(), key=lambda item: series_order(item[0])):
        if len(values) < MIN_SIZES:
            sizes = f"{len(values)} training size{'' if len(values) == 1 else 's'}"
            fits[series] = f"no fit: {sizes}, a fit needs at least {MIN_SIZES}"
            continue
        try:
            fit = fit_with_intervals(values, seed=seed)
        except FitError as error:
            fits[series] = f"no fit: {error}"
            continue
        reason = why_not_shown(fit)
        fits[series] = fit if reason is None else reason
        trends[series] = fit.trend
    return fits, trends


# ---- sentences ------------------------------------------------------------------------------
def signed(value: float) -> str:
    """A difference with its sign and 4 decimals; one that rounds to zero is written 0.0000 (never -0.0000)."""
    text = f"{value:+.4f}"
    return "0.0000" if float(text) == 0 else text


def _p(comparison: Comparison) -> str:
    verdict = "significant" if comparison.p_holm < SIGNIFICANCE else "not significant"
    return f"Holm p = {comparison.p_holm:.3g}, {verdict}"


def _difference(comparison: Comparison) -> str:
    return (f"{signed(comparison.mean_diff)} (95% CI {signed(comparison.ci_low)} to {signed(comparison.ci_high)}; "
            f"{_p(comparison)})")


def _sentences(findings: Findings, found: LanguageFindings) -> list[str]:
    where = f"{language_name(found.query_language)} ({found.query_language}) queries"
    if found.passage_language not in (found.query_language, "all"):
        where += f" against {language_name(found.passage_language)} passages"
    if not found.leaders:
        return [f"{where}: no trained run was measured."]
    sentences = []
    last = found.leaders[-1]
    best = next(m for m in last.means if m.series == last.best)
    seeds = f"{best.n_seeds} seed{'s' if best.n_seeds != 1 else ''}"
    if len(last.tied) > 1:
        names = last.tied
        text = (f"{where}, {findings.metric}: at the largest size (n={last.size}) {', '.join(names[:-1])} and "
                f"{names[-1]} tie for best ({best.mean:.{DECIMALS}f}, {seeds})")
        subject = f"{last.best}, the first of them,"
    else:
        text = f"{where}, {findings.metric}: at the largest size (n={last.size}) {last.best} is best " \
               f"({best.mean:.{DECIMALS}f}, {seeds})"
        if last.runner_up is not None:
            text += f"; its lead over {last.runner_up.baseline} is {_difference(last.runner_up)}"
        subject = "it"
    sentences.append(text + ".")
    for ref in last.versus_references:
        sentences.append(f"Against {ref.baseline} {subject} differs by {_difference(ref)}.")
    sentences += _hybrid_sentences(findings, found)
    sentences += _fit_sentences(found, findings.lower_is_better)
    return sentences


def _hybrid_sentences(findings: Findings, found: LanguageFindings) -> list[str]:
    sentences = []
    for hybrid in sorted({c.strategy for c in found.hybrid}, key=series_order):
        for other in sorted({c.baseline for c in found.hybrid if c.strategy == hybrid}, key=series_order):
            tests = [c for c in found.hybrid if (c.strategy, c.baseline) == (hybrid, other)]
            significant = [c for c in tests if c.p_holm < SIGNIFICANCE]
            better = [c for c in significant if _better(findings.lower_is_better, c.mean_diff, 0)]
            worse = [c for c in significant if not _better(findings.lower_is_better, c.mean_diff, 0)]
            if not better and not worse:
                smallest = min(c.p_holm for c in tests)
                sentences.append(f"{hybrid} is not significantly different from {other} at any size "
                                 f"(smallest Holm p = {smallest:.3g} over {len(tests)} size{'s' if len(tests) != 1 else ''}).")
                continue
            parts = []
            if better:
                parts.append(f"significantly better than {other} at n = {', '.join(str(c.size) for c in better)}")
            if worse:
                parts.append(f"significantly worse than {other} at n = {', '.join(str(c.size) for c in worse)}")
            rest = len(tests) - len(better) - len(worse)
            tail = f"; not significant at the other {rest} size{'s' if rest != 1 else ''}" if rest else ""
            sentences.append(f"{hybrid} is {' and '.join(parts)} (Holm p < {SIGNIFICANCE}){tail}.")
    return sentences


def _fit_sentences(found: LanguageFindings, lower_is_better: bool) -> list[str]:
    fitted = {s: f for s, f in found.fits.items() if isinstance(f, ScalingFit)}
    unfitted = {s: f for s, f in found.fits.items() if isinstance(f, str)}
    sentences = []
    if unfitted:
        reasons = set(unfitted.values())
        if len(reasons) == 1 and len(unfitted) > 1:
            sentences.append(f"Scaling fits: {reasons.pop()} (every series).")
        else:
            sentences.append("Scaling fits: " + "; ".join(f"{s}: {reason}" for s, reason in unfitted.items()) + ".")
    if not fitted:
        return sentences
    parts = []
    for series, fit in fitted.items():
        if not saturates(fit.curve):
            parts.append(f"{series}: no levelling off (c = {fit.curve.c:.3g}: a logarithmic trend or a step, "
                         "so no plateau is given)")
            continue
        interval = f" (95% CI {fit.c_interval[0]:.2f} to {fit.c_interval[1]:.2f})" if fit.c_interval else ""
        parts.append(f"{series} c = {fit.curve.c:.2f}{interval}, plateau a = {fit.curve.a:.4f}")
    sentences.append("Fitted exponents of a - b·N^-c: " + "; ".join(parts) + ".")
    for hybrid in (s for s in fitted if s.uses_alpha):
        for other, fit in fitted.items():
            if other != hybrid:
                sentences += _crossover_sentence(fitted[hybrid], hybrid, fit, other, lower_is_better)
    return sentences


def _crossover_sentence(hybrid_fit: ScalingFit, hybrid: str, other_fit: ScalingFit, other: str,
                        lower_is_better: bool) -> list[str]:
    """Where the fitted hybrid curve overtakes ``other``, only with its bootstrap interval (none when open)."""
    sizes = hybrid_fit.sizes
    first, second = (other_fit, hybrid_fit) if lower_is_better else (hybrid_fit, other_fit)
    low, high = min(sizes), max(sizes) * 100
    at = crossover(first.curve, second.curve, low, high)
    interval = crossover_interval(first, second, low, high)
    if at is None or interval is None:
        return []
    span = f"95% interval {interval[0]:,.0f} to {interval[1]:,.0f}"
    if interval[1] <= low:
        side = "below" if lower_is_better else "above"
        better = " (lower is better)" if lower_is_better else ""
        return [f"The fitted {hybrid} curve is {side} {other}{better} from the smallest size (n = {low}) on "
                f"in 97.5% of the bootstrap refits; a fit is not a test."]
    inside = "within" if at <= max(sizes) else "beyond (an extrapolation of)"
    return [f"The fitted {hybrid} curve overtakes {other} at about n = {max(at, low):,.0f} ({span}), "
            f"{inside} the measured sizes; a fit is not a test."]


# ---- markdown ---------------------------------------------------------------------------------------------
def _cell(mean: Mean) -> str:
    spread = f" ± {mean.spread:.4f}" if mean.spread is not None else " (1 seed)"
    return f"{mean.mean:.4f}{spread}"


def _brief(comparison: Comparison | None) -> str:
    if comparison is None:
        return "–"
    star = " *" if comparison.p_holm < SIGNIFICANCE else ""
    return f"{signed(comparison.mean_diff)} vs {comparison.baseline} (p {comparison.p_holm:.3g}){star}"


def to_markdown(findings: Findings) -> list[str]:
    direction = "lower is better" if findings.lower_is_better else "higher is better"
    lines = [f"### {findings.metric} on {findings.eval_set}, {findings.setting} setting ({direction})", ""]
    for found in findings.languages:
        lines += [f"**{language_name(found.query_language)} ({found.query_language}) → "
                  f"{'all languages' if found.passage_language == 'all' else found.passage_language}**", ""]
        series = sorted({m.series for row in found.leaders for m in row.means}, key=series_order)
        lines.append("| n | " + " | ".join(series) + " | best | vs runner-up | vs references |")
        lines.append("|---" * (len(series) + 4) + "|")
        for ref in found.references:
            lines.append(f"| 0 ({ref.series}) | " + " | ".join("" for _ in series) + f" | {ref.mean:.4f} | | |")
        for row in found.leaders:
            by_series = {m.series: m for m in row.means}
            values = " | ".join(_cell(by_series[s]) if s in by_series else "–" for s in series)
            refs = "; ".join(_brief(c) for c in row.versus_references) or "–"
            lines.append(f"| {row.size} | {values} | {row.best_label} | {_brief(row.runner_up)} | {refs} |")
        lines.append("")
        if found.hybrid:
            lines += ["Hybrid against each other strategy (difference hybrid − other):", "",
                      "| n | comparison | difference | 95% CI | Holm p |", "|---|---|---|---|---|"]
            for c in found.hybrid:
                star = " *" if c.p_holm < SIGNIFICANCE else ""
                lines.append(f"| {c.size} | {c.strategy} − {c.baseline} | {signed(c.mean_diff)} | "
                             f"{signed(c.ci_low)} to {signed(c.ci_high)} | {c.p_holm:.3g}{star} |")
            lines.append("")
        lines += [*(f"- {s}" for s in found.sentences), ""]
    lines += [f"Means are over seeds of the mean over queries (± the sample sd over seeds). Tests pair "
              f"queries, each averaged over the seeds both sides share: randomisation test, Holm-adjusted over "
              f"each table's family (all its rows, both languages); * marks p < {SIGNIFICANCE}.", ""]
    return lines

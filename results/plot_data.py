"""Turn tidy metric rows into what the plots draw: curves, baselines and heatmaps.

Qt-free on purpose (napari style): the scaling view, the heatmap view and the
headless figures of ``hybridscale demo`` all draw from these plain objects,
and the tests check them against hand-computed numbers without a display.

Rows are the dicts of :func:`storage.queries.tidy_metrics` (one per run x eval
set x setting x query language x passage language x metric). Runs are pooled
by their ``series`` column: only runs that differ in their seeds alone are
averaged as seeds of one point (:mod:`vocabulary.series`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vocabulary.languages import TARGET_LANGUAGES
from vocabulary.records import ALL, LOWER_IS_BETTER
from vocabulary.series import SeriesName
from vocabulary.strategies import NO_TRAINING, strategy_position

#: Measures that are shares, in [0, 1] (by name before any "@k"): their colour scale is the whole interval.
UNIT_INTERVAL_MEASURES = frozenset({"nDCG", "RR", "R", "AP", "P"})


def in_unit_interval(metric: str) -> bool:
    """Whether every value of ``metric`` lies in [0, 1] (nDCG@10 does; MeanRank and LangBias do not)."""
    return metric.split("@")[0] in UNIT_INTERVAL_MEASURES
#: What each metric measures, for the pick lists' tooltips and the About box (engine/metrics.py has the detail).
METRIC_HELP: dict[str, str] = {
    "nDCG@10": "normalised discounted cumulative gain of the top 10; higher is better",
    "RR@10": "reciprocal rank of the first relevant passage within the top 10; higher is better",
    "R@100": "share of the relevant passages retrieved in the top 100; higher is better",
    "AP": "average precision of the ranking retrieved (top k); higher is better",
    "MeanRank": "mean, over a query language's queries, of the rank in the whole multilingual pool of the best "
                "relevant passage in the passage language; lower is better",
    "LangBias": "for each query with answers in several languages, the rank of its worst-placed language minus the "
                "rank of its best-placed one (each by its best relevant passage), averaged; 0: no language is "
                "preferred; lower is better",
}
#: Points of two series closer than this share of a panel's value range hide each other on screen
#: (markers are 8 pixels on panels a few hundred pixels tall): their tooltips name both.
COINCIDE_SHARE = 0.02

Row = Mapping[str, Any]


def series_order(strategy: str, name: str) -> tuple[int, str]:
    return (strategy_position(strategy), name)


def _pick_order(values: Iterable[Any]) -> list[Any]:
    return sorted(set(values), key=lambda v: (v == ALL, str(v)))


#: The columns that choose what one scaling plot shows, in the order the pick lists narrow them.
VIEW_COLUMNS: tuple[str, ...] = ("eval_set", "setting", "passage_language", "metric")


class MetricTable:
    """Tidy rows indexed once, so the pages' pick lists and plots touch only the rows they show.

    Built in the background thread right after the rows are read: a study of
    a hundred runs has tens of thousands of rows, and scanning them all on
    the GUI thread at every choice would block the window (bench/RESULTS.md).
    """

    def __init__(self, rows: Sequence[Row] = ()):
        self.rows = list(rows)
        self._views: dict[tuple, list[Row]] = defaultdict(list)
        self._cells: dict[tuple[str, str], list[Row]] = defaultdict(list)
        #: (strategy, series name) of every trained series of the selection, in legend order.
        self.series = trained_series(self.rows)
        for row in self.rows:
            self._views[tuple(row[c] for c in VIEW_COLUMNS)].append(row)
            if row["query_language"] != ALL and row["passage_language"] != ALL:
                self._cells[(row["eval_set"], row["metric"])].append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def choices(self, *chosen: str) -> list[str]:
        """The values offered for the next column of :data:`VIEW_COLUMNS`, given the ones ``chosen`` before it."""
        level = len(chosen)
        return _pick_order(key[level] for key in self._views if key[:level] == chosen)

    def view(self, eval_set: str, setting: str, passage_language: str, metric: str) -> list[Row]:
        """The rows of one scaling plot (every run and query language)."""
        return self._views.get((eval_set, setting, passage_language, metric), [])

    def cell_eval_sets(self) -> list[str]:
        return _pick_order(eval_set for eval_set, _metric in self._cells)

    def cell_metrics(self, eval_set: str) -> list[str]:
        """The metrics with per (query language, passage language) cells on ``eval_set``."""
        return sorted({metric for e, metric in self._cells if e == eval_set})

    def cells(self, eval_set: str, metric: str) -> list[Row]:
        return self._cells.get((eval_set, metric), [])


def trained_series(rows: Iterable[Row]) -> list[tuple[str, str]]:
    """(strategy, series name) of every series of training runs, in table order: what the styles are assigned over."""
    pairs = {(row["strategy"], row["series"]) for row in rows if row["strategy"] != NO_TRAINING}
    return sorted(pairs, key=lambda pair: series_order(*pair))


def language_order(languages: Iterable[str]) -> list[str]:
    """The research targets (sw, yo) first, then the rest alphabetically, ``all`` last."""
    unique = set(languages)
    targets = [lang for lang in TARGET_LANGUAGES if lang in unique]
    rest = sorted(lang for lang in unique if lang not in TARGET_LANGUAGES and lang != ALL)
    return targets + rest + ([ALL] if ALL in unique else [])


# ---- scaling curves -----------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One training size of one series: the statistics over its seeds."""

    size: int
    mean: float
    minimum: float
    maximum: float
    sd: float  # sample standard deviation (n - 1); 0 with a single seed, which has no spread to show
    values: tuple[float, ...]  # one per run, in run id order
    run_ids: tuple[str, ...]
    seeds: tuple[int, ...]  # the seed of each run
    queries: tuple[int, ...]  # how many queries each run's value averages

    @property
    def seed_count(self) -> int:
        return len(self.run_ids)


@dataclass(frozen=True)
class Series:
    """A line: the runs of one configuration (differing in their seeds only) at each size."""

    label: str
    strategy: str
    points: tuple[Point, ...]  # ascending size

    @property
    def sizes(self) -> list[int]:
        return [p.size for p in self.points]

    @property
    def means(self) -> list[float]:
        return [p.mean for p in self.points]

    @property
    def has_spread(self) -> bool:
        """Whether some point pools several seeds (only then is there a band to draw)."""
        return any(p.seed_count > 1 for p in self.points)


@dataclass(frozen=True)
class Baseline:
    """An evaluation-only run (size 0): a horizontal reference line."""

    label: str
    value: float
    run_ids: tuple[str, ...]
    queries: tuple[int, ...]


@dataclass(frozen=True)
class ScalingPanel:
    """One plot: the curves of every series for one query language."""

    query_language: str
    series: tuple[Series, ...]
    baselines: tuple[Baseline, ...]


@dataclass(frozen=True)
class _Measured:
    """One run's value in a panel, with what the tooltip says about it."""

    value: float
    seed: int
    queries: int


def _point(size: int, by_run: Mapping[str, _Measured]) -> Point:
    run_ids = tuple(sorted(by_run))
    values = tuple(by_run[r].value for r in run_ids)
    array = np.asarray(values, dtype=float)
    sd = float(array.std(ddof=1)) if len(values) > 1 else 0.0
    return Point(size, float(array.mean()), float(array.min()), float(array.max()), sd, values, run_ids,
                 tuple(by_run[r].seed for r in run_ids), tuple(by_run[r].queries for r in run_ids))


def scaling_panels(
    rows: Iterable[Row],
    *,
    eval_set: str,
    setting: str,
    metric: str,
    passage_language: str = ALL,
    query_languages: Sequence[str] | None = None,
) -> list[ScalingPanel]:
    """One panel per query language (default: every one present, sw and yo first).

    Each series of training runs becomes a line of points (mean, min, max, sd
    over its seeds); evaluation-only runs become baselines, one per series.
    """
    # (language, strategy, series, size) -> run id -> value; a run listed by two studies counts once.
    cells: dict[tuple[str, str, str, int], dict[str, _Measured]] = defaultdict(dict)
    base: dict[tuple[str, str], dict[str, _Measured]] = defaultdict(dict)
    for row in rows:
        if (row["eval_set"], row["setting"], row["metric"], row["passage_language"]) != (
            eval_set, setting, metric, passage_language,
        ):
            continue
        measured = _Measured(float(row["value"]), int(row["seed"] or 0), int(row["num_queries"]))
        language = row["query_language"]
        if row["strategy"] == NO_TRAINING:
            base[(language, row["series"])][row["run_id"]] = measured
        else:
            cells[(language, row["strategy"], row["series"], int(row["train_size"]))][row["run_id"]] = measured
    present = {key[0] for key in cells} | {key[0] for key in base}
    languages = list(query_languages) if query_languages is not None else language_order(present - {ALL}) or sorted(present)
    panels = []
    for language in languages:
        lines = sorted({(strategy, name) for lang, strategy, name, _ in cells if lang == language},
                       key=lambda line: series_order(*line))
        series = tuple(
            Series(name, strategy, tuple(
                _point(size, cells[(language, strategy, name, size)])
                for size in sorted(s for lang, st, n, s in cells if (lang, st, n) == (language, strategy, name))))
            for strategy, name in lines
        )
        baselines = tuple(
            Baseline(label, float(np.mean([m.value for m in by_run.values()])), tuple(sorted(by_run)),
                     tuple(by_run[r].queries for r in sorted(by_run)))
            for (lang, label), by_run in sorted(base.items())
            if lang == language
        )
        panels.append(ScalingPanel(language, series, baselines))
    return panels


def value_extent(panels: Sequence[ScalingPanel], baselines: bool = True,
                 lexical: bool = True) -> tuple[float, float] | None:
    """The lowest and highest value any panel draws (band edges either way, and baselines unless not asked for;
    the lexical reference's only if ``lexical``).

    None if empty.
    """
    values = [b.value for panel in panels for b in panel.baselines
              if lexical or not _is_lexical(b.label)] if baselines else []
    for panel in panels:
        for series in panel.series:
            for p in series.points:
                values += [p.minimum, p.maximum, p.mean - p.sd, p.mean + p.sd]
    finite = [v for v in values if math.isfinite(v)]
    return (min(finite), max(finite)) if finite else None


def off_axis_note(panels: Sequence[ScalingPanel], low: float, high: float) -> str:
    """A sentence naming each reference line outside [low, high] with its values per panel ('' if none).

    A figure whose range leaves out a distant reference (BM25 far below a
    dense model) must still say where that reference is, or a reader takes
    the axis for the whole story.
    """
    outside: dict[str, list[str]] = defaultdict(list)
    for panel in panels:
        for baseline in panel.baselines:
            if not low <= baseline.value <= high:
                outside[baseline.label].append(f"{panel.query_language} {baseline.value:.4f}")
    return "; ".join(f"{label} (size 0) is off the axis: {', '.join(values)}" for label, values in outside.items())


def _is_lexical(label: str) -> bool:
    return isinstance(label, SeriesName) and label.lexical


def queries_text(queries: Sequence[int]) -> str:
    """How many queries the values average: one number when every run had the same, else one per run."""
    return str(queries[0]) if len(set(queries)) == 1 else ", ".join(map(str, queries))


def series_table(panels: Sequence[ScalingPanel], metric: str) -> list[list[str]]:
    """The plotted numbers as a table (header first) for 'Copy table'; no sd where there is one seed."""
    table = [["query_language", "strategy", "train_size", f"{metric} mean", "min", "max", "sd", "seeds", "queries",
              "run_ids"]]
    for panel in panels:
        for baseline in panel.baselines:
            table.append([panel.query_language, baseline.label, "0", f"{baseline.value:.4f}", "", "", "",
                          str(len(baseline.run_ids)), queries_text(baseline.queries), " ".join(baseline.run_ids)])
        for series in panel.series:
            for p in series.points:
                spread = [f"{p.minimum:.4f}", f"{p.maximum:.4f}", f"{p.sd:.4f}"] if p.seed_count > 1 else ["", "", ""]
                table.append([panel.query_language, series.label, str(p.size), f"{p.mean:.4f}", *spread,
                              str(p.seed_count), queries_text(p.queries), " ".join(p.run_ids)])
    return table


def point_tooltip(series_label: str, metric: str, point: Point) -> str:
    """Exact values, seeds, query counts and run ids of one plotted point (the hover text).

    A single run says so ("1 seed") instead of showing a spread of zero,
    which would read as certainty.
    """
    if point.seed_count == 1:
        value = f"{metric}: {point.mean:.4f} from 1 seed (seed {point.seeds[0]}): no spread over seeds"
    else:
        per_seed = ", ".join(f"{v:.4f} (seed {seed})" for seed, v in sorted(zip(point.seeds, point.values)))
        value = (f"{metric}: mean {point.mean:.4f} over {point.seed_count} seeds (min {point.minimum:.4f}, "
                 f"max {point.maximum:.4f}, sd {point.sd:.4f})\nper seed: {per_seed}")
    each = " per run" if point.seed_count > 1 and len(set(point.queries)) == 1 else ""
    return (f"{series_label}, n={point.size}\n{value}\nqueries: {queries_text(point.queries)}{each}\n"
            f"runs: {', '.join(point.run_ids)}")


def panel_tooltips(panel: ScalingPanel, metric: str) -> dict[tuple[str, int], str]:
    """(series label, size) -> hover text of that point, naming every series whose point coincides with it.

    The topmost of two coinciding markers takes the hover, so its text must
    speak for the ones it hides.
    """
    extent = value_extent([panel])
    tolerance = COINCIDE_SHARE * (extent[1] - extent[0]) if extent else 0.0
    points = [(series.label, point) for series in panel.series for point in series.points]
    texts = {}
    for label, point in points:
        here = [(label, point)] + [(other, p) for other, p in points if other != label and p.size == point.size
                                   and abs(p.mean - point.mean) <= tolerance]
        blocks = [point_tooltip(name, metric, p) for name, p in here]
        if len(here) > 1:
            blocks.insert(0, f"{len(here)} series coincide here: {', '.join(name for name, _ in here)}")
        texts[(label, point.size)] = "\n\n".join(blocks)
    return texts


# ---- bias heatmaps ------------------------------------------------------------
@dataclass(frozen=True)
class Heatmap:
    """Query language (rows) x passage language (columns); NaN where a pair was not measured.

    ``difference``: the values are one map minus another (signed, around 0).
    """

    title: str
    metric: str
    query_languages: tuple[str, ...]
    passage_languages: tuple[str, ...]
    values: np.ndarray
    run_ids: tuple[str, ...]
    difference: bool = False


def better_sign(metric: str) -> str:
    """Which sign of B − A means B is better."""
    return "negative" if metric in LOWER_IS_BETTER else "positive"


def heatmap_difference(a: Heatmap, b: Heatmap) -> Heatmap:
    """B − A for every language pair both maps hold (in A's order); NaN where either has no value."""
    queries = tuple(q for q in a.query_languages if q in b.query_languages)
    passages = tuple(p for p in a.passage_languages if p in b.passage_languages)
    if not queries or not passages:
        raise LookupError(f"{a.title} and {b.title} share no language pair; pick maps of one eval set")

    def cut(data: Heatmap) -> np.ndarray:
        rows = [data.query_languages.index(q) for q in queries]
        columns = [data.passage_languages.index(p) for p in passages]
        return data.values[np.ix_(rows, columns)]

    title = f"B − A: {b.title} minus {a.title} ({better_sign(a.metric)}: B better)"
    return Heatmap(title, a.metric, queries, passages, cut(b) - cut(a), tuple(sorted({*a.run_ids, *b.run_ids})),
                   difference=True)


@dataclass(frozen=True)
class HeatmapChoice:
    """What one heatmap shows: a series at a size (averaged over its seeds) or one run."""

    label: SeriesName
    train_size: int
    run_id: str | None = None
    #: The single run's seed (a trained run's); a reader picks a seed, the run id only tells runs apart.
    seed: str = ""

    @property
    def title(self) -> str:
        size = "(size 0)" if self.train_size == 0 else f"n={self.train_size}"
        if not self.run_id:
            return f"{self.label} {size}"
        return f"{self.label} {size}, " + (f"seed {self.seed} (run {self.run_id})" if self.seed else f"run {self.run_id}")


def _is_cell(row: Row, eval_set: str, metric: str) -> bool:
    return (
        row["eval_set"] == eval_set and row["metric"] == metric
        and row["query_language"] != ALL and row["passage_language"] != ALL
    )


def heatmap_choices(rows: Iterable[Row], *, eval_set: str, metric: str = "MeanRank") -> list[HeatmapChoice]:
    """Every (series, size) with per-pair cells, in plotting order."""
    keys = {(r["strategy"], r["series"], int(r["train_size"])) for r in rows if _is_cell(r, eval_set, metric)}
    ordered = sorted(keys, key=lambda k: (k[2] > 0, series_order(k[0], k[1]), k[2]))
    return [HeatmapChoice(label, size) for _strategy, label, size in ordered]


def run_choices(rows: Iterable[Row], *, eval_set: str, metric: str = "MeanRank") -> list[HeatmapChoice]:
    """One choice per single run with per-pair cells (to inspect one seed), in plotting order."""
    keys = {(r["strategy"], r["series"], int(r["train_size"]), r["run_id"],
             "" if r["strategy"] == NO_TRAINING or r.get("seed") is None else str(r["seed"]))
            for r in rows if _is_cell(r, eval_set, metric)}
    ordered = sorted(keys, key=lambda k: (k[2] > 0, series_order(k[0], k[1]), k[2], k[4].zfill(12), k[3]))
    return [HeatmapChoice(label, size, run_id, seed) for _strategy, label, size, run_id, seed in ordered]


def heatmap_table(data: Heatmap) -> list[list[str]]:
    """The matrix as a table (header first) for 'Copy table'."""
    table = [[f"{data.metric}: query \\ passage", *data.passage_languages]]
    for i, query_language in enumerate(data.query_languages):
        cells = ["" if math.isnan(v) else f"{v:.4f}" for v in data.values[i]]
        table.append([query_language, *cells])
    return table


def heatmap(rows: Iterable[Row], choice: HeatmapChoice, *, eval_set: str, metric: str = "MeanRank") -> Heatmap:
    """The matrix of ``choice``: each cell is the mean over the chosen runs (seeds) of that pair's value."""
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    run_ids: set[str] = set()
    for row in rows:
        if not _is_cell(row, eval_set, metric):
            continue
        if choice.run_id is not None:
            if row["run_id"] != choice.run_id:
                continue
        elif (row["series"], int(row["train_size"])) != (choice.label, choice.train_size):
            continue
        cells[(row["query_language"], row["passage_language"])].append(float(row["value"]))
        run_ids.add(row["run_id"])
    if not cells:
        raise LookupError(f"no {metric} cells for {choice.title} on {eval_set}; pick another run or eval set")
    queries = tuple(language_order(q for q, _ in cells))
    passages = tuple(language_order(p for _, p in cells))
    values = np.full((len(queries), len(passages)), math.nan)
    for (q, p), cell in cells.items():
        values[queries.index(q), passages.index(p)] = float(np.mean(cell))
    return Heatmap(f"{choice.title}: {metric}", metric, queries, passages, values, tuple(sorted(run_ids)))

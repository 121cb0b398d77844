"""Turn tidy metric rows into what the plots draw: curves, baselines and heatmaps.

Qt-free on purpose (napari style): the scaling view, the heatmap view and the
headless figures of ``hybridscale demo`` all draw from these plain objects,
and the tests check them against hand-computed numbers without a display.

Rows are the dicts of :func:`storage.queries.tidy_metrics` (one per run x eval
set x setting x query language x passage language x metric).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vocabulary.budget import budget_label
from vocabulary.languages import TARGET_LANGUAGES
from vocabulary.records import ALL
from vocabulary.strategies import NO_TRAINING, display_order, strategy_label

#: The budget legends leave unsaid (RunConfig's default: one epoch, no cap).
DEFAULT_BUDGET = budget_label({})
#: Lower is better for these metrics (colour maps and tooltips say so).
LOWER_IS_BETTER = frozenset({"LangBias", "MeanRank"})

Row = Mapping[str, Any]


def row_label(row: Row) -> str:
    """A run's line in legends and tables: its strategy, and its training budget unless that is the default.

    Runs trained with other budgets are thus other lines, never pooled as seeds of one point.
    """
    label = strategy_label(row["strategy"], row.get("alpha"))
    if row["strategy"] == NO_TRAINING or "budget" not in row:
        return label
    budget = budget_label(row)
    return label if budget == DEFAULT_BUDGET else f"{label} ({budget})"


def _pick_order(values: Iterable[Any]) -> list[Any]:
    return sorted(set(values), key=lambda v: (v == ALL, str(v)))


#: The columns that choose what one scaling plot shows, in the order the pick lists narrow them.
VIEW_COLUMNS: tuple[str, ...] = ("eval_set", "setting", "passage_language", "metric")


class MetricTable:
    """Tidy rows indexed once, so the pages' pick lists and plots touch only the rows they show.

    Built in the background thread right after the rows are read: a study of
    a hundred runs has tens of thousands of rows, and scanning them all on
    the GUI thread at every choice would block the window for a few hundred
    milliseconds.
    """

    def __init__(self, rows: Sequence[Row] = ()):
        self.rows = list(rows)
        self._views: dict[tuple, list[Row]] = defaultdict(list)
        self._cells: dict[tuple[str, str], list[Row]] = defaultdict(list)
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


def language_order(languages: Iterable[str]) -> list[str]:
    """The research targets (sw, yo) first, then the rest alphabetically, ``all`` last."""
    unique = set(languages)
    targets = [lang for lang in TARGET_LANGUAGES if lang in unique]
    rest = sorted(lang for lang in unique if lang not in TARGET_LANGUAGES and lang != ALL)
    return targets + rest + ([ALL] if ALL in unique else [])


# ---- scaling curves -----------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One training size of one strategy: the statistics over its seeds."""

    size: int
    mean: float
    minimum: float
    maximum: float
    sd: float  # sample standard deviation (n - 1); 0 with a single seed
    values: tuple[float, ...]  # one per run, in run id order
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[Point, ...]  # ascending size

    @property
    def sizes(self) -> list[int]:
        return [p.size for p in self.points]

    @property
    def means(self) -> list[float]:
        return [p.mean for p in self.points]


@dataclass(frozen=True)
class Baseline:
    """An evaluation-only run (size 0): a horizontal reference line."""

    label: str
    value: float
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class ScalingPanel:
    """One plot: the curves of every strategy for one query language."""

    query_language: str
    series: tuple[Series, ...]
    baselines: tuple[Baseline, ...]


def _point(size: int, by_run: Mapping[str, float]) -> Point:
    run_ids = tuple(sorted(by_run))
    values = tuple(by_run[r] for r in run_ids)
    array = np.asarray(values, dtype=float)
    sd = float(array.std(ddof=1)) if len(values) > 1 else 0.0
    return Point(size, float(array.mean()), float(array.min()), float(array.max()), sd, values, run_ids)


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

    Each training strategy becomes a series of points (mean, min, max, sd over
    seeds); evaluation-only runs become baselines, one per model.
    """
    # (language, label, size) -> run id -> value; a run listed by two studies counts once.
    cells: dict[tuple[str, str, int], dict[str, float]] = defaultdict(dict)
    base: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for row in rows:
        if (row["eval_set"], row["setting"], row["metric"], row["passage_language"]) != (
            eval_set, setting, metric, passage_language,
        ):
            continue
        language = row["query_language"]
        if row["strategy"] == NO_TRAINING:
            base[(language, f"untrained {row['model']}")][row["run_id"]] = float(row["value"])
        else:
            cells[(language, row_label(row), int(row["train_size"]))][row["run_id"]] = float(row["value"])
    present = {key[0] for key in cells} | {key[0] for key in base}
    languages = list(query_languages) if query_languages is not None else language_order(present - {ALL}) or sorted(present)
    panels = []
    for language in languages:
        labels = sorted({label for lang, label, _ in cells if lang == language}, key=display_order)
        series = tuple(
            Series(label, tuple(_point(size, cells[(language, label, size)])
                                for size in sorted(s for lang, lab, s in cells if lang == language and lab == label)))
            for label in labels
        )
        baselines = tuple(
            Baseline(label, float(np.mean(list(values.values()))), tuple(sorted(values)))
            for (lang, label), values in sorted(base.items())
            if lang == language
        )
        panels.append(ScalingPanel(language, series, baselines))
    return panels


def value_extent(panels: Sequence[ScalingPanel]) -> tuple[float, float] | None:
    """The lowest and highest value any panel draws (band edges either way, and baselines); None if empty."""
    values = [b.value for panel in panels for b in panel.baselines]
    for panel in panels:
        for series in panel.series:
            for p in series.points:
                values += [p.minimum, p.maximum, p.mean - p.sd, p.mean + p.sd]
    finite = [v for v in values if math.isfinite(v)]
    return (min(finite), max(finite)) if finite else None


def series_table(panels: Sequence[ScalingPanel], metric: str) -> list[list[str]]:
    """The plotted numbers as a table (header first) for 'Copy table' and tooltips."""
    table = [["query_language", "strategy", "train_size", f"{metric} mean", "min", "max", "sd", "seeds", "run_ids"]]
    for panel in panels:
        for baseline in panel.baselines:
            table.append([panel.query_language, baseline.label, "0", f"{baseline.value:.4f}", "", "", "",
                          str(len(baseline.run_ids)), " ".join(baseline.run_ids)])
        for series in panel.series:
            for p in series.points:
                table.append([panel.query_language, series.label, str(p.size), f"{p.mean:.4f}", f"{p.minimum:.4f}",
                              f"{p.maximum:.4f}", f"{p.sd:.4f}", str(len(p.run_ids)), " ".join(p.run_ids)])
    return table


def point_tooltip(series_label: str, metric: str, point: Point) -> str:
    """Exact values and run ids of one plotted point (the hover text)."""
    values = ", ".join(f"{v:.4f}" for v in point.values)
    return (
        f"{series_label}, n={point.size}\n{metric}: mean {point.mean:.4f} (min {point.minimum:.4f}, "
        f"max {point.maximum:.4f}, sd {point.sd:.4f})\nseeds: {values}\nruns: {', '.join(point.run_ids)}"
    )


# ---- bias heatmaps ------------------------------------------------------------
@dataclass(frozen=True)
class Heatmap:
    """Query language (rows) x passage language (columns); NaN where a pair was not measured."""

    title: str
    metric: str
    query_languages: tuple[str, ...]
    passage_languages: tuple[str, ...]
    values: np.ndarray
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class HeatmapChoice:
    """What one heatmap shows: a strategy at a size (averaged over seeds) or one run."""

    label: str
    train_size: int
    run_id: str | None = None

    @property
    def title(self) -> str:
        size = "(size 0)" if self.train_size == 0 else f"n={self.train_size}"
        return f"{self.label} {size}" + (f", run {self.run_id}" if self.run_id else "")


def _is_cell(row: Row, eval_set: str, metric: str) -> bool:
    return (
        row["eval_set"] == eval_set and row["metric"] == metric
        and row["query_language"] != ALL and row["passage_language"] != ALL
    )


def heatmap_choices(rows: Iterable[Row], *, eval_set: str, metric: str = "MeanRank") -> list[HeatmapChoice]:
    """Every (strategy, size) with per-pair cells, in plotting order."""
    keys = {(row_label(r), int(r["train_size"])) for r in rows if _is_cell(r, eval_set, metric)}
    return [HeatmapChoice(label, size) for label, size in sorted(keys, key=lambda k: (k[1] > 0, display_order(k[0]), k[1]))]


def run_choices(rows: Iterable[Row], *, eval_set: str, metric: str = "MeanRank") -> list[HeatmapChoice]:
    """One choice per single run with per-pair cells (to inspect one seed), in plotting order."""
    keys = {(row_label(r), int(r["train_size"]), r["run_id"]) for r in rows if _is_cell(r, eval_set, metric)}
    ordered = sorted(keys, key=lambda k: (k[1] > 0, display_order(k[0]), k[1], k[2]))
    return [HeatmapChoice(label, size, run_id) for label, size, run_id in ordered]


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
        elif (row_label(row), int(row["train_size"])) != (choice.label, choice.train_size):
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

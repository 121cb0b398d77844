"""The bias-heatmap page: query language x passage language, for a strategy at a size or for one run.

A second map can be shown beside the first ("Compare with") on one shared
colour scale, so equal colours mean equal values, or instead their
difference B − A (the second minus the first) on a diverging scale centred
on 0, blue where B is better. ``MeanRank`` (the default)
is the rank of the best relevant passage of each language in the multilingual
pool (see :mod:`engine.metrics`); the IR metrics show their mono (diagonal)
and cross (off-diagonal) cells.
"""

from __future__ import annotations

from typing import Callable

import pyqtgraph as pg
from PySide6 import QtWidgets

from gui.figures import (
    DrawnHeatmap,
    add_colour_bar,
    colour_bar_label,
    difference_colour_map,
    difference_levels,
    draw_heatmap,
    heatmap_colour_map,
    heatmap_languages,
    heatmap_levels,
    write_heatmap,
)
from gui.folders import RememberedFolder
from gui.plot_page import EMPTY_TEXT, PICK_LIST_CHARACTERS, PlotPage, fitted, refill
from results.app_model import AppModel
from results.plot_data import (
    METRIC_HELP,
    Heatmap,
    HeatmapChoice,
    heatmap,
    heatmap_choices,
    heatmap_difference,
    heatmap_table,
    run_choices,
)

PREFERRED_EVAL_SETS = ("flores/test", "xquad-r/eval")
PREFERRED_METRICS = ("MeanRank", "nDCG@10")
#: The two map choices name a series, its size and a seed and run ("hybrid α=0.5 (2 steps) n=32, seed 1 (run …)"):
#: their row has room for twice an ordinary pick list, so they are not cut.
WIDE_PICK_LIST_CHARACTERS = 2 * PICK_LIST_CHARACTERS


class HeatmapView(PlotPage):
    def __init__(self, app_model: AppModel, folder: RememberedFolder, parent: QtWidgets.QWidget | None = None):
        super().__init__(app_model, folder, parent)
        self.eval_set = QtWidgets.QComboBox(toolTip="evaluation set and split")
        self.metric = QtWidgets.QComboBox(toolTip="MeanRank: rank of the best relevant passage per language")
        self.left = QtWidgets.QComboBox(toolTip="a strategy at a size (mean over seeds) or a single run")
        self.compare = QtWidgets.QCheckBox("Compare with:", checked=True)
        self.right = QtWidgets.QComboBox(toolTip="the map drawn beside the first, on the same colour scale")
        self.difference = QtWidgets.QCheckBox(
            "Show B − A", toolTip="one map of the second minus the first, on a scale centred on 0 (blue: B better)")
        self.add_control("Eval set:", self.eval_set)
        self.add_control("Metric:", self.metric)
        self.add_control("Show (A):", fitted(self.left, WIDE_PICK_LIST_CHARACTERS), row=1)
        self.toolbar2.addWidget(self.compare)
        self.toolbar2.addWidget(fitted(self.right, WIDE_PICK_LIST_CHARACTERS))
        self.toolbar2.addWidget(self.difference)
        self.finish_toolbar()
        for combo in (self.eval_set, self.metric):
            combo.currentIndexChanged.connect(lambda _index: self.refresh())
        for combo in (self.left, self.right):
            combo.currentIndexChanged.connect(lambda _index: self.redraw())
        self.compare.toggled.connect(lambda _on: self.redraw())
        self.difference.toggled.connect(lambda _on: self.redraw())
        self.choices: dict[str, HeatmapChoice] = {}
        self.maps: list[Heatmap] = []
        #: The maps on the canvas, left to right; kept while their number and languages stay the same.
        self.drawn: list[DrawnHeatmap] = []
        self._colour_bar: pg.ColorBarItem | None = None
        self.refresh()

    @property
    def images(self) -> list[pg.ImageItem]:
        return [drawn.image for drawn in self.drawn]

    def update_choices(self) -> bool:
        table = self.app_model.metrics
        eval_sets = table.cell_eval_sets()
        if not eval_sets:
            for combo in (self.eval_set, self.metric, self.left, self.right):
                refill(combo, [])  # an empty database or study offers no choices
            self.show_message(EMPTY_TEXT if not len(table) else "No result has per-language-pair cells to draw yet.")
            return False
        refill(self.eval_set, eval_sets, PREFERRED_EVAL_SETS)
        eval_set = self.eval_set.currentData()
        refill(self.metric, table.cell_metrics(eval_set), PREFERRED_METRICS, tip=METRIC_HELP.get)
        metric = self.metric.currentData()
        rows = table.cells(eval_set, metric)
        averaged = heatmap_choices(rows, eval_set=eval_set, metric=metric)
        # Pick lists hold string keys: Qt compares item data by value only for its own types.
        self.choices = {choice_key(c): c for c in averaged + run_choices(rows, eval_set=eval_set, metric=metric)}
        keys = list(self.choices)
        refill(self.left, keys, [choice_key(c) for c in averaged[:1]], text=lambda k: choice_text(self.choices[k]))
        largest = sorted(averaged, key=lambda c: (c.train_size, c.label.uses_alpha))[-1:]
        refill(self.right, keys, [choice_key(c) for c in largest], text=lambda k: choice_text(self.choices[k]))
        return True

    def shown_choices(self) -> list[HeatmapChoice]:
        """The left map, and the right one when comparing (and it differs from the left)."""
        keys = [self.left.currentData()]
        if self.compare.isChecked() and self.right.currentData() != keys[0]:
            keys.append(self.right.currentData())
        return [self.choices[k] for k in keys if k in self.choices]

    def drawing_steps(self) -> list[Callable[[], None]]:
        """One step per map, then the shared colour bar."""
        eval_set, metric = self.eval_set.currentData(), self.metric.currentData()
        rows = self.app_model.metrics.cells(eval_set, metric)
        choices = self.shown_choices()
        self.right.setEnabled(self.compare.isChecked())
        self.difference.setEnabled(self.compare.isChecked())
        if not rows or not choices:
            self.show_message("Nothing to draw for these choices: pick another eval set, metric or run.")
            return []
        maps = [heatmap(rows, choice, eval_set=eval_set, metric=metric) for choice in choices]
        if self.difference.isChecked() and len(maps) == 2:
            maps = [heatmap_difference(*maps)]
            levels, colour_map = difference_levels(maps[0]), difference_colour_map(metric)
        else:
            levels, colour_map = heatmap_levels(maps), heatmap_colour_map(metric)
        self.maps = maps
        # New results for the same maps (a worker finished a run) only rewrite values; other maps are laid out anew.
        rewrite = [heatmap_languages(data) for data in maps] == [drawn.languages for drawn in self.drawn]

        def draw(index: int, data: Heatmap) -> None:
            if rewrite:
                write_heatmap(self.drawn[index], data, levels, colour_map)
                return
            if index == 0:
                self.canvas.clear()
                self.drawn, self._colour_bar = [], None
            self.drawn.append(draw_heatmap(self.canvas.ci.addPlot(), data, levels, colour_map))

        def finish() -> None:
            if self._colour_bar is not None:
                self.canvas.ci.removeItem(self._colour_bar)
            self._colour_bar = add_colour_bar(self.canvas.ci, self.images, levels, colour_map,
                                              colour_bar_label(maps[0]))
            # Maps side by side get equal widths: the grid shares the room out from each map's minimum, which
            # its title sets (a longer title made a wider map), so every map gets the largest minimum.
            plots = [item for item in self.canvas.ci.items
                     if isinstance(item, pg.PlotItem) and not isinstance(item, pg.ColorBarItem)]
            widest = max(plot.minimumWidth() for plot in plots)
            for column, plot in enumerate(plots):
                plot.setMinimumWidth(widest)
                self.canvas.ci.layout.setColumnStretchFactor(column, 1)
            self.show_plot()

        return [*(lambda index=index, data=data: draw(index, data) for index, data in enumerate(maps)), finish]

    def table(self) -> list[list[str]]:
        table: list[list[str]] = []
        for data in self.maps:
            table += [[data.title], *heatmap_table(data), []]
        return table[:-1]

    def default_file_name(self) -> str:
        eval_set = (self.eval_set.currentData() or "results").replace("/", "-")
        return f"bias_{eval_set}_{self.metric.currentData()}.png".replace("@", "at")


def choice_key(choice: HeatmapChoice) -> str:
    return f"{choice.label}\t{choice.train_size}\t{choice.run_id or ''}"


def choice_text(choice: HeatmapChoice) -> str:
    """A series' entry says it averages its seeds; a reference (size 0: untrained, BM25) has none to average."""
    return choice.title if choice.run_id or choice.train_size == 0 else f"{choice.title}, all seeds"

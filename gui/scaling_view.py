"""The scaling-curves page: metric vs training size, one panel per query language, one line per series.

The numbers come from :func:`results.plot_data.scaling_panels` (mean, min, max and
sd over the seeds of each series) and the drawing from :mod:`gui.figures`
(``start_scaling_panel``, ``draw_series`` and ``draw_fit``), the same code the
headless demo writes its PNGs with. Panels share their y axis, so the sw and
yo curves can be compared at a glance, unless *Own y ranges* is
ticked (one language's large MeanRank would flatten the others). *Fit* adds
each series' saturating power law a − b·N^−c through its plotted means.
"""

from __future__ import annotations

from typing import Callable

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gui.drill_down import DrillDownPanel
from gui.figures import (
    BANDS,
    FIT_FORMULA,
    DrawnScaling,
    add_legend,
    draw_fit,
    draw_series,
    fill_scaling_legend,
    reference_labels,
    scaling_title,
    series_styles,
    share_y_range,
    start_scaling_panel,
)
from gui.folders import RememberedFolder
from gui.plot_page import EMPTY_TEXT, PlotPage
from gui.view_choices import ViewChoices
from results.app_model import AppModel
from results.plot_data import ScalingPanel, Series, scaling_panels, series_table

PANELS_PER_ROW = 3


def fit_note(unfitted: dict[tuple[str, str], str], languages: list[str]) -> str:
    """One line for the series that got no fit ((label, query language) -> why), grouped by the reason.

    A series without a fit in every panel is named alone, else with the
    panels it lacks one in (``mono (yo)``).
    """
    by_reason: dict[str, dict[str, list[str]]] = {}
    for (label, language), reason in unfitted.items():
        by_reason.setdefault(reason, {}).setdefault(label, []).append(language)
    return "; ".join(
        "no fit for " + ", ".join(label if len(where) == len(languages) else f"{label} ({', '.join(where)})"
                                  for label, where in labels.items()) + f": {reason}"
        for reason, labels in by_reason.items())


class ScalingView(PlotPage):
    def __init__(self, app_model: AppModel, folder: RememberedFolder, parent: QtWidgets.QWidget | None = None):
        super().__init__(app_model, folder, parent)
        self.choices = ViewChoices("the measure on the y axis", "query languages, one panel each", self)
        self.band = QtWidgets.QComboBox(toolTip="the shaded band: spread over seeds")
        self.band.addItems(BANDS)
        self.fit = QtWidgets.QCheckBox(
            "Fit", toolTip=f"draw each series' saturating power law {FIT_FORMULA} through its plotted means "
                           "(least squares; needs at least 4 training sizes)")
        self.own_range = QtWidgets.QCheckBox(
            "Own y ranges", toolTip="scale each panel to its own values instead of one y range for all panels")
        for label, widget in self.choices.pick_lists():
            self.add_control(label, widget)
        self.toolbar.addWidget(self.fit)
        self.toolbar.addWidget(self.own_range)
        self.add_control("Query languages:", self.choices.languages, row=1)
        self.add_control("Band over seeds:", self.band, row=1)
        self.finish_toolbar()
        #: Opened by clicking a point: that series' per-query values against another's.
        self.drill_down = DrillDownPanel(app_model)
        self.drill_down.hide()
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical, childrenCollapsible=False)
        self.layout().removeWidget(self.stack)
        split.addWidget(self.stack)
        split.addWidget(self.drill_down)
        split.setSizes([520, 420])
        self.layout().addWidget(split, 1)
        self.choices.changed.connect(self.refresh)
        self.choices.languages.changed.connect(self.redraw)
        self.band.currentIndexChanged.connect(lambda _index: self.redraw())
        self.fit.toggled.connect(lambda _on: self.redraw())
        self.own_range.toggled.connect(lambda _on: self.redraw())
        self.panels: list[ScalingPanel] = []
        #: query language -> (its plot, what was drawn in it); tests and tooltips read it.
        self.drawn: dict[str, tuple[pg.PlotItem, DrawnScaling]] = {}
        self._plots: dict[str, pg.PlotItem] = {}
        self._title: pg.LabelItem | None = None
        self._legend: pg.LegendItem | None = None
        #: Shown under the title (and exported with it): which series got no fit, and why.
        self.note = ""
        self.refresh()

    def update_choices(self) -> bool:
        if not self.choices.refill(self.app_model.metrics):
            self.show_message(EMPTY_TEXT)
            return False
        return True

    def drawing_steps(self) -> list[Callable[[], None]]:
        """Lay out (if the languages changed), then one step per panel and strategy, then the shared range and legend.

        A step per strategy, not per panel: a whole panel of several strategies
        with bands is too long a step while a worker keeps the CPU busy
        (bench/RESULTS.md).
        """
        chosen = self.choices.languages.checked()
        if not len(self.app_model.metrics):
            self.show_message(EMPTY_TEXT)
            return []
        if not chosen:
            self.show_message("Tick at least one query language.")
            return []
        eval_set, setting, passage_language, metric = self.choices.chosen()
        self.panels = panels = scaling_panels(
            self.app_model.metrics.view(eval_set, setting, passage_language, metric), eval_set=eval_set,
            setting=setting, metric=metric, passage_language=passage_language, query_languages=chosen,
        )
        styles = series_styles(self.app_model.metrics.series)
        references = reference_labels(panels)
        band, fit, own_range = self.band.currentText(), self.fit.isChecked(), self.own_range.isChecked()
        unfitted: dict[tuple[str, str], str] = {}  # (series label, query language) -> why it has no fit

        def start() -> None:
            languages = [panel.query_language for panel in panels]
            if languages != list(self._plots):
                self._lay_out(languages)
            self.drawn = {}

        def start_panel(panel: ScalingPanel) -> None:
            plot = self._plots[panel.query_language]
            drawn = start_scaling_panel(plot, panel, metric=metric, references=references)
            self.drawn[panel.query_language] = (plot, drawn)

        def draw(panel: ScalingPanel, series: Series) -> None:
            plot, drawn = self.drawn[panel.query_language]
            draw_series(plot, drawn, series, metric=metric, style=styles[series.label], band=band)
            drawn.points[series.label].sigClicked.connect(
                lambda _item, points, _event, series=series, language=panel.query_language:
                self.open_drill_down(series, points[0].index(), language) if len(points) else None)
            if fit and (why := draw_fit(plot, drawn, series, metric=metric, style=styles[series.label])):
                unfitted[(series.label, panel.query_language)] = why

        def finish() -> None:
            plots = list(self._plots.values())
            for plot in plots[1:]:
                plot.setYLink(None if own_range else plots[0])  # linked, zooming one panel zooms them all
            if own_range:
                for plot, panel in zip(plots, panels):
                    share_y_range([plot], [panel])
            else:
                share_y_range(plots, panels)
            fill_scaling_legend(self._legend, styles, panels, fits=fit)
            self.note = fit_note(unfitted, [panel.query_language for panel in panels])
            title = self.plot_title()
            if self.note:
                title += f"<br><span style='font-size: 9pt; color: #555555'>{self.note}</span>"
            self._title.setText(title, size="12pt")
            self.show_plot()

        steps = [start]
        for panel in panels:
            steps.append(lambda panel=panel: start_panel(panel))
            steps += [lambda panel=panel, series=series: draw(panel, series) for series in panel.series]
        return [*steps, finish]

    def open_drill_down(self, series: Series, index: int, query_language: str) -> None:
        """The per-query panel for the clicked point (the ``index``-th size of ``series``)."""
        eval_set, setting, passage_language, metric = self.choices.chosen()
        self.drill_down.open(eval_set, setting, query_language, passage_language, metric, series.label,
                             series.points[index].size)

    def _lay_out(self, languages: list[str]) -> None:
        """Title, one plot per language and the legend; kept while the languages stay the same.

        Redrawing then only replaces the curves: building plots is the
        costly part of a redraw, and a worker finishing a run triggers one.
        """
        for plot in self._plots.values():  # empty and unlink the old plots first, so none of their
            plot.setYLink(None)             # pending range updates can reach an item deleted below
            plot.clear()
        self.drawn = {}
        self.canvas.clear()
        layout = self.canvas.ci
        self._title = layout.addLabel("", colspan=min(len(languages), PANELS_PER_ROW) + 1)
        layout.nextRow()
        self._plots = {}
        for index, language in enumerate(languages):
            if index and index % PANELS_PER_ROW == 0:
                layout.nextRow()
            self._plots[language] = layout.addPlot()
        self._legend = pg.LegendItem(labelTextSize="9pt", verSpacing=-2)
        add_legend(layout, self._legend)

    def plot_title(self) -> str:
        eval_set, setting, passage_language, metric = self.choices.chosen()
        return scaling_title(metric, eval_set, setting, passage_language)

    def table(self) -> list[list[str]]:
        return series_table(self.panels, self.choices.metric.currentData())

    def default_file_name(self) -> str:
        eval_set, setting, _passages, metric = self.choices.chosen()
        return f"scaling_{(eval_set or 'results').replace('/', '-')}_{setting}_{metric}.png".replace("@", "at")

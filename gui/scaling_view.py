"""The scaling-curves page: metric vs training size, one panel per query language, one line per strategy.

The numbers come from :func:`gui.results.scaling_panels` (mean, min, max and
sd over seeds) and the drawing from :func:`gui.figures.draw_scaling`, the
same code the headless demo writes its PNGs with. Panels share their y axis,
so the sw and yo curves can be compared at a glance.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtWidgets

from gui.figures import (
    BANDS,
    DrawnScaling,
    add_legend,
    draw_scaling,
    scaling_legend,
    scaling_title,
    share_y_range,
    strategy_colours,
)
from gui.form_widgets import CheckableComboBox, language_item_text
from gui.metric_rows import MetricRows
from gui.plot_page import EMPTY_TEXT, PlotPage, refill
from gui.results import ALL, ScalingPanel, distinct, language_order, scaling_panels, series_table

#: First choices when the data offer them: the research question's view.
PREFERRED_EVAL_SETS = ("flores/test", "afriqa/test", "xquad-r/eval")
PREFERRED_SETTINGS = ("cross", "multi", "mono")
PREFERRED_PASSAGES = ("en", ALL)
PREFERRED_METRICS = ("nDCG@10", "RR@10", "R@100", "AP")
SETTING_TEXT = {"mono": "monolingual (X→X)", "cross": "cross-lingual (X→Y)", "multi": "multilingual pool"}
PANELS_PER_ROW = 3


def passage_text(code: str) -> str:
    return "all languages (pool)" if code == ALL else language_item_text(code)


def query_text(code: str) -> str:
    return "all queries (average)" if code == ALL else language_item_text(code)


class ScalingView(PlotPage):
    def __init__(self, metrics: MetricRows, parent: QtWidgets.QWidget | None = None):
        super().__init__(metrics, parent)
        self.eval_set = QtWidgets.QComboBox(toolTip="evaluation set and split")
        self.setting = QtWidgets.QComboBox(toolTip="which passages each query searches")
        self.passages = QtWidgets.QComboBox(toolTip="the language of the passages searched")
        self.metric = QtWidgets.QComboBox(toolTip="the measure on the y axis")
        self.languages = CheckableComboBox(empty_text="no language")
        self.languages.setToolTip("query languages, one panel each")
        self.band = QtWidgets.QComboBox(toolTip="the shaded band: spread over seeds")
        self.band.addItems(BANDS)
        for label, widget in (("Eval set:", self.eval_set), ("Setting:", self.setting), ("Passages:", self.passages),
                              ("Metric:", self.metric)):
            self.add_control(label, widget)
        self.add_control("Query languages:", self.languages, row=1)
        self.add_control("Band over seeds:", self.band, row=1)
        self.finish_toolbar()
        for combo in (self.eval_set, self.setting, self.passages, self.metric):
            combo.currentIndexChanged.connect(self.refresh)
        self.languages.changed.connect(self.redraw)
        self.band.currentIndexChanged.connect(self.redraw)
        self.panels: list[ScalingPanel] = []
        #: query language -> (its plot, what was drawn in it); tests and tooltips read it.
        self.drawn: dict[str, tuple[pg.PlotItem, DrawnScaling]] = {}
        self.refresh()

    def refresh(self) -> None:
        rows = self.metrics.rows
        if not rows:
            self.show_message(EMPTY_TEXT)
            return
        refill(self.eval_set, distinct(rows, "eval_set"), PREFERRED_EVAL_SETS)
        where = {"eval_set": self.eval_set.currentData()}
        refill(self.setting, distinct(rows, "setting", **where), PREFERRED_SETTINGS,
               text=lambda s: SETTING_TEXT.get(s, s))
        where["setting"] = self.setting.currentData()
        refill(self.passages, distinct(rows, "passage_language", **where), PREFERRED_PASSAGES, text=passage_text)
        where["passage_language"] = self.passages.currentData()
        refill(self.metric, distinct(rows, "metric", **where), PREFERRED_METRICS)
        where["metric"] = self.metric.currentData()
        present = language_order(distinct(rows, "query_language", **where))
        if set(present) != set(self.languages.values()):
            chosen = [lang for lang in present if lang in ("sw", "yo")] or present
            self.languages.set_entries([(lang, query_text(lang)) for lang in present], chosen)
        self.redraw()

    def redraw(self) -> None:
        rows = self.metrics.rows
        chosen = self.languages.checked()
        if not rows:
            self.show_message(EMPTY_TEXT)
            return
        if not chosen:
            self.show_message("Tick at least one query language.")
            return
        self.panels = scaling_panels(
            rows, eval_set=self.eval_set.currentData(), setting=self.setting.currentData(),
            metric=self.metric.currentData(), passage_language=self.passages.currentData(), query_languages=chosen,
        )
        self.canvas.clear()
        layout = self.canvas.ci
        metric = self.metric.currentData()
        layout.addLabel(self.plot_title(), colspan=min(len(self.panels), PANELS_PER_ROW) + 1, size="12pt")
        layout.nextRow()
        colours = strategy_colours(self.panels)
        self.drawn = {}
        for index, panel in enumerate(self.panels):
            if index and index % PANELS_PER_ROW == 0:
                layout.nextRow()
            plot = layout.addPlot()
            drawn = draw_scaling(plot, panel, metric=metric, colours=colours, band=self.band.currentText())
            self.drawn[panel.query_language] = (plot, drawn)
        plots = [plot for plot, _drawn in self.drawn.values()]
        share_y_range(plots, self.panels)
        for plot in plots[1:]:
            plot.setYLink(plots[0])  # zooming one panel zooms them all
        add_legend(layout, scaling_legend(colours, self.panels))
        self.show_plot()

    def plot_title(self) -> str:
        return scaling_title(self.metric.currentData(), self.eval_set.currentData(), self.setting.currentData(),
                             self.passages.currentData())

    def table(self) -> list[list[str]]:
        return series_table(self.panels, self.metric.currentData())

    def default_file_name(self) -> str:
        eval_set = (self.eval_set.currentData() or "results").replace("/", "-")
        return f"scaling_{eval_set}_{self.setting.currentData()}_{self.metric.currentData()}.png".replace("@", "at")

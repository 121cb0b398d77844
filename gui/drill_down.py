"""The per-query drill-down under the scaling curves: which queries one series wins or loses against another.

Clicking a point (a series at a size, in one query language's panel) opens
it: each query's value for that series and a chosen other one (each averaged
over its seeds) as a sorted difference plot and a table. Choosing a query
shows its text, its relevant passages and both series' top 5 with relevance
marks, read from the run files of each side's first seed (texts from the
run's ``texts.jsonl.gz``; ids alone for runs evaluated before it existed).
Values and files are read in the background thread. The heading's tooltip
says what produced each side's runs (their provenance records), so a
difference between runs on different software or hardware shows as such.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gui.figures import use_value_axes
from results.app_model import AppModel
from results.latest import Latest
from results.per_query import QueryDetail, QueryDifference, Side, differences
from vocabulary.provenance import summary_line, tooltip_lines

RELEVANT_MARK = "✓"
WIN_COLOUR, LOSS_COLOUR, TIE_COLOUR = "#009E73", "#D55E00", "#999999"


def side_caption(side: Side) -> str:
    size = "reference" if side.size == 0 else f"n={side.size}"
    return f"{side.series} ({size})"


class DrillDownPanel(QtWidgets.QWidget):
    message = QtCore.Signal(str)

    def __init__(self, app_model: AppModel, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.app_model = app_model
        self.heading = QtWidgets.QLabel("", wordWrap=True)
        self.other = QtWidgets.QComboBox(toolTip="the series each query's value is compared with")
        self.other.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.other.currentIndexChanged.connect(lambda _index: self._show_differences())
        close = QtWidgets.QPushButton("Close", toolTip="hide the per-query panel")
        close.clicked.connect(self.hide)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(QtWidgets.QLabel("Compare with:"))
        top.addWidget(self.other)
        top.addWidget(close)
        self.plot = pg.PlotWidget()
        use_value_axes(self.plot.getPlotItem())
        self.table = QtWidgets.QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["query", "A", "B", "A − B"])
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._query_chosen)
        self.detail = QtWidgets.QTextBrowser()
        split = QtWidgets.QSplitter()
        for widget in (self.plot, self.table, self.detail):
            split.addWidget(widget)
        split.setSizes([400, 300, 500])
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        #: (series, size) -> side, of the cell opened; the differences shown; the detail shown (tests read them).
        self.sides: dict[tuple[str, int], Side] = {}
        self.shown: list[QueryDifference] = []
        self.query: QueryDetail | None = None
        self._where: tuple[str, str, str, str, str] = ("", "", "", "", "")  # eval set, setting, x, y, metric
        self._clicked: tuple[str, int] = ("", 0)
        self._requests = Latest()  # opening a cell and choosing a query: the latest of either wins
        #: Run id -> its latest provenance record, for the runs of the cell opened.
        self.provenance: dict[str, dict] = {}

    # ---- opening -----------------------------------------------------------------------------
    def open(self, eval_set: str, setting: str, query_language: str, passage_language: str, metric: str,
             series: str, size: int) -> None:
        """Show the queries of ``series`` at ``size`` in one cell, once their values are read."""
        if_latest = self._requests.request()
        self._where = (eval_set, setting, query_language, passage_language, metric)
        self._clicked = (series, size)
        self.heading.setText(f"Reading the per-query {metric} of {series}, n={size}…")
        self.show()

        # Answers come in submission order: the records are there when the sides are drawn.
        self.app_model.provenance(None, if_latest(self._provenance_read), self._failed)
        self.app_model.per_query_sides(eval_set, setting, query_language, passage_language, metric,
                                       if_latest(self._opened), self._failed)

    def _provenance_read(self, records: dict[str, dict]) -> None:
        self.provenance = records

    def _opened(self, found: dict[tuple[str, int], Side]) -> None:
        self.sides = found
        series, size = self._clicked
        if (series, size) not in found:
            self.heading.setText(f"No per-query values stored for {series} at n={size} (runs stored before "
                                 "per-query results were kept).")
            self.other.clear()
            self.shown = []
            return
        others = [key for key in found if key[1] in (size, 0) and key != (series, size)]
        others.sort(key=lambda key: (key[1] == 0, key[0]))
        self.other.blockSignals(True)
        self.other.clear()
        for key in others:
            self.other.addItem(side_caption(found[key]), key)
        self.other.blockSignals(False)
        self._show_differences()

    def _failed(self, error: BaseException) -> None:
        self.heading.setText(f"Could not read the per-query values: {error}")

    # ---- the differences --------------------------------------------------------------------------
    def _show_differences(self) -> None:
        a = self.sides.get(self._clicked)
        key = self.other.currentData()
        self.plot.clear()
        self.table.setRowCount(0)
        self.detail.clear()
        if a is None or key is None:
            self.shown = []
            return
        b = self.sides[tuple(key)]
        self.shown = differences(a, b)
        eval_set, setting, x, y, metric = self._where
        wins = sum(d.difference > 0 for d in self.shown)
        losses = sum(d.difference < 0 for d in self.shown)
        self.heading.setText(
            f"<b>{html.escape(metric)}, {html.escape(x)} → {html.escape(y)} ({html.escape(setting)}, "
            f"{html.escape(eval_set)})</b>: A = {html.escape(side_caption(a))} against B = "
            f"{html.escape(side_caption(b))}, over {len(self.shown)} queries: A higher on {wins}, lower on {losses}, "
            f"equal on {len(self.shown) - wins - losses}. Each value is the mean over a side's seeds.")
        self.heading.setToolTip("\n\n".join(self._provenance_text(name, side) for name, side in (("A", a), ("B", b))))
        values = np.array([d.difference for d in self.shown])
        colours = [WIN_COLOUR if v > 0 else LOSS_COLOUR if v < 0 else TIE_COLOUR for v in values]
        bars = pg.BarGraphItem(x=np.arange(len(values)), height=values, width=0.8, brushes=colours, pens=colours)
        self.plot.addItem(bars)
        self.plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#555555")))
        self.plot.setLabel("left", f"A − B, {metric}")
        self.plot.setLabel("bottom", "queries, sorted by the difference")
        self.plot.setTitle("per-query difference", size="10pt")
        self.table.setRowCount(len(self.shown))
        for row, d in enumerate(self.shown):
            for column, text in enumerate((d.query_id, f"{d.a:.4f}", f"{d.b:.4f}", f"{d.difference:+.4f}")):
                self.table.setItem(row, column, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def _provenance_text(self, name: str, side: Side) -> str:
        """What produced a side's runs: one line over all of them, then its first seed's run in detail."""
        records = [self.provenance[run_id] for run_id in side.run_ids if run_id in self.provenance]
        lines = [f"{name} = {side_caption(side)}: {summary_line(records)}"]
        if side.run_ids[0] in self.provenance:
            lines += [f"run {side.run_ids[0]}:", *tooltip_lines(self.provenance[side.run_ids[0]])]
        return "\n".join(lines)

    # ---- one query ------------------------------------------------------------------------------
    def select_query(self, query_id: str) -> None:
        """Select ``query_id`` in the table (its detail follows)."""
        for row, d in enumerate(self.shown):
            if d.query_id == query_id:
                self.table.selectRow(row)
                return
        raise LookupError(f"query {query_id!r} is not among the {len(self.shown)} queries shown")

    def _query_chosen(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or self.other.currentData() is None:
            return
        query_id = self.shown[rows[0].row()].query_id
        a, b = self.sides[self._clicked], self.sides[tuple(self.other.currentData())]
        shown = [(f"{name}: {side_caption(side)}, run {side.run_ids[0]} ({side.seeds[0]})", side.run_ids[0])
                 for name, side in (("A", a), ("B", b))]
        eval_set, setting, x, y, _metric = self._where
        if_latest = self._requests.request()

        def done(found: QueryDetail) -> None:
            self.query = found
            self.detail.setHtml(detail_html(found))

        self.app_model.query_detail(eval_set, setting, x, y, query_id, shown, if_latest(done), self._failed)


def _text(text: str | None) -> str:
    return html.escape(text) if text is not None else "<i>(text unavailable: run evaluated before texts were kept)</i>"


def detail_html(detail: QueryDetail) -> str:
    parts = [f"<h4>{html.escape(detail.query_id)}</h4><p>{_text(detail.text)}</p>", "<p><b>Relevant:</b></p><ul>"]
    parts += [f"<li>{html.escape(pid)} (relevance {rel}): {_text(text)}</li>" for pid, rel, text in detail.relevant]
    parts.append("</ul>")
    for caption, top in detail.tops:
        parts.append(f"<p><b>{html.escape(caption)}</b>, top {len(top)}:</p><ol>")
        for ranked in top:
            mark = f"{RELEVANT_MARK} " if ranked.relevance else ""
            judged = "" if ranked.relevance is not None else " <small>(not judged)</small>"
            parts.append(f"<li>{mark}<b>{html.escape(ranked.passage_id)}</b>{judged} "
                         f"<small>score {ranked.score:.4f}</small>: {_text(ranked.text)}</li>")
        parts.append("</ol>")
    parts += [f"<p style='color:#a00'>{html.escape(problem)}</p>" for problem in detail.problems]
    return "".join(parts)

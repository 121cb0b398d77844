"""The Findings page: for one eval set, setting, passage language and metric, what the numbers support.

Per query language it shows the tables of :func:`analysis.findings.build_findings`
(each series' mean ± between-seed spread at each size, the best series, its
difference to the runner-up and to each reference with the Holm-adjusted
randomisation p-value, marked when below 0.05; hybrid against every other
strategy; the fitted exponents) and the sentences generated from them, the
same ones ``summary.md``'s appendix has, below the answer ``summary.md`` opens
with (:mod:`gui.answer_view`).

The per-query values are read and tested in the background thread: a study
holds millions of them and a randomisation test takes 10,000 sign flips per
comparison, so the window only ever waits for the HTML to be set.
"""

from __future__ import annotations

import html

from PySide6 import QtCore, QtWidgets

from analysis.compare import Comparison
from analysis.findings import SIGNIFICANCE, Findings, LanguageFindings, Mean, signed
from analysis.fits import ScalingFit
from gui.answer_view import FIGURE_HEIGHT, AnswerBlock
from gui.plot_page import EMPTY_TEXT, FollowsMetrics, fitted
from gui.view_choices import ViewChoices
from results.app_model import AppModel
from results.latest import Latest
from vocabulary.languages import language_name
from vocabulary.records import ALL
from vocabulary.series import series_order

SIGNIFICANT_COLOUR = "#d8f0d8"
#: A significant difference in the reference's favour: the best series is significantly worse than it.
SIGNIFICANTLY_WORSE_COLOUR = "#f6d8d8"
NO_VALUES_TEXT = ("No per-query values for these choices: the runs were stored before per-query results were "
                  "kept, or did not measure this metric. Run them again to test their differences.")


class FindingsView(FollowsMetrics):
    message = QtCore.Signal(str)

    def __init__(self, app_model: AppModel, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.app_model = app_model
        self.choices = ViewChoices("the measure compared", "query languages, one table each", self)
        toolbar, toolbar2 = QtWidgets.QHBoxLayout(), QtWidgets.QHBoxLayout()  # two rows, so the window can be narrow
        placed = [(toolbar, label, widget) for label, widget in self.choices.pick_lists()]
        for row, label, widget in placed + [(toolbar2, "Query languages:", self.choices.languages)]:
            row.addWidget(QtWidgets.QLabel(label))
            row.addWidget(fitted(widget))
        toolbar.addStretch(1)
        toolbar2.addStretch(1)
        self.status = QtWidgets.QLabel("")
        self.status.setStyleSheet("color: #555555;")
        self.text = QtWidgets.QTextBrowser(openExternalLinks=False)
        #: The page opens with the answer, as summary.md does (sw and yo of the choice; hidden without them).
        self.answer = AnswerBlock(self)
        self.split = answer_and_tables = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        answer_and_tables.addWidget(self.answer)
        answer_and_tables.addWidget(self.text)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addLayout(toolbar2)
        layout.addWidget(self.status)
        layout.addWidget(answer_and_tables, 1)
        self.choices.changed.connect(self.refresh)
        self.choices.metric_replaced.connect(self.message)  # said in the status bar, not changed silently
        self.choices.languages.changed.connect(self.compute)
        #: The findings shown (None: none yet, or nothing to test); tests read it.
        self.findings: Findings | None = None
        self._requests = Latest()
        self._stale = True
        app_model.metrics_changed.connect(self._metrics_changed)
        app_model.study_changed.connect(self._results_changed)
        app_model.database_changed.connect(lambda _previous: self._results_changed())

    def _results_changed(self) -> None:
        """Another study or database: the tables shown are not its own, so they are greyed until its are computed."""
        self._requests.drop()
        self.text.setEnabled(False)
        self.status.setText("Reading the chosen study's results… The tables below, greyed, are for the previous one.")

    def refresh(self) -> None:
        if not self.choices.refill(self.app_model.metrics):
            self._show_text(EMPTY_TEXT)
            return
        self.compute()

    def compute(self) -> None:
        """Read and test the current choice in the background; a newer choice drops an older answer."""
        if_latest = self._requests.request()
        eval_set, setting, passage_language, metric = self.choices.chosen()
        languages = self.choices.languages.checked()
        if not languages:
            self._show_text("Tick at least one query language.")
            return
        self.status.setText(f"Computing: testing {metric} on {eval_set} ({setting}) over every query… The tables "
                            "below, greyed, are for the previous choice.")
        self.text.setEnabled(False)  # greyed until the answer replaces them

        def done(findings: Findings | None) -> None:
            self.findings = findings
            self.status.setText("")
            self.text.setEnabled(True)
            if findings is None:
                self._show_text(NO_VALUES_TEXT)
            else:
                self.answer.show_answer(findings, self.app_model.metrics.view(eval_set, setting, passage_language,
                                                                              metric))
                self._make_room_for_the_answer()
                self.text.setHtml(findings_html(findings))

        def failed(error: BaseException) -> None:
            self.status.setText("")
            self.text.setEnabled(True)
            self.message.emit(f"Could not compute the findings: {error}")

        self.app_model.findings(eval_set, setting, passage_language, metric, languages, if_latest(done),
                                if_latest(failed))

    def _make_room_for_the_answer(self) -> None:
        """Give a newly shown answer three fifths of the height (it was hidden, so it had none); a height the
        user dragged it to is kept."""
        answer, tables = self.split.sizes()
        if self.answer.isVisible() and answer < FIGURE_HEIGHT:
            self.split.setSizes([(answer + tables) * 3 // 5, (answer + tables) * 2 // 5])

    def _show_text(self, text: str) -> None:
        self._requests.drop()  # an answer still on its way is for choices no longer shown
        self.findings = None
        self.answer.clear()
        self.status.setText("")
        self.text.setEnabled(True)
        self.text.setPlainText(text)

    def _refresh_on_change(self) -> None:
        QtCore.QTimer.singleShot(0, self, self.refresh)


# ---- HTML ------------------------------------------------------------------------------------
def _e(text: object) -> str:
    return html.escape(str(text))


def _mean(mean: Mean | None) -> str:
    if mean is None:
        return "–"
    spread = f" ± {mean.spread:.4f}" if mean.spread is not None else " <small>(1 seed)</small>"
    return f"{mean.mean:.4f}{spread}"


def _test(comparison: Comparison | None, name_other: bool = True) -> str:
    """A difference with its interval and Holm p; bold with a star when significant."""
    if comparison is None:
        return "–"
    other = f" vs {_e(comparison.baseline)}" if name_other else ""
    text = (f"{signed(comparison.mean_diff)}{other} <small>[{signed(comparison.ci_low)}, {signed(comparison.ci_high)}]</small> "
            f"p<sub>Holm</sub> {comparison.p_holm:.3g}")
    return f"<b>{text} *</b>" if comparison.p_holm < SIGNIFICANCE else text


def _cell(content: str) -> str:
    return f"<td>{content}</td>"


def _significant(comparison: Comparison | None) -> bool:
    return comparison is not None and comparison.p_holm < SIGNIFICANCE


def _title(found: LanguageFindings) -> str:
    passages = "all languages (pool)" if found.passage_language == ALL else (
        f"{language_name(found.passage_language)} ({found.passage_language}) passages")
    return f"{language_name(found.query_language)} ({found.query_language}) queries → {passages}"


def _shaded(comparison: Comparison, lower_is_better: bool, name_other: bool = True) -> str:
    """One difference, shaded by itself: green only where its first side is significantly better, red where worse.

    A "best − reference" cell holds one line per reference; shading the whole
    cell when any of them was significant made an insignificant (or worse)
    line look good too.
    """
    if not _significant(comparison):
        return _test(comparison, name_other)
    better = comparison.mean_diff < 0 if lower_is_better else comparison.mean_diff > 0
    colour = SIGNIFICANT_COLOUR if better else SIGNIFICANTLY_WORSE_COLOUR
    return f"<span style='background-color: {colour}'>{_test(comparison, name_other)}</span>"


def _leader_table(found: LanguageFindings, lower_is_better: bool) -> str:
    series = sorted({m.series for row in found.leaders for m in row.means}, key=series_order)
    head = "".join(f"<th>{_e(s)}</th>" for s in series)
    rows = [f"<tr><th>n</th>{head}<th>best</th><th>best − runner-up</th><th>best − reference</th></tr>"]
    for ref in found.references:
        # A reference is evaluated once, untrained: it has no seeds, so no "(1 seed)" beside it.
        rows.append(f"<tr><td>0</td><td colspan='{len(series)}'><i>{_e(ref.series)}</i> (reference, not trained): "
                    f"{ref.mean:.4f}</td><td></td><td></td><td></td></tr>")
    for row in found.leaders:
        by_series = {m.series: m for m in row.means}
        values = "".join(_cell(f"<b>{_mean(by_series.get(s))}</b>" if s in row.tied else _mean(by_series.get(s)))
                         for s in series)
        versus = "<br>".join(_shaded(c, lower_is_better) for c in row.versus_references) or "–"
        rows.append(f"<tr><td>{row.size}</td>{values}<td>{_e(row.best_label)}</td>"
                    f"{_cell(_shaded(row.runner_up, lower_is_better) if row.runner_up else '–')}"
                    f"{_cell(versus)}</tr>")
    return _table(rows)


def _hybrid_table(found: LanguageFindings, lower_is_better: bool) -> str:
    if not found.hybrid:
        return ""
    rows = ["<tr><th>n</th><th>comparison</th><th>difference [95% CI], Holm p</th><th>queries</th><th>seeds</th></tr>"]
    for c in found.hybrid:
        rows.append(f"<tr><td>{c.size}</td><td>{_e(c.strategy)} − {_e(c.baseline)}</td>"
                    f"{_cell(_shaded(c, lower_is_better, name_other=False))}<td>{c.n_queries}</td>"
                    f"<td>{c.n_seeds}</td></tr>")
    return "<p>Hybrid against each other strategy:</p>" + _table(rows)


def _fit_table(found: LanguageFindings) -> str:
    if not found.fits:
        return ""
    rows = ["<tr><th>series</th><th>a (plateau)</th><th>b</th><th>c (exponent)</th></tr>"]
    for series, fit in found.fits.items():
        if isinstance(fit, ScalingFit):
            rows.append(f"<tr><td>{_e(series)}</td><td>{fit.curve.a:.4f}{_interval(fit.a_interval, 4)}</td>"
                        f"<td>{fit.curve.b:.4g}</td><td>{fit.curve.c:.3f}{_interval(fit.c_interval, 3)}</td></tr>")
        else:
            rows.append(f"<tr><td>{_e(series)}</td><td colspan='3'>{_e(fit)}</td></tr>")
    return "<p>Fits of a − b·N<sup>−c</sup> to the seed means (95% bootstrap intervals over seeds and queries):</p>" + _table(rows)


def _interval(bounds: tuple[float, float] | None, digits: int) -> str:
    return f" <small>[{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]</small>" if bounds else ""


def _table(rows: list[str]) -> str:
    return "<table border='1' cellspacing='0' cellpadding='4'>" + "".join(rows) + "</table>"


def findings_html(findings: Findings) -> str:
    direction = "lower is better" if findings.lower_is_better else "higher is better"
    parts = [f"<h3>{_e(findings.metric)} on {_e(findings.eval_set)}, {_e(findings.setting)} setting ({direction})</h3>"]
    for found in findings.languages:
        parts.append(f"<h4>{_e(_title(found))}</h4>")
        parts.append("<ul>" + "".join(f"<li>{_e(s)}</li>" for s in found.sentences) + "</ul>")
        parts += [_leader_table(found, findings.lower_is_better), _hybrid_table(found, findings.lower_is_better),
                  _fit_table(found)]
    parts.append(f"<p><small>Means are over seeds of the mean over queries (± the sample sd over seeds). Differences "
                 f"pair queries, each averaged over the seeds both sides share, with a 95% bootstrap interval; p is "
                 f"the randomisation test's, Holm-adjusted over each table's family (all its rows, every language "
                 f"shown). <b>*</b>: p<sub>Holm</sub> &lt; {SIGNIFICANCE}; green: significant and in the first "
                 f"side's favour, red: significant and against it.</small></p>")
    return "".join(parts)

"""The pick lists shared by the scaling and Findings pages, and how they narrow each other."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from gui.form_widgets import CheckableComboBox, language_item_text
from gui.plot_page import refill
from results.plot_data import METRIC_HELP, MetricTable, language_order
from vocabulary.answer_choice import ANSWER_SETTINGS, answer_rank, headline_metric
from vocabulary.records import ALL

#: First choices when the data offer them: the research question's view (the eval set and setting of the
#: summary's answer come from :mod:`vocabulary.answer_choice`, so the pages open where summary.md does).
PREFERRED_SETTINGS = ANSWER_SETTINGS
PREFERRED_PASSAGES = ("en", ALL)
PREFERRED_METRICS = ("nDCG@10", "RR@10", "R@100", "AP")
SETTING_TEXT = {"mono": "monolingual (X→X)", "cross": "cross-lingual (X→Y)", "multi": "multilingual pool"}


def answer_first(table: MetricTable) -> list[str]:
    """The table's eval sets, the one of the summary's answer first (by its best setting)."""
    pairs = [(eval_set, setting) for eval_set in table.choices() for setting in table.choices(eval_set)]
    return list(dict.fromkeys(eval_set for eval_set, _ in sorted(pairs, key=lambda pair: answer_rank(*pair))))


def passage_text(code: str) -> str:
    return "all languages (pool)" if code == ALL else language_item_text(code)


def query_text(code: str) -> str:
    return "all query languages (average)" if code == ALL else language_item_text(code)


class ViewChoices(QtCore.QObject):
    """The five boxes that choose one view of the metric table: eval set, setting, passages, metric, query languages.

    The scaling and Findings pages choose what they show with the same
    boxes, narrowed the same way (:meth:`refill`); each page lays them out
    in its own toolbar. ``changed``: one of the four pick lists changed (the
    query languages have their own ``languages.changed``).
    """

    changed = QtCore.Signal()
    #: A sentence when a refill had to change the chosen metric (the new choices do not measure it).
    metric_replaced = QtCore.Signal(str)

    def __init__(self, metric_tip: str, languages_tip: str, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.eval_set = QtWidgets.QComboBox(toolTip="evaluation set and split")
        self.setting = QtWidgets.QComboBox(toolTip="which passages each query searches")
        self.passages = QtWidgets.QComboBox(toolTip="the language of the passages searched")
        self.metric = QtWidgets.QComboBox(toolTip=metric_tip)
        self.languages = CheckableComboBox(empty_text="no language")
        self.languages.setToolTip(languages_tip)
        for _label, combo in self.pick_lists():
            combo.currentIndexChanged.connect(lambda _index: self.changed.emit())

    def pick_lists(self) -> list[tuple[str, QtWidgets.QComboBox]]:
        """The four pick lists with their labels, in the order they narrow each other."""
        return [("Eval set:", self.eval_set), ("Setting:", self.setting), ("Passages:", self.passages),
                ("Metric:", self.metric)]

    def chosen(self) -> tuple[str, str, str, str]:
        """(eval set, setting, passage language, metric) as picked."""
        return (self.eval_set.currentData(), self.setting.currentData(), self.passages.currentData(),
                self.metric.currentData())

    def refill(self, table: MetricTable) -> bool:
        """Refill every box from ``table``; False (every list emptied) when it has no rows.

        Each list keeps its choice while it is offered; the query languages
        tick sw and yo when present.
        """
        if not len(table):
            for _label, combo in self.pick_lists():
                refill(combo, [])  # an empty database or study offers no choices
            return False
        refill(self.eval_set, table.choices(), answer_first(table))
        chosen = [self.eval_set.currentData()]
        refill(self.setting, table.choices(*chosen), PREFERRED_SETTINGS, text=lambda s: SETTING_TEXT.get(s, s))
        chosen.append(self.setting.currentData())
        refill(self.passages, table.choices(*chosen), PREFERRED_PASSAGES, text=passage_text)
        chosen.append(self.passages.currentData())
        before = self.metric.currentData()
        refill(self.metric, table.choices(*chosen), (headline_metric(chosen[0]), *PREFERRED_METRICS),
               tip=METRIC_HELP.get)
        if before is not None and self.metric.currentData() != before:
            self.metric_replaced.emit(f"{before} is not measured for {self.eval_set.currentText()}, "
                                      f"{self.setting.currentText()}, {self.passages.currentText()}: showing "
                                      f"{self.metric.currentData()} instead.")
        chosen.append(self.metric.currentData())
        present = language_order({row["query_language"] for row in table.view(*chosen)})
        if set(present) != set(self.languages.values()):
            ticked = [lang for lang in present if lang in ("sw", "yo")] or present
            self.languages.blockSignals(True)
            self.languages.set_entries([(lang, query_text(lang)) for lang in present], ticked)
            self.languages.blockSignals(False)
        return True

"""The answer the Findings page opens with, as ``summary.md`` does: figure, table and at most five sentences.

It shows :func:`analysis.answer.build_answer` of the findings on screen
(its sw and yo rows), beside the scaling figure of the same choice drawn by
the code that writes the summary's ``plots/answer.png``, so the page and the
file say the same thing. It hides itself where the choice has no sw or yo row,
and scrolls where the page gives it less height than the figure and the text
need (a squeezed label would otherwise be drawn under the figure).
"""

from __future__ import annotations

import html

from PySide6 import QtCore, QtWidgets

from analysis.answer import Answer, answer_languages, build_answer
from analysis.findings import Findings
from gui.figure_files import scaling_figure

#: Height of the figure on the page: enough to read both panels; the answer's text follows right below it.
FIGURE_HEIGHT = 320


class AnswerBlock(QtWidgets.QScrollArea):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        content = QtWidgets.QWidget()
        self.layout_ = QtWidgets.QVBoxLayout(content)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.text = QtWidgets.QLabel(wordWrap=True, textFormat=QtCore.Qt.TextFormat.RichText)
        self.figure: QtWidgets.QWidget | None = None
        self.layout_.addWidget(self.text)
        self.layout_.addStretch(1)
        self.setWidget(content)
        #: The answer shown (None: none); tests read it.
        self.answer: Answer | None = None
        self.setVisible(False)

    def show_answer(self, findings: Findings, rows: list[dict]) -> None:
        """Show the answer of ``findings`` with the figure of ``rows`` (the metric rows of the same choice)."""
        self.clear()
        self.answer = build_answer(findings)
        if self.answer is None:
            return
        cells = answer_languages(findings)
        try:
            self.figure = scaling_figure(rows, eval_set=findings.eval_set, setting=findings.setting,
                                         metric=findings.metric, passage_language=cells[0].passage_language,
                                         query_languages=tuple(c.query_language for c in cells))
            self.figure.setFixedHeight(FIGURE_HEIGHT)
            self.layout_.insertWidget(0, self.figure)
        except LookupError:
            self.figure = None
        self.text.setText(answer_html(self.answer))
        self.setVisible(True)

    def clear(self) -> None:
        if self.figure is not None:
            self.layout_.removeWidget(self.figure)
            self.figure.deleteLater()
            self.figure = None
        self.answer = None
        self.text.clear()
        self.setVisible(False)


def answer_html(answer: Answer) -> str:
    """Heading, table and sentences of the answer, as the label's rich text."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in answer.header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in answer.rows)
    return (f"<h3>The answer: {html.escape(answer.heading)}</h3>"
            f"<table border='1' cellspacing='0' cellpadding='3'><tr>{head}</tr>{rows}</table>"
            "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in answer.sentences) + "</ul>")

"""Small widgets and parsers the study form is built from.

They hold no study logic: the form turns their values into a
:class:`engine.config.StudyConfig` and lets the config validate itself.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from PySide6 import QtCore, QtGui, QtWidgets

from engine.languages import language_name

#: The pattern every number-list field accepts: "250, 500, 1000" (spaces or commas).
LIST_HINT = "separate values with commas, e.g. 250, 500, 1000"


class ListParseError(ValueError):
    """A number list field holds something that is not a number."""


def parse_numbers(text: str, kind: Callable[[str], float | int], what: str) -> tuple:
    """``"250, 500 1000"`` -> ``(250, 500, 1000)``; the error names the bad item."""
    items = [item for item in text.replace(",", " ").split() if item]
    values = []
    for item in items:
        try:
            values.append(kind(item))
        except ValueError:
            noun = "whole number" if kind is int else "number"
            raise ListParseError(f"{item!r} is not a {noun}; {what}: {LIST_HINT}") from None
    return tuple(values)


def format_numbers(values: Iterable[float | int]) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def language_item_text(code: str) -> str:
    return f"{code} — {language_name(code)}"


class LanguageChecklist(QtWidgets.QListWidget):
    """Checkable languages shown with their names; ``changed`` fires on every tick."""

    changed = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.itemChanged.connect(lambda _item: self.changed.emit())

    def set_languages(self, codes: Sequence[str], checked: Iterable[str]) -> None:
        wanted = set(checked)
        self.blockSignals(True)
        self.clear()
        for code in codes:
            item = QtWidgets.QListWidgetItem(language_item_text(code))
            item.setData(QtCore.Qt.ItemDataRole.UserRole, code)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Checked if code in wanted else QtCore.Qt.CheckState.Unchecked)
            self.addItem(item)
        self.blockSignals(False)
        self.changed.emit()

    def checked(self) -> tuple[str, ...]:
        return tuple(
            self.item(i).data(QtCore.Qt.ItemDataRole.UserRole)
            for i in range(self.count())
            if self.item(i).checkState() == QtCore.Qt.CheckState.Checked
        )

    def set_checked(self, codes: Iterable[str]) -> None:
        wanted = set(codes)
        self.blockSignals(True)
        for i in range(self.count()):
            item = self.item(i)
            state = item.data(QtCore.Qt.ItemDataRole.UserRole) in wanted
            item.setCheckState(QtCore.Qt.CheckState.Checked if state else QtCore.Qt.CheckState.Unchecked)
        self.blockSignals(False)
        self.changed.emit()


class CheckableComboBox(QtWidgets.QComboBox):
    """A drop-down of checkable entries whose closed face lists the ticked ones ("en, sw, yo").

    Used where a full checklist would take too much room (the languages of
    each evaluation set, the query languages of the plots). The popup stays
    open while the user ticks entries.
    """

    changed = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None, empty_text: str = "none"):
        super().__init__(parent)
        self._empty_text = empty_text
        self.setModel(QtGui.QStandardItemModel(self))
        # A read-only line edit shows the ticked entries in normal (not placeholder-grey) text.
        self.setEditable(True)
        self.lineEdit().setReadOnly(True)
        self.lineEdit().installEventFilter(self)
        self.view().pressed.connect(self._toggle)
        self.model().itemChanged.connect(self._item_changed)
        # Choosing an entry would put its own text in the box; put the summary back.
        self.currentIndexChanged.connect(lambda _index: self._show_text())
        self.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self._keep_open = False

    def set_entries(self, entries: Sequence[tuple[str, str]], checked: Iterable[str]) -> None:
        """``entries`` are (value, text) pairs; ``checked`` the values ticked."""
        wanted = set(checked)
        model: QtGui.QStandardItemModel = self.model()
        model.blockSignals(True)
        model.clear()
        for value, text in entries:
            item = QtGui.QStandardItem(text)
            item.setData(value, QtCore.Qt.ItemDataRole.UserRole)
            item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Checked if value in wanted else QtCore.Qt.CheckState.Unchecked)
            model.appendRow(item)
        model.blockSignals(False)
        self._item_changed()

    def values(self) -> tuple[str, ...]:
        return tuple(value for value, _text in self.entries())

    def entries(self) -> list[tuple[str, str]]:
        model: QtGui.QStandardItemModel = self.model()
        return [
            (model.item(i).data(QtCore.Qt.ItemDataRole.UserRole), model.item(i).text()) for i in range(model.rowCount())
        ]

    def checked(self) -> tuple[str, ...]:
        model: QtGui.QStandardItemModel = self.model()
        return tuple(
            model.item(i).data(QtCore.Qt.ItemDataRole.UserRole)
            for i in range(model.rowCount())
            if model.item(i).checkState() == QtCore.Qt.CheckState.Checked
        )

    def set_checked(self, values: Iterable[str]) -> None:
        wanted = set(values)
        model: QtGui.QStandardItemModel = self.model()
        model.blockSignals(True)
        for i in range(model.rowCount()):
            item = model.item(i)
            on = item.data(QtCore.Qt.ItemDataRole.UserRole) in wanted
            item.setCheckState(QtCore.Qt.CheckState.Checked if on else QtCore.Qt.CheckState.Unchecked)
        model.blockSignals(False)
        self._item_changed()

    def _toggle(self, index: QtCore.QModelIndex) -> None:
        item = self.model().itemFromIndex(index)
        checked = item.checkState() == QtCore.Qt.CheckState.Checked
        item.setCheckState(QtCore.Qt.CheckState.Unchecked if checked else QtCore.Qt.CheckState.Checked)
        self._keep_open = True

    def hidePopup(self) -> None:  # noqa: N802 - Qt override
        if self._keep_open:
            self._keep_open = False
            return
        super().hidePopup()
        self._show_text()

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 - Qt override
        """A click on the text opens the list, as on a plain combo box."""
        if watched is self.lineEdit() and event.type() == QtCore.QEvent.Type.MouseButtonRelease:
            self.showPopup()
            return True
        return super().eventFilter(watched, event)

    def text(self) -> str:
        values = self.checked()
        return ", ".join(values) if values else self._empty_text

    def _show_text(self) -> None:
        self.lineEdit().setText(self.text())
        self.lineEdit().setCursorPosition(0)
        self.setToolTip(self.text())

    def _item_changed(self, *_args: object) -> None:
        self._show_text()
        self.changed.emit()


class ErrorLabel(QtWidgets.QLabel):
    """The red one-line message shown under a form field; hidden when empty."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("color: #b00020;")
        self.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hide()

    def show_message(self, message: str) -> None:
        self.setText(message)
        self.setVisible(bool(message))


def stacked(*parts: QtWidgets.QWidget | QtWidgets.QLayout) -> QtWidgets.QWidget:
    """Widgets and layouts one above the other with no margins: a field, its hint, its error.

    A hidden part takes no room, so an empty error label leaves no gap in the form.
    """
    box = QtWidgets.QWidget()
    column = QtWidgets.QVBoxLayout(box)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(2)
    for part in parts:
        if isinstance(part, QtWidgets.QLayout):
            column.addLayout(part)
        else:
            column.addWidget(part)
    return box


def hint_label(text: str) -> QtWidgets.QLabel:
    """Grey help text under a field."""
    label = QtWidgets.QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: #555555;")
    return label

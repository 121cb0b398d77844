"""Small widgets and parsers the study form is built from.

They hold no study logic: the form turns their values into a
:class:`vocabulary.config.StudyConfig` and lets the config validate itself.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from PySide6 import QtCore, QtGui, QtWidgets

from vocabulary.languages import language_name

#: The pattern every number-list field accepts: "250, 500, 1000" (spaces or commas).
LIST_HINT = "separate values with commas, e.g. 250, 500, 1000"
#: The colour of a warning: something the form accepts but a reader of the results must know.
WARNING_COLOUR = "#8a5a00"


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
    """The shortest text that reads back as exactly these numbers (a loaded study must not change)."""
    return ", ".join(repr(v) for v in values)


def language_item_text(code: str) -> str:
    return f"{code} — {language_name(code)}"


class CheckableItems(QtGui.QStandardItemModel):
    """Entries (value, text) with a tick box each: the one model behind both checkable widgets below.

    Changes made in code reach the views through the model's ordinary
    signals (a reset, an insertion, one ``dataChanged`` for all ticks): a view
    that is not told keeps painting the old entries and ticks until it happens
    to repaint. Only ``itemChanged`` stays quiet, so the widgets announce one
    change per call instead of one per entry.
    """

    def fill(self, entries: Sequence[tuple[str, str]], checked: Iterable[str]) -> None:
        wanted = set(checked)
        items = []
        for value, text in entries:  # built before they join the model, so no itemChanged fires
            item = QtGui.QStandardItem(text)
            item.setData(value, QtCore.Qt.ItemDataRole.UserRole)
            item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(_state(value in wanted))
            items.append(item)
        self.clear()  # views are reset
        if items:
            self.invisibleRootItem().appendRows(items)  # views are told of the new rows

    def values(self) -> tuple[str, ...]:
        return tuple(self.item(i).data(QtCore.Qt.ItemDataRole.UserRole) for i in range(self.rowCount()))

    def checked(self) -> tuple[str, ...]:
        return tuple(
            self.item(i).data(QtCore.Qt.ItemDataRole.UserRole)
            for i in range(self.rowCount())
            if self.item(i).checkState() == QtCore.Qt.CheckState.Checked
        )

    def set_checked(self, values: Iterable[str]) -> None:
        wanted = set(values)
        self.blockSignals(True)
        for i in range(self.rowCount()):
            item = self.item(i)
            item.setCheckState(_state(item.data(QtCore.Qt.ItemDataRole.UserRole) in wanted))
        self.blockSignals(False)
        if self.rowCount():  # the views repaint every tick box now
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, 0),
                                  [QtCore.Qt.ItemDataRole.CheckStateRole])


def _state(on: bool) -> QtCore.Qt.CheckState:
    return QtCore.Qt.CheckState.Checked if on else QtCore.Qt.CheckState.Unchecked


class LanguageChecklist(QtWidgets.QListView):
    """Checkable languages shown with their names; ``changed`` fires on every tick."""

    changed = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.items = CheckableItems(self)
        self.setModel(self.items)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.items.itemChanged.connect(lambda _item: self.changed.emit())

    def set_languages(self, codes: Sequence[str], checked: Iterable[str]) -> None:
        self.items.fill([(code, language_item_text(code)) for code in codes], checked)
        self.changed.emit()

    def checked(self) -> tuple[str, ...]:
        return self.items.checked()

    def set_checked(self, codes: Iterable[str]) -> None:
        self.items.set_checked(codes)
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
        self.items = CheckableItems(self)
        self.setModel(self.items)
        # A read-only line edit shows the ticked entries in normal (not placeholder-grey) text.
        self.setEditable(True)
        self.lineEdit().setReadOnly(True)
        self.lineEdit().installEventFilter(self)
        self.view().pressed.connect(self._toggle)
        self.items.itemChanged.connect(self._item_changed)
        # Choosing an entry would put its own text in the box; put the summary back.
        self.currentIndexChanged.connect(lambda _index: self._show_text())
        self.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self._keep_open = False

    def set_entries(self, entries: Sequence[tuple[str, str]], checked: Iterable[str]) -> None:
        """``entries`` are (value, text) pairs; ``checked`` the values ticked."""
        self.items.fill(entries, checked)
        # The closed face shows only the ticked values; the list opens wide enough for whole entries.
        view = self.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + 2 * view.frameWidth()
                             + view.verticalScrollBar().sizeHint().width())
        self._item_changed()

    def values(self) -> tuple[str, ...]:
        return self.items.values()

    def checked(self) -> tuple[str, ...]:
        return self.items.checked()

    def set_checked(self, values: Iterable[str]) -> None:
        self.items.set_checked(values)
        self._item_changed()

    def _toggle(self, index: QtCore.QModelIndex) -> None:
        item = self.items.itemFromIndex(index)
        item.setCheckState(_state(item.checkState() != QtCore.Qt.CheckState.Checked))
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
    """The red one-line message shown under a form field (brown for a warning); hidden when empty."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, colour: str = "#b00020"):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet(f"color: {colour};")
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

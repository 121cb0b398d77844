"""What the scaling and heatmap pages share: pick lists, an empty-state message, image export, copy table."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gui.figures import export_image
from gui.folders import RememberedFolder
from results.app_model import AppModel
from results.runs import rows_as_text
from results.wording import plural

#: Pause between the steps of a chunked drawing, in which the window repaints and handles input.
STEP_GAP_MS = 5
EMPTY_TEXT = (
    "No results to plot yet.\n\nSubmit a study on the Setup page and start a worker on the Queue page "
    "(or run 'hybridscale demo'); results appear here as runs finish."
)


def refill(combo: QtWidgets.QComboBox, values: Sequence[Any], preferred: Sequence[Any] = (), text=str,
           tip: Callable[[Any], str | None] | None = None) -> None:
    """Replace a pick list's entries, keeping the current choice if it is still offered.

    Otherwise the first of ``preferred`` that is offered is chosen, else the
    first entry. ``tip`` gives an entry's tooltip. Signals are blocked: the
    caller redraws once afterwards.
    """
    current = combo.currentData()
    combo.blockSignals(True)
    combo.clear()
    for value in values:
        combo.addItem(text(value), value)
        if tip is not None and (help_text := tip(value)):
            combo.setItemData(combo.count() - 1, help_text, QtCore.Qt.ItemDataRole.ToolTipRole)
    for candidate in (current, *preferred):
        index = combo.findData(candidate)
        if candidate is not None and index >= 0:
            combo.setCurrentIndex(index)
            break
    combo.blockSignals(False)
    view = combo.view()
    view.setMinimumWidth(view.sizeHintForColumn(0) + view.verticalScrollBar().sizeHint().width())


#: The widest a toolbar pick list grows (in average characters), so the window can still be narrow; its open
#: list always shows whole entries.
PICK_LIST_CHARACTERS = 30


def fitted(widget: QtWidgets.QWidget, characters: int = PICK_LIST_CHARACTERS) -> QtWidgets.QWidget:
    """A pick list that grows with its entries (they arrive after the first show), up to ``characters``; others as
    they are."""
    policy = QtWidgets.QComboBox.SizeAdjustPolicy
    if isinstance(widget, QtWidgets.QComboBox) and widget.sizeAdjustPolicy() == policy.AdjustToContentsOnFirstShow:
        widget.setSizeAdjustPolicy(policy.AdjustToContents)
        widget.setMaximumWidth(widget.fontMetrics().averageCharWidth() * characters + 40)
    return widget


class FollowsMetrics(QtWidgets.QWidget):
    """A page drawn from the metric table: redrawn when the table changes while it is on screen, else when it
    is next shown (drawing a hidden page would take time from the one on screen)."""

    _stale = False

    def refresh(self) -> None:
        raise NotImplementedError

    def _refresh_on_change(self) -> None:
        self.refresh()

    def _metrics_changed(self) -> None:
        if self.isVisible():
            self._refresh_on_change()
        else:
            self._stale = True

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._stale:
            self._stale = False
            self.refresh()
        super().showEvent(event)


class PlotPage(FollowsMetrics):
    """A toolbar above either a plot canvas or a message saying why there is nothing to plot."""

    message = QtCore.Signal(str)

    def __init__(self, app_model: AppModel, folder: RememberedFolder, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.app_model = app_model
        self.folder = folder
        # Two rows of controls, so the window can be narrower than all the pick lists side by side.
        self.toolbar = QtWidgets.QHBoxLayout()
        self.toolbar2 = QtWidgets.QHBoxLayout()
        self.canvas = pg.GraphicsLayoutWidget()
        self.empty = QtWidgets.QLabel(EMPTY_TEXT, alignment=QtCore.Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.empty.setStyleSheet("color: #555555; font-size: 11pt;")
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.canvas)
        self.copy_button = QtWidgets.QPushButton("Copy table", toolTip="Copy the plotted numbers as tab-separated text")
        self.copy_button.clicked.connect(self.copy_table)
        self.export_button = QtWidgets.QPushButton("Export image…", toolTip="Save the plot as PNG or SVG")
        self.export_button.clicked.connect(self.choose_export_path)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(self.toolbar)
        layout.addLayout(self.toolbar2)
        layout.addWidget(self.stack, 1)
        self._stale = False
        self._drawing = 0
        # Redraw in a later turn of the event loop, not inside the model's callback: that runs while
        # the executor hands out answers, which a redraw would hold up. With ``self`` as context, Qt
        # drops the call if the page is deleted first.
        app_model.metrics_changed.connect(lambda: QtCore.QTimer.singleShot(0, self, self._metrics_changed))

    def add_control(self, label: str, widget: QtWidgets.QWidget, row: int = 0) -> None:
        """A labelled control on the first or second toolbar row."""
        toolbar = self.toolbar2 if row else self.toolbar
        toolbar.addWidget(QtWidgets.QLabel(label))
        toolbar.addWidget(fitted(widget))

    def finish_toolbar(self) -> None:
        self.toolbar.addStretch(1)
        self.toolbar2.addStretch(1)
        self.toolbar2.addWidget(self.copy_button)
        self.toolbar2.addWidget(self.export_button)

    def show_message(self, text: str) -> None:
        """Show ``text`` instead of the plot (no data, or nothing matches the choices)."""
        self.empty.setText(text)
        self.stack.setCurrentWidget(self.empty)
        self.copy_button.setEnabled(False)
        self.export_button.setEnabled(False)

    def show_plot(self) -> None:
        self.stack.setCurrentWidget(self.canvas)
        self.copy_button.setEnabled(True)
        self.export_button.setEnabled(True)

    @property
    def has_plot(self) -> bool:
        return self.stack.currentWidget() is self.canvas

    # ---- drawing ------------------------------------------------------------------------------
    def refresh(self, chunked: bool = False) -> None:
        """Refill the pick lists from the current rows, then draw."""
        if self.update_choices():
            self.redraw(chunked)

    def redraw(self, chunked: bool = False) -> None:
        """Draw the current choices: at once, or one step per turn of the event loop.

        Chunked drawing is for redraws the user did not ask for (a worker
        finished a run): each step (one strategy's curves, one map, a colour
        bar) is short even while a worker keeps the CPU busy, so the window
        never stalls for the whole drawing. A newer drawing cancels the rest of
        an older one.

        The canvas keeps showing the previous drawing until the last step: a
        half-drawn canvas painted between steps costs several repaints (every
        panel re-ranges its linked axes), which land back to back with the next
        step and block the window longer than the steps themselves
        (bench/RESULTS.md has the figures).
        """
        self._drawing += 1
        steps = self.drawing_steps()
        if chunked and len(steps) > 1:
            self.canvas.setUpdatesEnabled(False)
            self._run_steps([*steps, self._reveal], self._drawing)
        else:
            for step in steps:
                step()
            self._reveal()

    def _reveal(self) -> None:
        """Settle every view's range now, then repaint the canvas once.

        Without it pyqtgraph re-ranges the views inside the first paint and
        paints again (bench/RESULTS.md counts the extra repaints).
        """
        self.canvas.scene().prepareForPaint()
        self.canvas.setUpdatesEnabled(True)

    def _run_steps(self, steps: list[Callable[[], None]], drawing: int) -> None:
        if drawing != self._drawing or not steps:
            return
        steps[0]()
        if len(steps) > 1:  # a short delay, not 0: a chain of zero timers would starve input and paint events
            # With ``self`` as context, Qt drops the call if the page is deleted first (a closed window).
            QtCore.QTimer.singleShot(STEP_GAP_MS, self, lambda: self._run_steps(steps[1:], drawing))

    def _refresh_on_change(self) -> None:
        self.refresh(chunked=True)  # new values arrive while the user looks: keep the window responsive

    # ---- subclasses ------------------------------------------------------------------------
    def update_choices(self) -> bool:
        """Refill the pick lists; False (after showing why) when there is nothing to draw."""
        raise NotImplementedError

    def drawing_steps(self) -> list[Callable[[], None]]:
        """The drawing of the current choices, in steps (empty after showing a message instead)."""
        raise NotImplementedError

    def table(self) -> list[list[str]]:
        """The plotted numbers, header first."""
        raise NotImplementedError

    def default_file_name(self) -> str:
        raise NotImplementedError

    # ---- actions ---------------------------------------------------------------------------------
    def copy_table(self) -> None:
        if not self.has_plot:
            self.message.emit("Nothing to copy: there is no plot.")
            return
        table = self.table()
        QtWidgets.QApplication.clipboard().setText(rows_as_text(table))
        self.message.emit(f"Copied {plural(len(table) - 1, 'row')} to the clipboard.")

    def export_image(self, path: Path, width: int | None = None) -> Path:
        """Write the whole canvas (every panel, legend and colour bar) as PNG or SVG, by suffix.

        A PNG is ``width`` pixels wide (default: the canvas' width, at least 1,200).
        """
        if not self.has_plot:
            raise LookupError("there is no plot to export; choose an eval set and metric with results")
        written = export_image(self.canvas.ci, Path(path), width=width or max(1200, self.canvas.width()))
        self.message.emit(f"Saved {written}")
        return written

    def choose_export_path(self) -> None:
        path, _filter = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export plot image", self.folder.suggest(self.default_file_name()),
            "PNG image (*.png);;SVG drawing (*.svg)"
        )
        if not path:
            return
        self.folder.remember(path)
        if Path(path).suffix.lower() not in (".png", ".svg"):
            path += ".svg" if "svg" in _filter.lower() else ".png"
        width = None
        if Path(path).suffix.lower() == ".png":  # a screen-sized picture is too coarse for print: ask
            width, ok = QtWidgets.QInputDialog.getInt(
                self, "PNG size", "Width in pixels (3,000 is about 300 dpi at 25 cm; the height follows):",
                2 * max(1200, self.canvas.width()), 400, 12_000, 100)
            if not ok:
                return
        try:
            self.export_image(Path(path), width)
        except (OSError, ValueError, LookupError) as error:
            QtWidgets.QMessageBox.warning(self, "Export failed", f"Could not write {path}: {error}")

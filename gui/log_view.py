"""A run's journal (database events) and its log file, followed live like ``tail -f``."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from results.app_model import AppModel

#: A long log opens at its end: only this many trailing bytes are shown at first.
INITIAL_TAIL_BYTES = 256 * 1024


class LogTail:
    """Reads what a growing text file gained since the last call."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def read_new(self) -> str:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return ""
        if size < self.offset:  # the file was replaced (a new attempt): start over
            self.offset = 0
        if self.offset == 0 and size > INITIAL_TAIL_BYTES:
            self.offset = size - INITIAL_TAIL_BYTES
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            data = stream.read(size - self.offset)
        self.offset += len(data)
        return data.decode("utf-8", errors="replace")


class RunLogDialog(QtWidgets.QDialog):
    """Events on top, the log file below; both refresh every second while open."""

    def __init__(self, app_model: AppModel, run_id: str, label: str, log_path: str | None,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Run {run_id}: {label}")
        self.resize(900, 600)
        self._app_model, self._run_id = app_model, run_id
        self._tail = LogTail(Path(log_path)) if log_path else None

        self.events = QtWidgets.QTableWidget(0, 3)
        self.events.setHorizontalHeaderLabels(["Time (UTC)", "Event", "Message"])
        self.events.horizontalHeader().setStretchLastSection(True)
        self.events.verticalHeader().setVisible(False)
        self.events.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.log = QtWidgets.QPlainTextEdit(readOnly=True)
        self.log.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        self.log.setMaximumBlockCount(20_000)
        self.path_label = QtWidgets.QLabel(
            f"Log file: {log_path}" if log_path else "No log file yet: a worker writes one when it starts this run."
        )
        self.path_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        splitter.addWidget(self.events)
        box = QtWidgets.QWidget()
        box_layout = QtWidgets.QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        box_layout.addWidget(self.path_label)
        box_layout.addWidget(self.log)
        splitter.addWidget(box)
        splitter.setSizes([180, 420])
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(splitter)
        layout.addWidget(buttons)

        self._timer = QtCore.QTimer(self, interval=1000, timeout=self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        if self._tail is not None:
            text = self._tail.read_new()
            if text:
                self.log.moveCursor(QtGui.QTextCursor.MoveOperation.End)
                self.log.insertPlainText(text)
                self.log.moveCursor(QtGui.QTextCursor.MoveOperation.End)
        if not self._app_model.busy:  # a read still waiting: ask again at the next refresh, do not pile up
            self._app_model.run_events(self._run_id, self._show_events, lambda _error: None, owner=self)

    def _show_events(self, events: list[tuple]) -> None:
        if len(events) == self.events.rowCount():
            return
        self.events.setRowCount(len(events))
        for row, (time, kind, message) in enumerate(events):
            for column, text in enumerate((time.strftime("%Y-%m-%d %H:%M:%S"), kind, message)):
                self.events.setItem(row, column, QtWidgets.QTableWidgetItem(text))
        self.events.resizeColumnToContents(0)
        self.events.resizeColumnToContents(1)
        self.events.scrollToBottom()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self._timer.stop()
        super().closeEvent(event)

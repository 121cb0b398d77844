"""The queue page: every run with its live progress, and the local workers.

The table is polled from the database once a second with an incremental
query (``list_runs(changed_since=...)``) in the background thread, so the
event loop only merges a handful of changed rows. A finished run's
tooltip adds its provenance record (software, device, timings with steps/s
and passages/s, memory, data read), read once when the run is seen finished.
Cancel and retry are database writes, done in the background too (a busy
SQLite file may make them wait). The page follows the app model's database
and study.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from PySide6 import QtCore, QtGui, QtWidgets

from gui.log_view import RunLogDialog
from gui.workers import DEVICES, WorkerPool
from results.app_model import AppModel, Done, Failed
from results.latest import Latest
from results.runs import COLUMNS, PROGRESS_COLUMN, RunTable, rows_as_text, run_clock
from results.wording import plural
from vocabulary.provenance import tooltip_lines
from vocabulary.status import RunStatus

if TYPE_CHECKING:
    from results.app_model import RunView

POLL_MS = 1000
#: One poll in this many reads every run, not only those changed since the last poll.
FULL_POLL_EVERY = 30
#: States after which a run's provenance record is stored.
ENDED = (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED)
STATUS_COLOURS = {RunStatus.DONE: "#1b7f3b", RunStatus.FAILED: "#b00020", RunStatus.CANCELLED: "#7a7a7a",
                  RunStatus.RUNNING: "#0b5cad"}


class RunTableModel(QtCore.QAbstractTableModel):
    """A thin Qt view of :class:`results.runs.RunTable`."""

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.table = RunTable()
        #: Run id -> its provenance record's lines, for the tooltips of its row.
        self.provenance: dict[str, str] = {}

    def rowCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.table.runs)

    def columnCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: QtCore.Qt.Orientation, role: int = QtCore.Qt.ItemDataRole.DisplayRole):
        if orientation != QtCore.Qt.Orientation.Horizontal:
            return None
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == QtCore.Qt.ItemDataRole.ToolTipRole:
            return COLUMNS[section].tooltip or None
        return None

    def data(self, index: QtCore.QModelIndex, role: int = QtCore.Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        run = self.table.runs[index.row()]
        column = COLUMNS[index.column()]
        if role == QtCore.Qt.ItemDataRole.ToolTipRole and run.id in self.provenance:
            return f"{column.text(run, run_clock())}\n\n{self.provenance[run.id]}"
        if role in (QtCore.Qt.ItemDataRole.DisplayRole, QtCore.Qt.ItemDataRole.ToolTipRole):
            return column.text(run, run_clock())
        if role == QtCore.Qt.ItemDataRole.UserRole:
            return run.progress if index.column() == PROGRESS_COLUMN else run.id
        if role == QtCore.Qt.ItemDataRole.ForegroundRole and column.title == "Status" and run.status in STATUS_COLOURS:
            return QtGui.QBrush(QtGui.QColor(STATUS_COLOURS[run.status]))
        return None

    def run_at(self, row: int) -> RunView:
        return self.table.runs[row]

    def merge(self, views: list[RunView]) -> None:
        changed, added = self.table.merge(views)
        for row in changed:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        if added:
            first = len(self.table.runs) - added
            self.beginInsertRows(QtCore.QModelIndex(), first, len(self.table.runs) - 1)
            self.endInsertRows()

    def reset(self) -> None:
        self.beginResetModel()
        self.table.clear()
        self.provenance.clear()
        self.endResetModel()

    def set_provenance(self, records: dict[str, dict]) -> None:
        self.provenance.update({run_id: "\n".join(tooltip_lines(record)) for run_id, record in records.items()})
        if self.table.runs:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.table.runs) - 1, len(COLUMNS) - 1))

    def refresh_times(self) -> None:
        """Elapsed and ETA move with the clock even when no row changed."""
        if self.table.runs:
            first = next(i for i, c in enumerate(COLUMNS) if c.title == "Elapsed")
            self.dataChanged.emit(self.index(0, first), self.index(len(self.table.runs) - 1, first + 1))


class ProgressDelegate(QtWidgets.QStyledItemDelegate):
    """Draws the progress column as a progress bar."""

    def paint(self, painter: QtGui.QPainter, option: QtWidgets.QStyleOptionViewItem, index: QtCore.QModelIndex) -> None:
        progress = index.data(QtCore.Qt.ItemDataRole.UserRole) or 0.0
        bar = QtWidgets.QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = int(round(progress * 1000))
        bar.text = f"{progress:.0%}"
        bar.textVisible = True
        bar.state = option.state | QtWidgets.QStyle.StateFlag.State_Horizontal
        QtWidgets.QApplication.style().drawControl(QtWidgets.QStyle.ControlElement.CE_ProgressBar, bar, painter)


class QueueView(QtWidgets.QWidget):
    """Toolbar (workers, cancel, retry, log), the run table and the output of local workers."""

    #: Emitted after a poll in which some run reached 'done' (plots reload their metrics).
    runs_finished = QtCore.Signal()
    message = QtCore.Signal(str)

    def __init__(self, app_model: AppModel, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.app_model = app_model
        self.workers = WorkerPool(self)
        self.model = RunTableModel(self)
        self._done = 0
        self._polling = False
        self._requests = Latest()
        self._shown = Latest()  # dropped when another database or study is shown
        self._polls = 0
        self._dialogs: list[RunLogDialog] = []
        self._provenance_asked: set[str] = set()  # ended runs whose record was asked for (old runs have none)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(self._toolbar())
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        splitter.addWidget(self._run_table())
        splitter.addWidget(self._worker_output())
        splitter.setSizes([500, 120])
        layout.addWidget(splitter)

        self.timer = QtCore.QTimer(self, interval=POLL_MS, timeout=self.poll)
        app_model.database_changed.connect(lambda _previous_url: self._restart())
        app_model.study_changed.connect(self._restart)

    # ---- building the page -----------------------------------------------------------
    @staticmethod
    def _button(text: str, tip: str, slot: Callable[[], object], **options: object) -> QtWidgets.QPushButton:
        button = QtWidgets.QPushButton(text, toolTip=tip, **options)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _toolbar(self) -> QtWidgets.QHBoxLayout:
        """Worker device and start/stop, the actions on selected runs, and the status counts."""
        self.device = QtWidgets.QComboBox(toolTip="Where new workers train and encode (auto: CUDA if available)")
        self.device.addItems(DEVICES)
        self.start_worker = self._button("Start worker", "Start a local worker process on this database",
                                         self.start_local_worker)
        self.stop_workers = self._button("Stop workers", "Stop the workers started here; their runs return to the queue",
                                         self.stop_local_workers, enabled=False)
        self.cancel_button = self._button("Cancel", "Cancel the selected queued or running runs", self.cancel_selected)
        self.retry_button = self._button("Retry", "Queue the selected failed or cancelled runs again", self.retry_selected)
        self.log_button = self._button("Show log…", "Events and log file of the selected run", self.show_log)
        self.copy_button = self._button("Copy table", "Copy the table as tab-separated text", self.copy_table)
        self.counts = QtWidgets.QLabel()
        bar = QtWidgets.QHBoxLayout()
        for widget in (QtWidgets.QLabel("Worker device:"), self.device, self.start_worker, self.stop_workers):
            bar.addWidget(widget)
        bar.addSpacing(16)
        for widget in (self.cancel_button, self.retry_button, self.log_button, self.copy_button):
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.counts)
        return bar

    def _run_table(self) -> QtWidgets.QTableView:
        """One row per run, whole rows selected; a double click opens the run's log."""
        self.view = QtWidgets.QTableView()
        self.view.setModel(self.model)
        self.view.setItemDelegateForColumn(PROGRESS_COLUMN, ProgressDelegate(self.view))
        self.view.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setVisible(False)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.doubleClicked.connect(lambda _index: self.show_log())
        self._fit_columns()
        return self.view

    def _fit_columns(self) -> None:
        """Each column as wide as its longest expected text, or the longest it holds: no status or ETA is cut.

        Fitting to the first rows alone made the columns only as wide as a
        queued run's empty phase, ETA and worker.
        """
        metrics = self.view.fontMetrics()
        padding = 2 * self.view.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_FocusFrameHMargin) + 12
        for index, column in enumerate(COLUMNS):
            if column.widest:
                widest = max(metrics.horizontalAdvance(column.widest), metrics.horizontalAdvance(column.title))
                self.view.setColumnWidth(index, max(self.view.columnWidth(index), widest + padding))

    def _worker_output(self) -> QtWidgets.QPlainTextEdit:
        """What the workers started here print, and the Stop button following how many run."""
        self.worker_output = QtWidgets.QPlainTextEdit(readOnly=True, placeholderText="Output of the workers started here")
        self.worker_output.setMaximumBlockCount(5000)
        self.workers.output.connect(self.worker_output.appendPlainText)
        self.workers.changed.connect(self._workers_changed)
        return self.worker_output

    # ---- polling ------------------------------------------------------------------
    def start_polling(self) -> None:
        self.poll()
        self.timer.start()

    def poll(self) -> None:
        """Ask for the runs changed since the last poll (skipped while one is in flight).

        Every :data:`FULL_POLL_EVERY`-th poll reads every run: ``changed_since``
        compares timestamps written by other machines' clocks, and a full read
        heals any change a skewed clock or a long lock wait hid from it.
        """
        if self._polling:
            return
        self._polling = True
        self._polls += 1
        since = None if self._polls % FULL_POLL_EVERY == 0 else self.model.table.changed_since()
        if_latest = self._requests.request()  # one poll in flight at a time: a newer one means a restart
        self.app_model.poll_runs(since, if_latest(self._polled), if_latest(self._poll_failed))

    def _polled(self, views: list[RunView]) -> None:
        self._polling = False
        first_rows = not self.model.table.runs and views
        self.model.merge(views)
        if first_rows:  # fit the columns to the first rows once (on every poll it would cost time)
            self.view.resizeColumnsToContents()
            self._fit_columns()
        self.model.refresh_times()
        counts = self.model.table.counts()
        self.counts.setText(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no runs yet")
        if counts.get(RunStatus.DONE, 0) != self._done:
            self._done = counts.get(RunStatus.DONE, 0)
            self.runs_finished.emit()
        ended = {v.id for v in views if v.status in ENDED} - self._provenance_asked
        if ended:
            self._read_provenance(ended)

    def _read_provenance(self, run_ids: set[str]) -> None:
        """Read the records of runs seen ended (in the background) for their rows' tooltips."""
        self._provenance_asked |= run_ids
        if_shown = self._shown.current()  # every read of this database and study is kept, none after a restart
        self.app_model.provenance(run_ids, if_shown(self.model.set_provenance),
                                  lambda error: self.message.emit(f"Could not read the runs' provenance: {error}"))

    def _poll_failed(self, error: BaseException) -> None:
        self._polling = False
        self.message.emit(f"Could not read the queue: {error}")

    def _restart(self) -> None:
        """Read the table anew for another database or study; a poll still in flight answers for the old one."""
        self._requests.drop()
        self._shown.drop()
        self.model.reset()
        self._provenance_asked.clear()
        self._done = 0
        self._polling = False
        self.poll()

    # ---- actions -------------------------------------------------------------------
    def selected_runs(self) -> list[RunView]:
        rows = sorted({index.row() for index in self.view.selectionModel().selectedRows()})
        return [self.model.run_at(row) for row in rows]

    def _write(self, write: Callable[[list[str], Done[list], Failed], None], describe: Callable[[Any], str],
               verb: str) -> None:
        """Apply ``write`` to the selected runs; report each run's answer (as ``describe`` words it)."""
        runs = self.selected_runs()
        if not runs:
            self.message.emit(f"Select one or more runs to {verb}.")
            return
        ids = [r.id for r in runs]

        def report(results: list) -> None:
            self.message.emit(f"{verb}: " + "; ".join(f"{run_id} {describe(result)}"
                                                      for run_id, result in zip(ids, results)))
            self.poll()

        def failed(error: BaseException) -> None:
            text = error.args[0] if isinstance(error, KeyError) and error.args else error
            self.message.emit(f"Could not {verb}: {text}")

        write(ids, report, failed)

    def cancel_selected(self) -> None:
        def describe(status: RunStatus) -> str:
            return "cancel requested (the worker stops within seconds)" if status == RunStatus.RUNNING else status

        self._write(self.app_model.cancel_runs, describe, "cancel")

    def retry_selected(self) -> None:
        self._write(self.app_model.retry_runs, lambda queued: "queued again" if queued else "not failed or cancelled",
                    "retry")

    def show_log(self) -> RunLogDialog | None:
        runs = self.selected_runs()
        if not runs:
            self.message.emit("Select a run to see its log.")
            return None
        run = runs[0]
        dialog = RunLogDialog(self.app_model, run.id, run.label, run.log_path, self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda _=None, d=dialog: self._dialogs.remove(d) if d in self._dialogs else None)
        self._dialogs.append(dialog)
        dialog.show()
        return dialog

    def copy_table(self) -> None:
        now = run_clock()
        table = [[c.title for c in COLUMNS]] + [[c.text(run, now) for c in COLUMNS] for run in self.model.table.runs]
        QtWidgets.QApplication.clipboard().setText(rows_as_text(table))
        self.message.emit(f"Copied {plural(len(table) - 1, 'run')} to the clipboard.")

    # ---- workers -----------------------------------------------------------------------
    def set_device(self, device: str) -> None:
        self.device.setCurrentText(device)

    def start_local_worker(self, *, exit_when_empty: bool = False) -> QtCore.QProcess:
        process = self.workers.start(self.app_model.url, self.device.currentText(), exit_when_empty=exit_when_empty)
        self.message.emit(f"Started a worker on {self.device.currentText()} for {self.app_model.shown_url}")
        return process

    def stop_local_workers(self) -> None:
        """Ask the workers to stop without freezing the window (stragglers are killed after a grace period)."""
        self.workers.stop_all(block=False)
        self.message.emit("Stopping the workers: each checkpoints its run and hands it back to the queue.")

    def _workers_changed(self, running: int) -> None:
        self.stop_workers.setEnabled(running > 0)
        self.stop_workers.setText(f"Stop workers ({running})" if running else "Stop workers")

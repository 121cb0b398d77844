"""The main window: five pages (setup, queue, scaling curves, bias heatmaps, findings), menus, settings.

The window owns the one background thread every query runs in and the
:class:`~results.app_model.AppModel` every page observes (the database, the study
chosen in the toolbar, the metric rows); pages talk to the window with
signals (``message`` for the status bar, ``submitted`` and ``runs_finished``
to move the others along). Window geometry, the last database, page and
the folder of every file dialog are remembered with QSettings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from gui.about import about_html, docs_pages
from gui.background import Background
from gui.findings_view import FindingsView
from gui.folders import RememberedFolder
from gui.heatmap_view import HeatmapView
from gui.queue_view import QueueView
from gui.scaling_view import ScalingView
from gui.setup_view import SetupView
from results.app_model import AppModel, shown_location
from results.wording import plural
from vocabulary.config import ConfigError

if TYPE_CHECKING:
    from results.app_model import Database, StudySummary
    from results.study_data import StudyData

PAGES = ("Setup", "Queue", "Scaling curves", "Bias heatmaps", "Findings")
STUDY_FILTER = "Study results shown on the Queue, Scaling, Heatmap and Findings pages"


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, db: Database, settings: QtCore.QSettings | None = None, study_data: StudyData | None = None):
        super().__init__()
        self.settings = settings or QtCore.QSettings()
        self.background = Background(self)
        self.app_model = AppModel(db, self.background)
        self.folder = RememberedFolder(self.settings, lambda: self.app_model.database_folder)
        self.setup = SetupView(self.app_model, study_data)
        self.queue = QueueView(self.app_model)
        self.scaling = ScalingView(self.app_model, self.folder)
        self.heatmaps = HeatmapView(self.app_model, self.folder)
        self.findings = FindingsView(self.app_model)
        self.tabs = QtWidgets.QTabWidget(documentMode=True)
        for page, title in zip((self.setup, self.queue, self.scaling, self.heatmaps, self.findings), PAGES):
            self.tabs.addTab(page, title)
        self.setCentralWidget(self.tabs)

        self.study = QtWidgets.QComboBox(toolTip=STUDY_FILTER, minimumContentsLength=28)
        self.study.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.study.currentIndexChanged.connect(self._study_chosen)
        toolbar = self.addToolBar("Study")
        toolbar.setObjectName("study-toolbar")
        toolbar.setMovable(False)
        toolbar.addWidget(QtWidgets.QLabel(" Study: "))
        toolbar.addWidget(self.study)

        self._build_menus()
        for page in (self.setup, self.queue, self.scaling, self.heatmaps, self.findings):
            page.message.connect(self.show_message)
        self.app_model.message.connect(self.show_message)
        self.app_model.database_changed.connect(self._database_changed)
        self.setup.submitted.connect(self._submitted)
        self.queue.runs_finished.connect(self._runs_finished)
        self.queue.workers.changed.connect(self._workers_changed)
        self.statusBar()
        self._show_database()
        self._restore_settings()
        self.queue.start_polling()
        self.reload_studies()
        self.app_model.reload_metrics()

    # ---- menus --------------------------------------------------------------------------------
    def _action(self, menu: QtWidgets.QMenu, text: str, slot, shortcut=None, tip: str = "") -> QtGui.QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        action.setStatusTip(tip)
        return action

    def _build_menus(self) -> None:
        keys = QtGui.QKeySequence.StandardKey
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Open database…", self.choose_database, keys.Open, "Open a hybridscale SQLite file")
        self._action(file, "Open database &URL…", self.choose_database_url, None, "PostgreSQL or any SQLAlchemy URL")
        file.addSeparator()
        self._action(file, "&New study", self.new_study, keys.New, "Reset the setup form to the paper's study")
        self._action(file, "&Load study…", self.choose_study_to_load, "Ctrl+L", "Fill the form from a study JSON file")
        self._action(file, "&Save study…", self.choose_study_to_save, keys.Save, "Save the form as a study JSON file")
        file.addSeparator()
        self._action(file, "&Export CSV report…", self.choose_csv_path, "Ctrl+E", "The tidy metrics table")
        self._action(file, "Export &plot image…", self.export_current_plot, "Ctrl+Shift+E", "PNG or SVG")
        file.addSeparator()
        self._action(file, "&Quit", self.close, keys.Quit)

        edit = bar.addMenu("&Edit")
        self._action(edit, "&Copy table", self.copy_current_table, "Ctrl+Shift+C",
                     "Copy the queue or the plotted numbers as tab-separated text")

        view = bar.addMenu("&View")
        for index, title in enumerate(PAGES):
            self._action(view, title, lambda i=index: self.tabs.setCurrentIndex(i), f"Ctrl+{index + 1}")
        view.addSeparator()
        self._action(view, "&Refresh", self.refresh, keys.Refresh, "Read the database again")

        runs = bar.addMenu("&Runs")
        self._action(runs, "&Submit study", self.setup.submit, "Ctrl+Return")
        self._action(runs, "S&tart worker", self.queue.start_local_worker, None, "Start a local worker process")
        self.stop_action = self._action(runs, "St&op workers", self.queue.stop_local_workers)
        self.stop_action.setEnabled(False)
        runs.addSeparator()
        self._action(runs, "&Cancel selected runs", self.queue.cancel_selected, None)
        self._action(runs, "&Retry selected runs", self.queue.retry_selected, None)
        self._action(runs, "Show run &log…", self.queue.show_log, None)

        help_menu = bar.addMenu("&Help")
        for title, path in docs_pages():  # the reference pages of docs/, each opened in the desktop's viewer
            self._action(help_menu, title + "…", lambda _checked=False, path=path: self.open_page(path),
                         tip=f"open {path.name}")
        help_menu.addSeparator()
        self._action(help_menu, "&About hybridscale", self.show_about)
        self._action(help_menu, "About &Qt", QtWidgets.QApplication.aboutQt)

    # ---- database -------------------------------------------------------------------------------
    def _database_changed(self, previous_url: str) -> None:
        """The study list, title and settings follow another database; warn about workers left on the old one."""
        self.study.blockSignals(True)
        self.study.clear()
        self.study.blockSignals(False)
        self.reload_studies()
        self._show_database()
        self.settings.setValue("database", self.app_model.remembered_url)
        elsewhere = self.queue.workers.running_on(previous_url)
        if elsewhere:
            self.show_message(f"{elsewhere} worker(s) started here still work on {shown_location(previous_url)}; "
                              "Runs → Stop workers stops them")

    def open_database(self, location: str) -> None:
        """Open ``location`` in the background, then switch every page to it."""
        self.show_message(f"Opening {shown_location(location)}…")
        self.app_model.open_database(
            location,
            lambda: self.show_message(f"Opened {self.app_model.shown_url}"),
            lambda error: QtWidgets.QMessageBox.warning(self, "Cannot open database", _naming(location, error)),
        )

    def choose_database(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open a hybridscale database", self.folder.path(), "SQLite databases (*.db *.sqlite);;All files (*)"
        )
        if path:
            self.folder.remember(path)
            self.open_database(path)

    def choose_database_url(self) -> None:
        url, ok = QtWidgets.QInputDialog.getText(
            self, "Open database URL", "SQLAlchemy URL (e.g. postgresql+psycopg://user@host/hybridscale):",
            text=self.app_model.remembered_url,
        )
        if ok and url.strip():
            self.open_database(url.strip())

    def _show_database(self) -> None:
        self.setWindowTitle(f"hybridscale — {self.app_model.shown_url}")

    def reload_studies(self, choose: int | None = None) -> None:
        """Read the study list again; ``choose``: a study to show once it is listed (one just submitted)."""
        self.app_model.list_studies(lambda studies: self._show_studies(studies, choose),
                                    lambda error: self.show_message(f"Could not read the studies: {error}"))

    def _show_studies(self, studies: list[StudySummary], choose: int | None = None) -> None:
        current = self.study.currentData()
        self.study.blockSignals(True)
        self.study.clear()
        self.study.addItem("All studies", None)
        for study in studies:
            self.study.addItem(f"{study.id}: {study.name} ({plural(study.run_count, 'run')})", study.id)
        self.study.setCurrentIndex(max(0, self.study.findData(current)))
        self.study.blockSignals(False)
        if choose is not None and self.study.findData(choose) >= 0:
            self.study.setCurrentIndex(self.study.findData(choose))  # the pages follow (_study_chosen)

    def _study_chosen(self) -> None:
        self.app_model.set_study(self.study.currentData())

    def refresh(self) -> None:
        self.reload_studies()
        self.queue.poll()
        self.app_model.reload_metrics()

    # ---- page events ---------------------------------------------------------------------------------
    def _submitted(self, study_id: int, summary: str, start_worker: bool) -> None:
        self.show_message(summary)
        self.reload_studies(choose=study_id)  # the queue shows the study just submitted, not all of them
        self.tabs.setCurrentWidget(self.queue)
        if start_worker and self.queue.workers.running_on(self.app_model.url) == 0:
            self.queue.set_device(self.setup.device.currentText())
            self.queue.start_local_worker()

    def _runs_finished(self) -> None:
        self.app_model.reload_metrics()
        self.reload_studies()

    def _workers_changed(self, running: int) -> None:
        self.stop_action.setEnabled(running > 0)

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 15_000)

    # ---- studies, exports -------------------------------------------------------------------------------
    def new_study(self) -> None:
        self.setup.reset()
        self.tabs.setCurrentWidget(self.setup)

    def choose_study_to_load(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load study", self.folder.path(), "Study files (*.json)")
        if not path:
            return
        self.folder.remember(path)
        try:
            self.setup.load_study(Path(path))
        except (ValueError, OSError) as error:  # ConfigError (with the field) and undecodable files are ValueErrors
            QtWidgets.QMessageBox.warning(self, "Cannot load study", f"{Path(path).name}: {error}")
            return
        self.tabs.setCurrentWidget(self.setup)
        if self.setup.left_out:
            left_out = "; ".join(self.setup.left_out)
            self.show_message(f"Loaded {path}, leaving out what the form cannot hold: {left_out}")
            QtWidgets.QMessageBox.warning(self, "Study loaded in part",
                                          f"{Path(path).name}: these settings were left out: {left_out}. "
                                          "Saving or submitting the form uses the study as shown.")
        else:
            self.show_message(f"Loaded {path}")

    def choose_study_to_save(self) -> None:
        name = (self.setup.name.text().strip() or "study").replace("/", "-").replace(" ", "_")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save study", self.folder.suggest(f"{name}.json"), "Study files (*.json)"
        )
        if not path:
            return
        self.folder.remember(path)
        try:
            self.setup.save_study(Path(path))
        except (ConfigError, OSError) as error:
            QtWidgets.QMessageBox.warning(self, "Cannot save study", str(error))
            return
        self.show_message(f"Saved {path}; queue it from a shell with: hybridscale submit {path}")

    def export_csv(self, path: Path) -> None:
        """Write the tidy report of the chosen study (or all) in the background."""
        self.app_model.export_csv(
            path,
            lambda count: self.show_message(f"Wrote {count} rows to {path}"),
            lambda error: QtWidgets.QMessageBox.warning(self, "Export failed", f"Could not write {path}: {error}"),
        )

    def choose_csv_path(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export CSV report", self.folder.suggest("report.csv"), "CSV files (*.csv)"
        )
        if path:
            self.folder.remember(path)
            self.export_csv(Path(path))

    def export_current_plot(self) -> None:
        page = self.tabs.currentWidget()
        if page not in (self.scaling, self.heatmaps):
            page = self.scaling
            self.tabs.setCurrentWidget(page)
        page.choose_export_path()

    def copy_current_table(self) -> None:
        page = self.tabs.currentWidget()
        if hasattr(page, "copy_table"):
            page.copy_table()

    def open_page(self, path: Path) -> None:
        """Open a docs page with the desktop's viewer for Markdown (or text); say so when there is none."""
        if not QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(path))):
            self.show_message(f"No application here opens {path}; read it in any text editor")

    def show_about(self) -> QtWidgets.QDialog:
        """The About text in a scrolling box no taller than the window (a message box grows with its text)."""
        dialog = QtWidgets.QDialog(self, windowTitle="About hybridscale")
        text = QtWidgets.QTextBrowser(openExternalLinks=True)
        text.setHtml(about_html())
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        column = QtWidgets.QVBoxLayout(dialog)
        column.addWidget(text)
        column.addWidget(buttons)
        dialog.resize(min(720, self.width()), int(self.height() * 0.8))
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # ---- settings and closing --------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 820)
        state = self.settings.value("state")
        if state is not None:
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(self.settings.value("page", 0)))
        self.settings.setValue("database", self.app_model.remembered_url)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt override
        running = self.queue.workers.running
        if running:
            answer = QtWidgets.QMessageBox.question(
                self, "Workers are running",
                f"{running} worker(s) started here are still running. Stop them and quit? "
                "Their runs go back to the queue and resume from their last checkpoint.",
            )
            if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.queue.workers.stop_all(block=True)  # quitting: wait for their checkpoints
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("state", self.saveState())
        self.settings.setValue("page", self.tabs.currentIndex())
        self.queue.timer.stop()
        self.background.shutdown()
        super().closeEvent(event)


def _naming(location: str, error: object) -> str:
    """The error's line, led by the database's location unless it already names it (storage errors do)."""
    text = str(error)
    return text if shown_location(location) in text or location in text else f"{shown_location(location)}: {text}"

"""``hybridscale gui``: create the application, open the database, show the main window.

The database is, in order: ``--db``, the one open when the app last closed
(QSettings), the per-user default file. Nothing here imports torch, so the
window paints quickly (``bench/gui_startup.py`` measures it; bench/RESULTS.md).
"""

from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6 import QtCore, QtWidgets

from gui.display_check import check_display
from gui.figures import configure_plotting
from gui.main_window import MainWindow
from gui.qt_app import ensure_app
from gui.qt_check import check_qt
from results.app_model import open_first_database
from results.study_data import StudyData

ORGANIZATION = "hybridscale"
APPLICATION = "hybridscale"


def create_window(db: str | None = None, study_data: StudyData | None = None) -> MainWindow:
    """The main window on ``db`` (or the remembered / default database), not yet shown; ``study_data``
    answers the setup page's questions about a study's data (the shell passes the engine's).

    Everything built so far (modules, Qt wrappers) lives as long as the app,
    so it is moved out of the garbage collector's view with ``gc.freeze()``.
    Otherwise every full collection walks all of it while holding the
    interpreter lock, so a collection triggered by the database thread freezes
    the window as surely as one on the GUI thread (bench/RESULTS.md has the
    cost). Frozen objects are still freed by reference counting.

    Cycles are collected in the GUI thread only (pyqtgraph's
    ``GarbageCollector``: automatic collection off, a timer collecting by the
    same thresholds). A collection that starts on the database thread may free
    a widget's Python wrapper there, and its C++ destructor then waits for the
    interpreter lock while holding a Qt lock the GUI thread wants: the window
    hangs for good (seen in the test suite).
    """
    check_display()  # before Qt tries the display: it would abort naming no missing library
    check_qt()
    app = ensure_app()
    configure_plotting()
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    settings = QtCore.QSettings()
    database = open_first_database(db or settings.value("database") or None, remembered=db is None)
    window = MainWindow(database, settings, study_data)
    window.garbage_collector = GarbageCollector()  # kept with the window: its timer must live as long
    gc.freeze()
    return window


def main(db: str | None = None, study_data: StudyData | None = None) -> int:
    window = create_window(db, study_data)
    window.show()
    return QtWidgets.QApplication.instance().exec()

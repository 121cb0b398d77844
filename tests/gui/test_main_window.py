"""The main window: pages, menus and shortcuts, the study filter, databases, settings, About, screenshots."""

from __future__ import annotations

import dataclasses
import gc

from PySide6 import QtCore, QtGui, QtWidgets

from gui.about import about_html
from gui.app import create_window
from gui.main_window import PAGES, MainWindow
from gui.qt_check import none_references_lost
from storage import queue
from storage.db import open_db
from tests.gui.conftest import grab, make_window
from tests.gui.seed import seeded_study


def menu_actions(window) -> dict[str, QtGui.QAction]:
    actions = {}
    for menu_action in window.menuBar().actions():
        for action in menu_action.menu().actions():
            if action.text():
                actions[action.text().replace("&", "")] = action
    return actions


def test_menus_follow_desktop_conventions(window):
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Edit", "View", "Runs", "Help"]
    actions = menu_actions(window)
    shortcuts = {name: actions[name].shortcut() for name in ("Open database…", "Save study…", "Quit", "Refresh")}
    assert shortcuts["Open database…"] == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Open)
    assert shortcuts["Save study…"] == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Save)
    assert shortcuts["Quit"] == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Quit)
    for name in ("Export CSV report…", "Export plot image…", "Copy table", "About hybridscale", "Submit study",
                 "Start worker", "Cancel selected runs", "Retry selected runs", "Open database URL…", "Load study…"):
        assert name in actions, name
    for index, title in enumerate(PAGES):
        assert actions[title].shortcut() == QtGui.QKeySequence(f"Ctrl+{index + 1}")
        actions[title].trigger()
        assert window.tabs.currentIndex() == index


def test_every_page_renders_readably(qtbot, window, tmp_path):
    """Screenshots for a human to check (out/screenshots): text not clipped, axes labelled, legends readable."""
    for index, title in enumerate(PAGES):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(50)
        path = grab(window, tmp_path / f"page_{index + 1}_{title.replace(' ', '_').lower()}.png")
        image = QtGui.QImage(str(path))
        assert image.width() == window.width() and image.height() == window.height()


def test_study_filter_limits_the_queue_and_the_plots(qtbot, window, seeded):
    db, study, study_id = seeded
    smaller = dataclasses.replace(study, name="only hybrid", strategies=("hybrid",), train_sizes=(16,), seeds=(0,),
                                  include_baseline=False)
    other = queue.submit_study(db, smaller)  # its one run is already done: reused, not queued
    assert other.reused and not other.queued
    window.reload_studies()
    qtbot.waitUntil(lambda: window.study.count() == 3, timeout=5000)
    assert window.study.itemText(2) == f"{other.study_id}: only hybrid (1 run)"
    window.study.setCurrentIndex(2)
    qtbot.waitUntil(lambda: window.queue.model.rowCount() == 1, timeout=5000)
    qtbot.waitUntil(lambda: {r["run_id"] for r in window.app_model.metrics.rows} == set(other.reused), timeout=5000)
    window.tabs.setCurrentWidget(window.scaling)  # a hidden page redraws when it is shown
    assert list(window.scaling.drawn["sw"][1].curves) == ["hybrid α=0.5"]
    window.study.setCurrentIndex(0)
    qtbot.waitUntil(lambda: window.queue.model.rowCount() == 13, timeout=5000)


def test_open_database_switches_every_page_and_is_remembered(qtbot, window, tmp_path, settings):
    other_path = tmp_path / "second.db"
    other = open_db(other_path)
    queue.submit_study(other, dataclasses.replace(seeded_study("second"), seeds=(0,), train_sizes=(16,)))
    window.open_database(str(other_path))
    qtbot.waitUntil(lambda: str(other_path) in window.app_model.db.url, timeout=5000)
    qtbot.waitUntil(lambda: window.queue.model.rowCount() == 4, timeout=5000)
    qtbot.waitUntil(lambda: not window.scaling.has_plot, timeout=5000)  # nothing finished in that one yet
    assert str(other_path) in window.windowTitle()
    assert settings.value("database") == window.app_model.db.url
    other.dispose()


def test_a_broken_database_is_refused_with_a_message(qtbot, window, tmp_path, monkeypatch):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    warnings: list[str] = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda _parent, _title, text: warnings.append(text))
    before = window.app_model.db.url
    window.open_database(str(bad))
    qtbot.waitUntil(lambda: len(warnings) == 1, timeout=5000)
    assert window.app_model.db.url == before and warnings[0].count(str(bad)) == 1
    assert "is not a SQLite database" in warnings[0]


def test_passwords_stay_out_of_the_title_and_the_settings(window, settings):
    from storage.db import display_url, url_without_password

    url = "postgresql+psycopg://ana:s3cret@db.example.org:5432/hybridscale"
    assert display_url(url) == "postgresql+psycopg://ana:***@db.example.org:5432/hybridscale"
    assert url_without_password(url) == "postgresql+psycopg://ana@db.example.org:5432/hybridscale"
    assert "***" not in url_without_password("sqlite:////tmp/x.db") and "s3cret" not in window.windowTitle()


def test_window_state_page_and_database_are_remembered(qtbot, seeded, settings):
    db = seeded[0]
    first = make_window(qtbot, db, settings)
    first.resize(701, 503)  # within the offscreen screen (800 x 800), which restoreGeometry clamps to
    size = (first.width(), first.height())  # the toolbars may hold the width above 701
    assert size != (1280, 820)  # not the default size
    first.tabs.setCurrentIndex(2)
    first.close()
    settings.sync()
    assert settings.value("database") == db.url and int(settings.value("page")) == 2
    second = MainWindow(open_db(db.url), settings)
    qtbot.addWidget(second)
    assert second.tabs.currentIndex() == 2
    assert (second.width(), second.height()) == size
    second.close()


def test_create_window_reopens_the_remembered_database(qtbot, seeded, tmp_path, monkeypatch):
    db = seeded[0]
    settings_file = tmp_path / "app-settings"
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(settings_file))
    gc.unfreeze()
    try:
        window = create_window(db.url)
        # The app's long-lived objects are out of the collector's view (a full collection stalled the window).
        assert gc.get_freeze_count() > 10_000
        # Cycles are collected by a timer of the GUI thread, never by the database thread (a Qt deadlock).
        assert window.garbage_collector.timer.isActive() and not gc.isenabled()
    finally:
        gc.unfreeze()
    qtbot.addWidget(window)
    assert window.app_model.db.url == db.url
    window.close()
    again = create_window(None)  # no --db: the one open last time
    gc.unfreeze()
    qtbot.addWidget(again)
    assert again.app_model.db.url == db.url
    again.close()


def test_about_names_every_shipped_licence(window):
    text = about_html()
    for licence in ("CC BY-SA 4.0", "CC BY 4.0", "Apache-2.0", "MIT"):
        assert licence in text
    for source in ("XQuAD", "FLORES-200", "AfriQA", "NTREX-128", "MIRACL", "CIRAL", "multilingual-e5-small"):
        assert source in text
    assert "README.md" in text


def test_the_installed_pyside_keeps_reference_counts(qapp):
    """PySide6 6.12.0 loses a reference to None per void call and crashes on Python 3.11 (see gui/qt_check.py)."""
    assert none_references_lost(1000) < 50

"""Fixtures for the GUI tests: real Qt widgets (offscreen), real SQLite files, private settings."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets

from gui.figures import configure_plotting
from gui.main_window import MainWindow
from results.app_model import AppModel
from storage.db import Database

#: Screenshots of every page land here too, so a person can look at them after a run.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"


@pytest.fixture(autouse=True)
def collection_in_the_gui_thread():
    """Cycles are collected in this (the GUI) thread only, as the app does (gui.app.create_window).

    Otherwise a collection that the database thread happens to start frees an
    earlier test's widgets there, and Qt deadlocks (a destructor on that thread
    waits for the interpreter lock while holding a Qt lock). Automatic
    collection is off during the test, so everything the test made is still in
    the youngest generation at its end, where collecting it is cheap (a full
    collection of the suite's heap costs most of a second); the package's end
    collects fully (:func:`full_collection_at_the_end`).
    """
    gc.disable()
    try:
        yield
    finally:
        gc.collect(0)
        gc.enable()


@pytest.fixture(autouse=True, scope="package")
def full_collection_at_the_end():
    """What a GUI test's cheap collection left (cycles reaching older objects) is collected here, in this thread."""
    yield
    gc.collect()


@pytest.fixture(autouse=True, scope="session")
def plotting() -> None:
    """pyqtgraph's settings, set as the app's start (create_window) sets them."""
    configure_plotting()


@pytest.fixture()
def settings(tmp_path) -> QtCore.QSettings:
    """A settings file of this test's own (the user's real settings are never touched)."""
    return QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)


@pytest.fixture()
def background():
    """The one-thread query runner the pages share, shut down after the test."""
    from gui.background import Background

    runner = Background()
    yield runner
    runner.shutdown()


@pytest.fixture()
def app_model(empty_db, background) -> AppModel:
    """The model a page observes, on an empty database."""
    return AppModel(empty_db, background)


def show_page(qtbot, page: QtWidgets.QWidget, width: int, height: int) -> QtWidgets.QWidget:
    """``page`` on screen at this size, closed by qtbot after the test."""
    qtbot.addWidget(page)
    page.resize(width, height)
    page.show()
    return page


def make_window(qtbot, db: Database, settings: QtCore.QSettings) -> MainWindow:
    window = MainWindow(db, settings)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture()
def window(qtbot, seeded, settings) -> MainWindow:
    """The main window on the seeded database, with its metrics and queue loaded."""
    window = make_window(qtbot, seeded[0], settings)
    qtbot.waitUntil(lambda: len(window.app_model.metrics.rows) > 0 and window.queue.model.rowCount() == 13, timeout=10_000)
    yield window
    window.queue.workers.stop_all()


def grab(widget, path: Path) -> Path:
    """Save a screenshot of ``widget`` to ``path`` and to out/screenshots (for a human to look at)."""
    image = widget.grab()
    path.parent.mkdir(parents=True, exist_ok=True)
    assert image.save(str(path))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image.save(str(SCREENSHOTS / path.name))
    return path


def svg_text(svg: str) -> str:
    """The SVG's visible text in one line (Qt splits a label into several text runs at non-ASCII letters)."""
    return " ".join(re.sub(r"<[^>]+>", " ", svg).split())

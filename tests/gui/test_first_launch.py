"""The first commands a new user types (issue 21): the README's `hybridscale gui --db ...` opens the demo's
database, and a machine without Qt's X11 libraries gets their names and the apt line, not Qt's generic abort."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6 import QtCore

from gui.app import create_window
from gui.display_check import XCB_PLUGIN_LIBRARIES, debian_package, missing_libraries, uses_xcb, xcb_plugin
from hybridscale.cli import build_parser, cmd_gui
from tests.cli.test_readme_commands import readme_command
from tests.gui.seed import seed_database

MISSING = "libxcb-cursoX.so.0"  # a library no machine has, in a real copy of Qt's xcb plugin


@pytest.fixture()
def app_settings(tmp_path):
    """QSettings() of the app (what create_window reads) in a file of this test's own."""
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                             str(tmp_path / "app-settings"))


def test_the_readme_gui_command_opens_the_demo_database(qtbot, tmp_path, monkeypatch, app_settings):
    """`hybridscale gui --db hybridscale-demo/hybridscale.db`, verbatim, in the folder the demo wrote to.

    The command's own path (cmd_gui -> gui.app.main) is create_window, then
    the event loop; the test builds the window the same way and shows it,
    without entering a second event loop that would end the test's.
    """
    argv = readme_command("gui")
    monkeypatch.chdir(tmp_path)
    db, _study, _ = seed_database(Path(argv[argv.index("--db") + 1]))  # what `hybridscale demo` leaves
    db.dispose()
    args = build_parser().parse_args(argv)
    assert args.handler is cmd_gui
    try:
        window = create_window(args.db)
    finally:
        gc.unfreeze()  # create_window froze what it built; the rest of the suite collects as usual
    qtbot.addWidget(window)
    window.show()
    assert window.app_model.db.url == f"sqlite:///{tmp_path / 'hybridscale-demo' / 'hybridscale.db'}"
    qtbot.waitUntil(lambda: len(window.app_model.metrics) > 0, timeout=10_000)  # the demo's results, on screen
    window.close()


def test_debian_packages_are_named_after_the_library():
    assert [debian_package(name) for name in ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0",
                                              "libX11-xcb.so.1", "libglib-2.0.so.0")] == [
        "libxcb-cursor0", "libxcb-icccm4", "libxkbcommon-x11-0", "libx11-xcb1", "libglib2.0-0"]


@pytest.fixture()
def broken_plugin(tmp_path, monkeypatch) -> Path:
    """A copy of PySide6's xcb plugin that needs a library no machine has, beside Qt's own libraries."""
    monkeypatch.delenv("QT_QPA_PLATFORM_PLUGIN_PATH", raising=False)
    real = xcb_plugin()
    folder = tmp_path / "qt" / "plugins" / "platforms"
    folder.mkdir(parents=True)
    (tmp_path / "qt" / "lib").symlink_to(real.parents[2] / "lib")  # the plugin finds Qt at $ORIGIN/../../lib
    data = real.read_bytes()
    assert b"libxcb-cursor.so.0\0" in data
    (folder / real.name).write_bytes(data.replace(b"libxcb-cursor.so.0\0", MISSING.encode() + b"\0"))
    return folder / real.name


def test_the_library_a_plugin_lacks_is_named(broken_plugin):
    missing, error = missing_libraries(broken_plugin)
    assert missing[0] == MISSING and MISSING in error
    assert set(missing[1:]) <= set(XCB_PLUGIN_LIBRARIES)  # and whatever else this machine lacks of them


def test_hybridscale_gui_names_the_missing_library_and_its_apt_line(broken_plugin, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(DISPLAY=":99", QT_QPA_PLATFORM_PLUGIN_PATH=str(broken_plugin.parent))
    result = subprocess.run([sys.executable, "-m", "hybridscale", "gui", "--db", str(tmp_path / "x.db")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stderr  # Qt itself aborts (134) with "Could not load ... xcb"
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"hybridscale gui: error: Qt's X11 display plugin cannot load: {MISSING}")
    assert "Install with: sudo apt install libxcb-cursox0" in line


@pytest.mark.parametrize("env, xcb", [
    ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, False),
    ({"DISPLAY": ":0"}, True),
    ({}, False),  # no display: Qt would not open one
    ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland", "XDG_CURRENT_DESKTOP": "KDE"}, False),
    ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland", "XDG_CURRENT_DESKTOP": "ubuntu:GNOME"}, True),
    ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland", "QT_QPA_PLATFORM": "xcb"}, True),
])
def test_the_check_runs_where_qt_would_open_an_x11_display(monkeypatch, env, xcb):
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "XDG_SESSION_TYPE", "XDG_CURRENT_DESKTOP", "XDG_SESSION_DESKTOP"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert uses_xcb() is xcb

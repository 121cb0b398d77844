"""The one QApplication of the process, for the window and for headless figures alike."""

from __future__ import annotations

import os
import sys

from PySide6 import QtWidgets


def ensure_app() -> QtWidgets.QApplication:
    """The running QApplication, or a new one (offscreen when there is no display).

    Qt aborts the process when it cannot reach a display, so a machine without
    one (a server writing the demo's figures, CI) gets the offscreen platform;
    an explicit ``QT_QPA_PLATFORM`` still wins.
    """
    app = QtWidgets.QApplication.instance()
    if app is None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QtWidgets.QApplication([])
    return app

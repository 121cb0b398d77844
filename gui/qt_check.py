"""Refuse a PySide6 build that corrupts Python's reference counts, before it crashes the app.

PySide6 6.12.0 drops one reference to ``None`` every time Python calls a Qt
method that returns nothing (``update()``, ``setText()``, ``processEvents()``...).
On Python 3.11, where ``None`` is an ordinary counted object, its count
(a few thousand at start) reaches zero within seconds of normal use and
the interpreter aborts with "deallocating None". pyproject.toml excludes
that version; this check catches any other build with the same defect, so
the user gets one clear line instead of a random crash later.
"""

from __future__ import annotations

import sys

from PySide6 import QtCore

#: Calls made by the probe; a healthy build changes None's count by (almost) nothing.
PROBE_CALLS = 200


class BrokenQtError(RuntimeError):
    """The installed PySide6 cannot run this app on this Python."""


def none_references_lost(calls: int = PROBE_CALLS) -> int:
    """How many references to None ``calls`` void Qt calls took away (0 for a healthy build)."""
    timer = QtCore.QTimer()
    before = sys.getrefcount(None)
    for _ in range(calls):
        timer.setInterval(1)
    return max(0, before - sys.getrefcount(None))


def check_qt() -> None:
    """Raise :class:`BrokenQtError` with the fix when PySide6 loses references to None."""
    if sys.version_info >= (3, 12):  # None is immortal: such a bug is harmless there
        return
    lost = none_references_lost()
    if lost > PROBE_CALLS // 2:
        import PySide6

        raise BrokenQtError(
            f"PySide6 {PySide6.__version__} loses a reference to None on every Qt call on Python "
            f"{sys.version_info.major}.{sys.version_info.minor} and would crash this app: "
            "install another version, e.g. pip install 'PySide6-Essentials<6.12', or use Python 3.12+"
        )

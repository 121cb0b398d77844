"""GUI start-up: time from process launch to the main window's first paint, against a bare Qt window.

    python bench/gui_startup.py [--db PATH_OR_URL] [--repeat 5]

Each measurement is a fresh Python process (cold imports, as a user starting
the app). Ours runs the real command line, ``hybridscale --db DB gui``,
through :func:`hybridscale.cli.main`; an application-wide event filter
installed first notes the first paint of a main window and quits. The peer is
the least any PySide6 app can do: import QtWidgets, show one QMainWindow with
a label. The goal (issue 8) is under 2 s to first paint. The medians of
``--repeat`` launches are printed, with the ratio ours / peer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD_COMMON = """
import sys, time
from PySide6 import QtCore, QtWidgets

class FirstPaint(QtCore.QObject):
    def eventFilter(self, watched, event):
        if event.type() == QtCore.QEvent.Type.Paint and isinstance(watched, QtWidgets.QMainWindow):
            print(f"PAINTED {time.time():.6f}", flush=True)
            QtCore.QTimer.singleShot(0, QtWidgets.QApplication.quit)
            QtWidgets.QApplication.instance().removeEventFilter(self)
        return False

app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
spy = FirstPaint()
app.installEventFilter(spy)
"""

OURS = _CHILD_COMMON + """
from hybridscale.cli import main
main(["--db", sys.argv[1], "gui"])
"""

PEER = _CHILD_COMMON + """
window = QtWidgets.QMainWindow()
window.setCentralWidget(QtWidgets.QLabel("hello"))
window.resize(1280, 820)
window.show()
app.exec()
"""


def launch(code: str, *args: str) -> float:
    """Seconds from starting a fresh interpreter to its first main-window paint."""
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    started = time.time()
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)
    painted = [line for line in result.stdout.splitlines() if line.startswith("PAINTED ")]
    if not painted:
        raise RuntimeError(f"no paint seen (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    return float(painted[0].split()[1]) - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="database to open (default: a new empty SQLite file)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        db = args.db or str(Path(folder) / "bench.db")
        os.environ.setdefault("XDG_CONFIG_HOME", folder)  # keep the user's QSettings out of it
        launch(PEER)  # warm the page cache for both
        ours = [launch(OURS, db) for _ in range(args.repeat)]
        peer = [launch(PEER) for _ in range(args.repeat)]
    ours_s, peer_s = statistics.median(ours), statistics.median(peer)
    print(f"hybridscale gui, first paint: median {ours_s:.2f} s (min {min(ours):.2f}, max {max(ours):.2f}) over {args.repeat}")
    print(f"bare PySide6 window (peer):   median {peer_s:.2f} s (min {min(peer):.2f}, max {max(peer):.2f})")
    print(f"ratio ours / peer: {ours_s / peer_s:.2f}x; goal: under 2 s -> {'met' if ours_s < 2.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

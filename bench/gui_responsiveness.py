"""GUI responsiveness while workers write: the longest the event loop is blocked, against an idle window.

    python bench/gui_responsiveness.py [--runs 60] [--seconds 20] [--page scaling|heatmaps]

The window opens, through the app's own ``create_window``, on a database
holding a finished study of ``--runs`` runs with ~600 metric rows each (the
size of a 3-eval-set study), showing the scaling (or heatmap) page. Two
phases of ``--seconds`` each are timed with a 5 ms QTimer whose late ticks
measure how long the event loop was busy:

* peer: the same window, nothing changing (only its own polling);
* ours under load: a separate process plays a busy worker, updating a
  running run's progress every 0.2 s and finishing a run with its metrics
  every ``--finish-every`` seconds (default 2, a stress test: real runs take
  minutes), so the queue repaints and the plots reload and redraw.

Printed: the maximum and 99th-percentile stall of each phase and their
ratio. The goal (issue 8) is no stall over 50 ms caused by our code.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TICK_MS = 5
LANGUAGES = ("en", "sw", "yo", "ar", "de", "zh")


def metric_rows(config, run_index: int):
    """~600 plausible rows: 3 eval sets x settings x language pairs x 4 measures, plus MeanRank cells."""
    from vocabulary.records import MetricRow

    rows = []
    base = 0.3 + 0.001 * run_index
    for eval_set in ("flores/test", "afriqa/test", "xquad-r/eval"):
        for x in LANGUAGES:
            for y in LANGUAGES:
                setting = "mono" if x == y else "cross"
                for metric in ("nDCG@10", "R@100", "RR@10", "AP"):
                    rows.append(MetricRow(eval_set, setting, x, y, metric, base, 50))
                if x != y:
                    rows.append(MetricRow(eval_set, "multi", x, y, "MeanRank", 3.0 + run_index % 7, 50))
            rows.append(MetricRow(eval_set, "multi", x, "all", "LangBias", 5.0, 50))
    return rows


def finished_study(runs: int):
    from vocabulary.config import RunConfig, StudyConfig

    sizes = tuple(range(10, 10 + 10 * max(1, runs // 15), 10))  # 5 strategies x 3 seeds per size
    return StudyConfig("finished", strategies=("mono", "cross", "hybrid", "multi", "contrastive"), train_sizes=sizes,
                       seeds=(0, 1, 2), template=RunConfig(model="tiny:", batch_size=4))


def live_study():
    """Runs the busy worker will take: new hybrid alphas, so they are not already done."""
    from vocabulary.config import RunConfig, StudyConfig

    return StudyConfig("live", strategies=("hybrid",), alphas=(0.1, 0.3, 0.7, 0.9), train_sizes=(7, 11, 13),
                       seeds=(5,), template=RunConfig(model="tiny:", batch_size=4))


def seed(db_path: Path, runs: int) -> None:
    from storage import queue
    from storage.db import open_db

    db = open_db(db_path)
    queue.submit_study(db, finished_study(runs))
    index = 0
    while (claimed := queue.claim_next(db, "seed")) is not None:
        queue.complete(db, claimed.id, "seed", metric_rows(claimed.config, index))
        index += 1
    queue.submit_study(db, live_study())


def busy_worker(db_path: str, stop_at: float, finish_every: float) -> None:
    """Heartbeat every 0.2 s; finish a run with its metrics every ``finish_every`` s (0: never)."""
    from storage import queue
    from storage.db import open_db

    db = open_db(db_path)
    index = 1000
    while time.time() < stop_at:
        claimed = queue.claim_next(db, "busy")
        if claimed is None:
            return
        finish_at = time.time() + finish_every if finish_every > 0 else stop_at
        while time.time() < min(finish_at, stop_at):
            queue.heartbeat(db, claimed.id, "busy", progress=0.5, phase="training", step=5, total_steps=10, loss=1.0)
            time.sleep(0.2)
        queue.complete(db, claimed.id, "busy", metric_rows(claimed.config, index))
        index += 1


def measure(seconds: float) -> list[float]:
    """Run the real event loop for ``seconds``; gaps (ms) between ticks of a 5 ms timer, minus the 5 ms."""
    from PySide6 import QtCore

    stamps: list[float] = []
    timer = QtCore.QTimer(interval=TICK_MS, timeout=lambda: stamps.append(time.perf_counter()))
    timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    timer.start()
    loop.exec()
    timer.stop()
    return [max(0.0, (b - a) * 1000 - TICK_MS) for a, b in zip(stamps, stamps[1:])]


def summary(name: str, stalls: list[float]) -> tuple[float, float]:
    p99 = statistics.quantiles(stalls, n=100)[98]
    print(f"{name:>28}: max stall {max(stalls):6.1f} ms, 99th percentile {p99:5.1f} ms over {len(stalls)} ticks")
    return max(stalls), p99


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--finish-every", type=float, default=2.0,
                        help="seconds between finished runs (each reloads and redraws the plots); 0: progress only")
    parser.add_argument("--page", choices=("scaling", "heatmaps"), default="scaling", help="the page on screen")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as folder:
        db_path = Path(folder) / "bench.db"
        seed(db_path, args.runs)
        os.environ["XDG_CONFIG_HOME"] = folder  # keep the user's QSettings out of it
        from gui.app import create_window

        window = create_window(str(db_path))  # the app's own start-up, as `hybridscale gui` does it
        window.resize(1400, 900)
        window.show()
        window.tabs.setCurrentWidget(getattr(window, args.page))
        measure(3.0)  # let the first load and draw finish
        rows = len(window.app_model.metrics.rows)
        idle = measure(args.seconds)
        worker = multiprocessing.get_context("spawn").Process(
            target=busy_worker, args=(str(db_path), time.time() + args.seconds + 2, args.finish_every))
        worker.start()
        loaded = measure(args.seconds)
        worker.join()
        finishing = f"a run finished every {args.finish_every:g} s" if args.finish_every > 0 else "no run finished"
        print(f"{rows} metric rows of {args.runs} runs on the {args.page} page; queue updated every 0.2 s, {finishing}")
        idle_max, _ = summary("idle window (peer)", idle)
        busy_max, _ = summary("window with a busy worker", loaded)
        print(f"ratio of max stalls (busy / idle): {busy_max / max(idle_max, 0.1):.1f}x; "
              f"goal: no stall over 50 ms -> {'met' if busy_max <= 50 else 'NOT met'}")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

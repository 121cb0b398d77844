"""The worker loop: the one place where the engine meets storage.

A worker claims a run, executes it with :func:`engine.study.execute`, and
reports back. A heartbeat thread keeps the run's row alive (and carries the
latest progress) even while one long training step or encoding batch runs,
and it is also how a cancel request from the GUI reaches the engine.
A run's artifacts live in ``<artifacts>/runs/<run_id>/`` so a successor
worker on the same storage resumes from the last checkpoint after a crash.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.model import resolve_device
from engine.study import RunCancelled, RunProgress, execute
from storage import queue
from storage.db import Database

log = logging.getLogger("hybridscale.worker")


@dataclass(frozen=True)
class WorkerOptions:
    device: str = "auto"
    once: bool = False
    max_runs: int | None = None
    exit_when_empty: bool = False
    stale_after_s: float = 120.0
    poll_s: float = 2.0
    heartbeat_s: float = 2.0
    worker_id: str | None = None


#: Called with (run id, run label, progress) as a run advances; the demo draws its bar with it.
ProgressListener = Callable[[str, str, RunProgress], None]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_worker(db: Database, options: WorkerOptions = WorkerOptions(), listener: ProgressListener | None = None) -> int:
    """Execute queued runs until told to stop; return how many runs this worker executed."""
    worker_id = options.worker_id or default_worker_id()
    device = str(resolve_device(options.device))
    executed = 0
    while options.max_runs is None or executed < options.max_runs:
        for run_id in queue.requeue_stale(db, options.stale_after_s):
            log.warning("requeued run %s: its worker stopped sending heartbeats", run_id)
        claimed = queue.claim_next(db, worker_id)
        if claimed is None:
            if options.once or options.exit_when_empty:
                break
            time.sleep(options.poll_s)
            continue
        execute_claimed(db, claimed, device, heartbeat_s=options.heartbeat_s, listener=listener)
        executed += 1
        if options.once:
            break
    return executed


def execute_claimed(
    db: Database, claimed: queue.ClaimedRun, device: str, *, heartbeat_s: float = 2.0,
    listener: ProgressListener | None = None,
) -> str:
    """Run one claimed run to its end state; return 'done', 'failed', 'cancelled' or 'lost'.

    Never raises for a problem of the run itself: the error is stored as a
    one-line message (the traceback goes to the run log) and the queue goes on.
    """
    workdir = db.artifacts_dir / "runs" / claimed.id
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "run.log"
    queue.set_log_path(db, claimed.id, str(log_path))
    pulse = _Heartbeat(db, claimed, heartbeat_s)
    label = claimed.config.label

    def on_progress(progress: RunProgress) -> None:
        pulse.latest = progress
        if listener is not None:
            listener(claimed.id, label, progress)

    def on_checkpoint(step: int, path: Path) -> None:
        queue.record_checkpoint(db, claimed.id, step, str(path))
        log.info("checkpoint at step %d: %s", step, path)

    with _run_log(log_path):
        log.info("run %s (%s), attempt %d, on %s", claimed.id, label, claimed.attempts, device)
        pulse.start()
        try:
            rows = execute(
                claimed.config, workdir, device=device, progress=on_progress,
                cancelled=pulse.stop_requested, on_checkpoint=on_checkpoint,
            )
            pulse.stop()
            queue.complete(db, claimed.id, claimed.worker_id, rows)
            log.info("run %s done: %d metric values stored", claimed.id, len(rows))
            return "done"
        except RunCancelled:
            pulse.stop()
            if pulse.lost:
                log.warning("run %s was taken from this worker; stopped without storing", claimed.id)
                return "lost"
            queue.acknowledge_cancel(db, claimed.id, claimed.worker_id)
            log.info("run %s cancelled by the user", claimed.id)
            return "cancelled"
        except queue.RunLost as exc:
            pulse.stop()
            log.warning("%s", exc)
            return "lost"
        except Exception as exc:  # a bad run must not stop the queue
            pulse.stop()
            log.error("run %s failed:\n%s", claimed.id, traceback.format_exc())
            message = one_line_error(exc)
            try:
                queue.fail(db, claimed.id, claimed.worker_id, message)
            except queue.RunLost:
                return "lost"
            return "failed"


def one_line_error(exc: BaseException) -> str:
    """The first line of the error, named by its type; the full traceback is in the run log."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else "no message"
    return f"{type(exc).__name__}: {first} (details in the run log)"


class _Heartbeat:
    """Background liveness + progress + cancel polling for one run."""

    def __init__(self, db: Database, claimed: queue.ClaimedRun, interval_s: float):
        self._db = db
        self._claimed = claimed
        self._interval = interval_s
        self._halt = threading.Event()
        self._cancel = threading.Event()
        self.lost = False
        self.latest = RunProgress("starting", 0.0)
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{claimed.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(timeout=30)

    def stop_requested(self) -> bool:
        return self._cancel.is_set()

    def _loop(self) -> None:
        while not self._halt.wait(self._interval):
            progress = self.latest
            try:
                if queue.heartbeat(
                    self._db, self._claimed.id, self._claimed.worker_id,
                    progress=progress.fraction, phase=progress.phase, step=progress.step,
                    total_steps=progress.total_steps, loss=progress.loss,
                ):
                    self._cancel.set()
            except queue.RunLost:
                self.lost = True
                self._cancel.set()
                return
            except Exception:  # a transient DB error must not kill the run; the next beat retries
                log.warning("heartbeat failed for run %s:\n%s", self._claimed.id, traceback.format_exc())


class _run_log:
    """Attach a file handler for one run's log to the hybridscale and engine loggers."""

    def __init__(self, path: Path):
        self._handler = logging.FileHandler(path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._loggers = [logging.getLogger("hybridscale"), logging.getLogger("engine")]

    def __enter__(self) -> None:
        for logger in self._loggers:
            logger.addHandler(self._handler)
            logger.setLevel(min(logger.level or logging.INFO, logging.INFO))

    def __exit__(self, *exc_info: object) -> None:
        for logger in self._loggers:
            logger.removeHandler(self._handler)
        self._handler.close()

"""The queue worker: the one place where the engine meets storage.

A worker claims a run, executes it with :func:`engine.study.execute`, and
reports back. A heartbeat thread keeps the run's row alive (and carries the
latest progress) even while one long training step or encoding batch runs,
and it is also how a cancel request from the GUI reaches the engine.
A run's working folder is ``<artifacts>/runs/<run_id>/`` so a successor
worker on the same storage resumes from the last checkpoint after a crash;
its ``eval/`` folder keeps the finished run's TREC run files and qrels. With a
mirror (:mod:`hybridscale.artifacts`) checkpoints, model, evaluation files and
log are also copied to a shared location, and a worker on another machine
resumes from there.

Under torchrun (``hybridscale worker --nproc-per-node N``) every process runs
:func:`run_worker` with its :class:`engine.distributed.DistContext`. Rank 0
alone touches the database and the mirror: it claims, sends the claimed run
to the other ranks, heartbeats, evaluates and stores the outcome; all ranks
train together. Rank 0 decides when the loop ends, so all ranks leave it
together (an empty queue included). An error that only one rank hits in the
middle of training leaves the others waiting in a collective; torchrun then
stops the whole group when that rank's process exits, and the run is requeued
by the next worker once its heartbeat is stale.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.distributed import DistContext
from engine.model import resolve_device
from engine.state import Cancelled, Progress
from engine.evaluate import Evaluation
from engine.study import EVAL_DIR, execute
from engine.train import CHECKPOINT_DIR, MODEL_DIR
from hybridscale.artifacts import ArtifactMirror
from storage import queue
from storage.db import Database
from vocabulary.status import RunStatus

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
    #: Shared copy of checkpoints, models and logs (a path or fsspec URL); None keeps them local only.
    mirror: str | None = None


#: Called with (run id, run label, progress) as a run advances; the demo draws its bar with it.
ProgressListener = Callable[[str, str, Progress], None]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


#: What rank 0 broadcasts instead of a run when the worker was told to stop.
_STOP = "stop"


def run_worker(
    db: Database | None, options: WorkerOptions = WorkerOptions(), listener: ProgressListener | None = None,
    context: DistContext | None = None, shutdown: threading.Event | None = None,
) -> int:
    """Execute queued runs until told to stop; return how many runs this worker executed.

    ``context`` comes from :func:`engine.distributed.init_from_env`; without it
    this is one process on ``options.device``. Only rank 0 needs ``db``.
    Setting ``shutdown`` (the CLI does on SIGTERM / Ctrl-C) stops the worker
    cleanly: a run in progress is checkpointed and handed back to the queue
    at once, so the next worker resumes it without waiting for a stale heartbeat.
    """
    context = context or DistContext.single(resolve_device(options.device))
    shutdown = shutdown or threading.Event()
    worker_id = options.worker_id or default_worker_id()
    mirror = ArtifactMirror(options.mirror) if options.mirror and context.is_main else None
    executed = 0
    while options.max_runs is None or executed < options.max_runs:
        if context.is_main:
            task = _STOP if shutdown.is_set() else _next_task(db, worker_id, options, mirror)
        task = context.broadcast(task if context.is_main else None)
        if task == _STOP:
            break
        if task is None:
            if options.once or options.exit_when_empty:
                break
            shutdown.wait(options.poll_s)
            continue
        claimed, workdir = task
        if context.is_main:
            _execute_claimed(db, claimed, workdir, context, mirror, heartbeat_s=options.heartbeat_s, listener=listener,
                             shutdown=shutdown)
        else:
            _follow(claimed, workdir, context)
        executed += 1
        if options.once:
            break
    return executed


def _next_task(
    db: Database, worker_id: str, options: WorkerOptions, mirror: ArtifactMirror | None
) -> tuple[queue.ClaimedRun, Path] | None:
    """Claim a run and prepare its working folder (fetching a newer mirrored checkpoint); None: queue empty."""
    for run_id in queue.requeue_stale(db, options.stale_after_s):
        log.warning("requeued run %s: its worker stopped sending heartbeats", run_id)
    while (claimed := queue.claim_next(db, worker_id)) is not None:
        workdir = db.artifacts_dir / "runs" / claimed.id
        workdir.mkdir(parents=True, exist_ok=True)
        if mirror is None or _fetch_checkpoint(db, claimed, workdir, mirror, options.heartbeat_s):
            return claimed, workdir
    return None


def _fetch_checkpoint(
    db: Database, claimed: queue.ClaimedRun, workdir: Path, mirror: ArtifactMirror, heartbeat_s: float
) -> bool:
    """Bring a newer mirrored checkpoint into ``workdir``; False (the run failed) when the mirror cannot be read."""
    log_path = workdir / "run.log"
    queue.set_log_path(db, claimed.id, str(log_path))
    pulse = _Heartbeat(db, claimed, heartbeat_s)  # a long download must not look like a dead worker
    pulse.latest = Progress("fetching checkpoint", 0.0)
    with _run_log(log_path):
        pulse.start()
        try:
            step = mirror.pull_checkpoint(claimed.id, workdir / CHECKPOINT_DIR)
        except Exception as exc:  # an unreachable mirror fails this run, not the worker
            pulse.stop()
            log.error("run %s: fetching its checkpoint from %s failed:\n%s", claimed.id, mirror, traceback.format_exc())
            _store_failure(db, claimed, f"fetching its checkpoint from {mirror} failed: {one_line_error(exc)}")
            return False
        pulse.stop()
        if step is not None:
            log.info("run %s: fetched the checkpoint of step %d from %s", claimed.id, step, mirror)
    return True


def _follow(claimed: queue.ClaimedRun, workdir: Path, context: DistContext) -> None:
    """A rank other than 0: train its share of the run, then tell rank 0 how it ended (None: fine)."""
    error = None
    try:
        if claimed.config.is_training:  # an evaluation-only run is rank 0's alone
            execute(claimed.config, workdir, device=str(context.device), context=context)
    except Cancelled:
        pass  # every rank stopped at the same step; rank 0 records it
    except Exception as exc:
        log.error("run %s failed on rank %d:\n%s", claimed.id, context.rank, traceback.format_exc())
        error = f"rank {context.rank}: {one_line_error(exc)}"
    context.gather(error)


def _execute_claimed(
    db: Database, claimed: queue.ClaimedRun, workdir: Path, context: DistContext, mirror: ArtifactMirror | None,
    *, heartbeat_s: float, listener: ProgressListener | None, shutdown: threading.Event,
) -> str:
    """Run one claimed run to its end state; return 'done', 'failed', 'cancelled', 'released' or 'lost'.

    Never raises for a problem of the run itself: the error is stored as a
    one-line message (the traceback goes to the run log) and the queue goes on.
    """
    log_path = workdir / "run.log"
    queue.set_log_path(db, claimed.id, str(log_path))
    pulse = _Heartbeat(db, claimed, heartbeat_s)
    label = claimed.config.label
    state = _RunState(pulse, shutdown, lambda p: listener(claimed.id, label, p) if listener is not None else None)

    def on_checkpoint(step: int, path: Path) -> None:
        location = mirror.push_checkpoint(claimed.id, path, step) if mirror is not None else str(path)
        queue.record_checkpoint(db, claimed.id, step, location)
        log.info("checkpoint at step %d: %s", step, location)

    with _run_log(log_path):
        log.info("run %s (%s), attempt %d, on %s x %d", claimed.id, label, claimed.attempts, context.device,
                 context.world_size)
        pulse.start()
        result, error = None, None
        try:
            result = execute(claimed.config, workdir, device=str(context.device), state=state,
                             on_checkpoint=on_checkpoint, context=context)
            for folder in (MODEL_DIR, EVAL_DIR):
                if mirror is not None and (workdir / folder).is_dir():
                    log.info("%s copied to %s", folder, mirror.push_folder(claimed.id, workdir / folder, folder))
        except Exception as exc:  # stored below, whatever it is: a bad run must not stop the queue
            error = exc
        peer_errors = [e for e in context.gather(None)[1:] if e]  # the other ranks wait here while rank 0 evaluates
        pulse.stop()
        released = shutdown.is_set() and not pulse.stop_requested()  # stopped by us, not cancelled by the user
        outcome = _store_outcome(db, claimed, result, error, peer_errors, lost=pulse.lost, released=released)
    if mirror is not None:
        try:
            mirror.push_file(claimed.id, log_path)
        except Exception:
            log.warning("run %s: copying its log to %s failed:\n%s", claimed.id, mirror, traceback.format_exc())
    return outcome


def _store_outcome(
    db: Database, claimed: queue.ClaimedRun, result: Evaluation | None, error: Exception | None,
    peer_errors: list[str], *, lost: bool, released: bool,
) -> str:
    if isinstance(error, Cancelled):
        if lost:
            log.warning("run %s was taken from this worker; stopped without storing", claimed.id)
            return "lost"
        try:
            status = queue.release(db, claimed.id, claimed.worker_id) if released else None
            if status is None:
                queue.acknowledge_cancel(db, claimed.id, claimed.worker_id)
        except queue.RunLost as exc:
            log.warning("%s", exc)
            return "lost"
        if status == RunStatus.QUEUED:
            log.info("run %s handed back to the queue: this worker was stopped", claimed.id)
            return "released"
        log.info("run %s cancelled by the user", claimed.id)
        return "cancelled"
    if error is None and not peer_errors:
        result = result or Evaluation()
        try:
            queue.complete(db, claimed.id, claimed.worker_id, result.rows, per_query=result.per_query,
                           warnings=result.warnings)
        except queue.RunLost as exc:
            log.warning("%s", exc)
            return "lost"
        log.info("run %s done: %d metric values and the per-query values of %d cells stored", claimed.id,
                 len(result.rows), len(result.per_query))
        return "done"
    if error is not None:
        log.error("run %s failed:\n%s", claimed.id, "".join(traceback.format_exception(error)))
        message = one_line_error(error)
    else:
        log.error("run %s failed on another rank: %s", claimed.id, "; ".join(peer_errors))
        message = peer_errors[0]
    return _store_failure(db, claimed, message)


def _store_failure(db: Database, claimed: queue.ClaimedRun, message: str) -> str:
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


class _RunState:
    """The engine's view of a claimed run: progress goes to the heartbeat (and a listener);
    a cancel from the database or a stop of this worker cancels it."""

    def __init__(self, pulse: "_Heartbeat", shutdown: threading.Event, listener: Callable[[Progress], None]):
        self._pulse = pulse
        self._shutdown = shutdown
        self._listener = listener

    def report(self, progress: Progress) -> None:
        self._pulse.latest = progress
        self._listener(progress)

    def cancelled(self) -> bool:
        return self._pulse.stop_requested() or self._shutdown.is_set()


class _Heartbeat:
    """Background liveness + progress + cancel polling for one run."""

    def __init__(self, db: Database, claimed: queue.ClaimedRun, interval_s: float):
        self._db = db
        self._claimed = claimed
        self._interval = interval_s
        self._halt = threading.Event()
        self._cancel = threading.Event()
        self.lost = False
        self.latest = Progress("starting", 0.0)
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

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

Faults end in one line. A run that fails for lack of disk space is marked
failed with "no space left on <folder>: free N MB or use --artifacts
elsewhere" (the half-written checkpoint is already gone), and the worker then
stops with :class:`WorkerStopped` rather than failing every queued run in
turn. A database that cannot be written stops the worker the same way, after
a last attempt to mark the run failed; if even that fails, the run's claim
names this process, so the next worker on this host requeues it at once.

Runs with ``frozen_cache`` share the frozen-prefix caches in
``<artifacts>/frozen_prefix/`` (:mod:`engine.frozen_prefix`): the study's
later runs reuse the hidden states its earlier ones computed.

Once a run's results are stored its checkpoint (local and mirrored) and
its best dev loss's weights are deleted, and its model too unless the run's
``keep_model`` says to keep it; a kept model shares its tokenizer files
with the other runs' models (:func:`hybridscale.artifacts.share_identical_files`).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.disk_full import MB, DiskFullError, exception_chain, free_bytes, is_disk_full
from engine.distributed import DistContext
from engine.evaluate import Evaluation
from engine.folders import partial_prefix
from engine.frozen_prefix import CACHE_DIR as FROZEN_CACHE_DIR
from engine.model import resolve_device
from engine.selection import BEST_PREFIX
from engine.state import Cancelled, Progress
from engine.study import EVAL_DIR, execute
from engine.train import CHECKPOINT_DIR, MODEL_DIR
from hybridscale.artifacts import ArtifactMirror, share_identical_files
from hybridscale.provenance import AttemptRecorder
from storage import queue
from storage.db import Database, StorageError
from storage.provenance import record_provenance
from storage.queries import run_statuses
from vocabulary.config import RunConfig, check_run_id
from vocabulary.status import RunStatus

log = logging.getLogger("hybridscale.worker")

#: The content-addressed store of files every saved model repeats, under the artifacts folder.
SHARED_DIR = "shared"


class WorkerStopped(RuntimeError):
    """The worker cannot go on (a full disk, a database it cannot write); the message is one line."""


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
    if context.is_main:
        _remove_stored_runs_training_state(db, mirror)
    executed, halted = 0, None
    while options.max_runs is None or executed < options.max_runs:
        if context.is_main:
            try:
                task = _STOP if shutdown.is_set() or halted else _next_task(db, worker_id, options, mirror)
            except WorkerStopped as exc:
                task, halted = _STOP, exc
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
            try:
                _execute_claimed(db, claimed, workdir, context, mirror, heartbeat_s=options.heartbeat_s,
                                 listener=listener, shutdown=shutdown)
            except WorkerStopped as exc:
                halted = exc  # the other ranks hear it as a stop at the top of the loop
        else:
            _follow(claimed, workdir, context)
        executed += 1
        if options.once and not halted:
            break
    if halted is not None:
        raise halted
    return executed


def _next_task(
    db: Database, worker_id: str, options: WorkerOptions, mirror: ArtifactMirror | None
) -> tuple[queue.ClaimedRun, Path] | None:
    """Claim a run and prepare its working folder (fetching a newer mirrored checkpoint); None: queue empty."""
    try:
        for run_id in queue.requeue_stale(db, options.stale_after_s):
            log.warning("requeued run %s: its worker is gone", run_id)
        claimed = queue.claim_next(db, worker_id)
    except StorageError as exc:
        raise WorkerStopped(str(exc)) from exc
    while claimed is not None:
        workdir = run_folder(db.artifacts_dir, claimed.id)
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            _remove_leftovers(workdir)
        except OSError as exc:
            _fail_and_maybe_stop(db, claimed, exc, f"its working folder {workdir} cannot be created")
            claimed = _claim_next(db, worker_id)
            continue
        if mirror is None or _fetch_checkpoint(db, claimed, workdir, mirror, options.heartbeat_s):
            return claimed, workdir
        claimed = _claim_next(db, worker_id)
    return None


def _claim_next(db: Database, worker_id: str) -> queue.ClaimedRun | None:
    try:
        return queue.claim_next(db, worker_id)
    except StorageError as exc:
        raise WorkerStopped(str(exc)) from exc


def run_folder(artifacts_dir: Path, run_id: str) -> Path:
    """``<artifacts>/runs/<run_id>``, once ``run_id`` is known to be a run id (never ``..`` or a path)."""
    return Path(artifacts_dir) / "runs" / check_run_id(run_id)


def _frozen_cache_dir(workdir: Path) -> Path:
    """``<artifacts>/frozen_prefix``, beside ``runs/``: every run of this machine shares its frozen-prefix caches."""
    return workdir.parent.parent / FROZEN_CACHE_DIR


def _remove_stored_runs_training_state(db: Database, mirror: ArtifactMirror | None) -> None:
    """Checkpoints and best-dev-loss weights of done runs: a worker killed between storing the results and
    tidying (:func:`_tidy_finished`) leaves them, and no claim comes back for a done run."""
    runs = Path(db.artifacts_dir) / "runs"
    folders = {path.parent.name: path.parent
               for pattern in (CHECKPOINT_DIR, BEST_PREFIX + "*") for path in runs.glob(f"*/{pattern}")}
    try:
        statuses = run_statuses(db, folders) if folders else {}
    except StorageError:
        return  # the claim says what is wrong with the database, in one line
    for run_id, status in statuses.items():
        if status == RunStatus.DONE:
            log.info("run %s: deleting the checkpoint or best weights its worker left after storing the results",
                     run_id)
            _remove_training_state(run_id, folders[run_id], mirror)


def _remove_training_state(run_id: str, workdir: Path, mirror: ArtifactMirror | None) -> None:
    """A done run's checkpoint and best dev loss's weights, here and mirrored: its results are stored, nothing
    resumes it, and its model (when kept) already holds the weights it selected."""
    for folder in (workdir / CHECKPOINT_DIR, *workdir.glob(BEST_PREFIX + "*")):
        shutil.rmtree(folder, ignore_errors=True)
    try:
        if mirror is not None:
            mirror.remove_checkpoints(run_id)
    except Exception:  # the results are stored; a leftover copy is not worth stopping the worker for
        log.warning("run %s: deleting its mirrored checkpoint failed:\n%s", run_id, traceback.format_exc())


def _remove_leftovers(workdir: Path) -> None:
    """Work folders of checkpoint, model and evaluation-file saves that a killed attempt left behind (a failed save removes its own)."""
    for name in (CHECKPOINT_DIR, MODEL_DIR, EVAL_DIR):
        for leftover in workdir.glob(partial_prefix(workdir / name) + "*"):
            shutil.rmtree(leftover, ignore_errors=True)


def _fetch_checkpoint(
    db: Database, claimed: queue.ClaimedRun, workdir: Path, mirror: ArtifactMirror, heartbeat_s: float
) -> bool:
    """Bring a newer mirrored checkpoint into ``workdir``; False (the run failed) when the mirror cannot be read."""
    log_path = workdir / "run.log"
    _set_log_path(db, claimed, log_path)
    pulse = _Heartbeat(db, claimed, heartbeat_s)  # a long download must not look like a dead worker
    pulse.latest = Progress("fetching checkpoint", 0.0)
    with _run_log(log_path):
        pulse.start()
        try:
            step = mirror.pull_checkpoint(claimed.id, workdir / CHECKPOINT_DIR)
        except Exception as exc:  # an unreachable mirror fails this run, not the worker
            pulse.stop()
            log.error("run %s: fetching its checkpoint from %s failed:\n%s", claimed.id, mirror, traceback.format_exc())
            _fail_and_maybe_stop(db, claimed, exc, f"fetching its checkpoint from {mirror} failed")
            return False
        pulse.stop()
        if step is not None:
            log.info("run %s: fetched the checkpoint of step %d from %s", claimed.id, step, mirror)
    return True


def _set_log_path(db: Database, claimed: queue.ClaimedRun, log_path: Path) -> None:
    try:
        queue.set_log_path(db, claimed.id, str(log_path))
    except StorageError as exc:
        raise WorkerStopped(_unstored(exc, claimed)) from exc


def _follow(claimed: queue.ClaimedRun, workdir: Path, context: DistContext) -> None:
    """A rank other than 0: train its share of the run, then tell rank 0 how it ended (None: fine)."""
    error = None
    try:
        if claimed.config.is_training:  # an evaluation-only run is rank 0's alone
            execute(claimed.config, workdir, device=str(context.device), context=context,
                    frozen_cache_dir=_frozen_cache_dir(workdir))
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
    one-line message (the traceback goes to the run log) and the queue goes
    on. Raises :class:`WorkerStopped` after storing a failure caused by a
    full disk, or when the database cannot be written.
    """
    log_path = workdir / "run.log"
    _set_log_path(db, claimed, log_path)
    pulse = _Heartbeat(db, claimed, heartbeat_s)
    label = claimed.config.label
    recorder = AttemptRecorder(claimed.attempts, str(context.device), context.world_size,
                               excluded=(db.artifacts_dir, workdir.parent.parent))

    def hear(progress: Progress) -> None:
        recorder.report(progress)
        if listener is not None:
            listener(claimed.id, label, progress)

    state = _RunState(pulse, shutdown, hear)

    def on_checkpoint(step: int, path: Path) -> None:
        location = mirror.push_checkpoint(claimed.id, path, step) if mirror is not None else str(path)
        queue.record_checkpoint(db, claimed.id, step, location)
        log.info("checkpoint at step %d: %s", step, location)

    result, error = None, None
    try:
        run_log = _run_log(log_path)
    except OSError as exc:  # not even the log can be written (a full disk): the run fails, the worker stops
        run_log, error = None, exc
    with run_log or _no_log():
        if error is None:
            log.info("run %s (%s), attempt %d, on %s x %d", claimed.id, label, claimed.attempts, context.device,
                     context.world_size)
            pulse.start()
            recorder.start()
            try:
                result = execute(claimed.config, workdir, device=str(context.device), state=state,
                                 on_checkpoint=on_checkpoint, context=context,
                                 frozen_cache_dir=_frozen_cache_dir(workdir))
                for folder in _mirrored_folders(claimed.config):
                    if mirror is not None and (workdir / folder).is_dir():
                        log.info("%s copied to %s", folder, mirror.push_folder(claimed.id, workdir / folder, folder))
            except Exception as exc:  # stored below, whatever it is: a bad run must not stop the queue
                error = exc
        peer_errors = [e for e in context.gather(None)[1:] if e]  # the other ranks wait here while rank 0 evaluates
        pulse.stop()
        released = shutdown.is_set() and not pulse.stop_requested()  # stopped by us, not cancelled by the user
        outcome = _store_outcome(db, claimed, result, error, peer_errors, lost=pulse.lost, released=released,
                                 final=state.trained)
        if run_log is not None and outcome != "lost":
            _store_provenance(db, claimed, recorder, outcome)
        if outcome == "done":
            _tidy_finished(claimed, workdir, mirror, db.artifacts_dir)
    if mirror is not None and run_log is not None:
        try:
            mirror.push_file(claimed.id, log_path)
        except Exception:
            log.warning("run %s: copying its log to %s failed:\n%s", claimed.id, mirror, traceback.format_exc())
    if isinstance(error, Exception) and is_disk_full(error):
        raise WorkerStopped(_disk_full_line(error, db.artifacts_dir) + f" (run {claimed.id} failed; the other "
                            "queued runs wait)")
    return outcome


def _store_outcome(
    db: Database, claimed: queue.ClaimedRun, result: Evaluation | None, error: Exception | None,
    peer_errors: list[str],
    *, lost: bool, released: bool, final: Progress | None,
) -> str:
    """Record how the run ended; a database that refuses it stops the worker (after trying to mark it failed)."""
    try:
        return _record(db, claimed, result, error, peer_errors, lost=lost, released=released, final=final)
    except StorageError as exc:
        log.error("run %s: storing its outcome failed: %s", claimed.id, exc)
        try:
            queue.fail(db, claimed.id, claimed.worker_id, f"storing its outcome failed: {exc}")
        except queue.RunLost:
            pass
        except StorageError:
            raise WorkerStopped(_unstored(exc, claimed)) from exc
        raise WorkerStopped(f"{exc}; run {claimed.id} was marked failed: retry it once the database can be written") \
            from exc


def _store_provenance(db: Database, claimed: queue.ClaimedRun, recorder: AttemptRecorder, outcome: str) -> None:
    """Store the attempt's provenance record; the outcome is already stored, so a failure here is only logged."""
    try:
        record_provenance(db, claimed.id, claimed.attempts, recorder.finish(outcome))
    except Exception:
        log.warning("run %s: storing its provenance record failed:\n%s", claimed.id, traceback.format_exc())


def _unstored(exc: StorageError, claimed: queue.ClaimedRun) -> str:
    return (f"{exc}; run {claimed.id} stays 'running' until a worker requeues it (at once on this host, "
            "elsewhere after --stale-after)")


def _record(
    db: Database, claimed: queue.ClaimedRun, result: Evaluation | None, error: Exception | None,
    peer_errors: list[str],
    *, lost: bool, released: bool, final: Progress | None,
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
            last = final or Progress("", 1.0)
            queue.complete(db, claimed.id, claimed.worker_id, result.rows, per_query=result.per_query,
                           warnings=result.warnings, step=last.step, total_steps=last.total_steps, loss=last.loss,
                           selected_step=last.selected_step)
        except queue.RunLost as exc:
            log.warning("%s", exc)
            return "lost"
        log.info("run %s done: %d metric values and the per-query values of %d cells stored", claimed.id,
                 len(result.rows), len(result.per_query))
        return "done"
    if error is not None:
        log.error("run %s failed:\n%s", claimed.id, "".join(traceback.format_exception(error)))
        message = _disk_full_line(error, db.artifacts_dir) if is_disk_full(error) else one_line_error(error)
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


def _fail_and_maybe_stop(db: Database, claimed: queue.ClaimedRun, exc: Exception, what: str) -> None:
    """Fail a run that could not start (``what`` happened); stop the worker when a full disk was the cause."""
    if is_disk_full(exc):
        line = _disk_full_line(exc, db.artifacts_dir)
        _store_failure(db, claimed, line)
        raise WorkerStopped(f"{line} (run {claimed.id} failed; the other queued runs wait)")
    _store_failure(db, claimed, f"{what}: {one_line_error(exc)}")


def _disk_full_line(exc: BaseException, artifacts_dir: Path) -> str:
    """'no space left on <folder>: free N MB or use --artifacts elsewhere', N when the failed write said its size."""
    full = next((e for e in exception_chain(exc) if isinstance(e, DiskFullError)), None)
    named = next((Path(e.filename) for e in exception_chain(exc) if isinstance(e, OSError) and e.filename), None)
    where = Path(artifacts_dir)
    if named is not None and not named.is_relative_to(where):  # another disk: the mirror's, a cache's
        where = named if full is not None else named.parent
    shortfall = full.shortfall_mb if full is not None else None
    amount = f"free {shortfall} MB" if shortfall else f"free space ({free_bytes(where) // MB} MB free now)"
    return f"no space left on {where}: {amount} or use --artifacts elsewhere"


def _mirrored_folders(config: RunConfig) -> tuple[str, ...]:
    """What a finished run shares through the mirror: its evaluation files, and its model when it keeps one."""
    return (MODEL_DIR, EVAL_DIR) if config.keep_model else (EVAL_DIR,)


def _tidy_finished(claimed: queue.ClaimedRun, workdir: Path, mirror: ArtifactMirror | None,
                   artifacts_dir: Path) -> None:
    """A done run's results are stored: drop its training state (:func:`_remove_training_state`), and its model
    unless ``keep_model``; share the rest."""
    try:
        _remove_training_state(claimed.id, workdir, mirror)
        model = workdir / MODEL_DIR
        if not claimed.config.keep_model:
            shutil.rmtree(model, ignore_errors=True)
        elif model.is_dir():
            saved = share_identical_files(model, Path(artifacts_dir) / SHARED_DIR)
            log.info("model kept in %s (%.0f MB shared with other runs' models)", model, saved / MB)
    except Exception:  # the results are stored; a leftover file is not worth failing the run for
        log.warning("run %s: tidying its artifacts failed:\n%s", claimed.id, traceback.format_exc())


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
        #: The last training step's progress (its step and loss are what a finished run shows).
        self.trained: Progress | None = None

    def report(self, progress: Progress) -> None:
        self._pulse.latest = progress
        if progress.step is not None and progress.loss is not None:
            self.trained = progress
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
        failing: str | None = None
        while not self._halt.wait(self._interval):
            progress = self.latest
            try:
                if queue.heartbeat(
                    self._db, self._claimed.id, self._claimed.worker_id,
                    progress=progress.fraction, phase=progress.phase, step=progress.step,
                    total_steps=progress.total_steps, loss=progress.loss, dev_loss=progress.dev_loss,
                ):
                    self._cancel.set()
            except queue.RunLost:
                self.lost = True
                self._cancel.set()
                return
            except Exception as exc:  # a transient DB error must not kill the run; the next beat retries
                if str(exc) != failing:  # once per kind of failure, not every beat
                    log.warning("heartbeat failed for run %s: %s", self._claimed.id, exc)
                failing = str(exc)
            else:
                failing = None


class _RunLogHandler(logging.FileHandler):
    """A run log that a full disk cannot turn into a crash: a failed write is remembered, not raised or printed."""

    def __init__(self, path: Path):
        super().__init__(path, encoding="utf-8")
        self.failure: BaseException | None = None

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.failure = self.failure or RuntimeError("a write to the run log failed")

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # flushing the last lines onto a full disk
            self.failure = self.failure or exc


class _run_log:
    """Attach a file handler for one run's log to the hybridscale and engine loggers."""

    def __init__(self, path: Path):
        self._handler = _RunLogHandler(path)
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
        if self._handler.failure is not None:
            log.warning("the run log %s is incomplete: %s", self._handler.baseFilename, self._handler.failure)


class _no_log:
    """Stands in for the run log when its file cannot even be created."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None

"""The run queue: submit, claim, heartbeat, finish, cancel, retry, requeue.

Every state change is a single conditional UPDATE that names the state it
expects (``WHERE status = 'queued'``, ``WHERE worker_id = :me``), so two
workers, a GUI and a crashed worker's leftovers can never both win. Writes
come first in each transaction: on SQLite a transaction that reads before it
writes can fail with "database is locked" instead of waiting its turn.
On PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED`` so workers do not
queue up behind one row lock.

A claim records the claiming process (:func:`this_host` and its pid) beside
the heartbeat: a worker that dies lets its run wait for the heartbeat
timeout, except for workers on the same host, which see at once that the
process is gone and requeue the run. A claimed row whose id is not a run id
or whose settings cannot be read (a row changed outside hybridscale) fails
in the claim, before a worker turns its id into a folder name.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

from sqlalchemy import delete, func, insert, select, update

from storage.db import Database
from storage.models import Checkpoint, Event, Metric, QueryValueSet, Run, Study, study_runs, utcnow
from storage.packing import pack_ids, pack_values
from vocabulary.config import RunConfig, StudyConfig, check_run_id
from vocabulary.status import RETRYABLE, RunStatus

#: A worker that died this many times on one run makes it fail instead of looping forever.
MAX_ATTEMPTS = 3


class RunLost(RuntimeError):
    """This worker no longer owns the run (it was requeued, cancelled or retried elsewhere)."""


class MetricValue(Protocol):
    eval_set: str
    setting: str
    query_language: str
    passage_language: str
    metric: str
    value: float
    num_queries: int


class QueryValuesOfCell(Protocol):
    """The per-query values behind one metric cell (vocabulary.records.QueryValues)."""

    eval_set: str
    setting: str
    query_language: str
    passage_language: str
    metric: str
    query_ids: Sequence[str]
    values: Sequence[float]


@dataclass(frozen=True)
class SubmitResult:
    study_id: int
    queued: tuple[str, ...]
    reused: tuple[str, ...]
    pending: tuple[str, ...]

    def summary(self) -> str:
        return (
            f"study {self.study_id}: {len(self.queued)} run(s) queued, "
            f"{len(self.reused)} already done (reused), {len(self.pending)} already queued or running"
        )


@dataclass(frozen=True)
class ClaimedRun:
    id: str
    config: RunConfig
    attempts: int
    worker_id: str


def submit_study(db: Database, study: StudyConfig) -> SubmitResult:
    """Record the study and queue its runs, reusing any run that is already done.

    Failed and cancelled runs are queued again: resubmitting says "run this".
    """
    study.validate()
    configs = study.expand()
    queued: list[str] = []
    reused: list[str] = []
    pending: list[str] = []
    with db.session() as session:
        record = Study(name=study.name, config_json=study.to_json())
        session.add(record)
        session.flush()
        position = session.scalar(select(func.coalesce(func.max(Run.position), 0))) or 0
        for config in configs:
            run_id = config.run_id
            existing = session.get(Run, run_id)
            if existing is None:
                position += 1
                session.add(_new_run(config, position))
                queued.append(run_id)
            elif existing.status == RunStatus.DONE:
                reused.append(run_id)
            elif existing.status in RETRYABLE:
                position += 1
                _reset(existing, position)
                queued.append(run_id)
            else:
                pending.append(run_id)
            session.flush()
            session.execute(
                insert(study_runs).prefix_with("OR IGNORE", dialect="sqlite").values(study_id=record.id, run_id=run_id)
                if db.is_sqlite
                else insert(study_runs).values(study_id=record.id, run_id=run_id)
            )
        session.add(Event(kind="submitted", message=f"study {record.id} {study.name!r}: {len(configs)} runs"))
        return SubmitResult(record.id, tuple(queued), tuple(reused), tuple(pending))


def _new_run(config: RunConfig, position: int) -> Run:
    return Run(
        id=config.run_id,
        config_json=config.to_json(),
        label=config.label,
        model=config.model,
        strategy=config.strategy,
        alpha=config.alpha,
        train_size=config.train_size,
        seed=config.seed,
        status=RunStatus.QUEUED,
        position=position,
    )


#: The claim's columns, emptied whenever a run goes back to the queue.
_NO_CLAIM = {"worker_id": None, "worker_host": None, "worker_pid": None}


def _queued_again(position: object) -> dict[str, object]:
    """The column values of a finished run queued once more (by a new submit or a retry)."""
    return dict(status=RunStatus.QUEUED, position=position, cancel_requested=False, error=None, attempts=0,
                progress=0.0, phase="", **_NO_CLAIM)


def _reset(run: Run, position: int) -> None:
    for name, value in _queued_again(position).items():
        setattr(run, name, value)


def this_host() -> str:
    """This machine, and on Linux its process namespace: pids compare only between equal values."""
    name = socket.gethostname()
    try:
        return f"{name}/pidns:{os.stat('/proc/self/ns/pid').st_ino}"[:255]
    except OSError:
        return name[:255]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie does not); True when it cannot be told."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def claim_next(db: Database, worker_id: str) -> ClaimedRun | None:
    """Atomically take the oldest queued run for ``worker_id``; None when the queue is empty.

    A row that cannot be a run (an id that is not a run id, settings that do
    not load) is failed with a one-line message and the next one is taken.
    """
    while True:
        now = utcnow()
        candidate = select(Run.id).where(Run.status == RunStatus.QUEUED).order_by(Run.position, Run.id).limit(1)
        if db.engine.dialect.name == "postgresql":
            candidate = candidate.with_for_update(skip_locked=True)
        statement = (
            update(Run)
            .where(Run.id == candidate.scalar_subquery(), Run.status == RunStatus.QUEUED)
            .values(
                status=RunStatus.RUNNING,
                worker_id=worker_id,
                worker_host=this_host(),
                worker_pid=os.getpid(),
                heartbeat_at=now,
                started_at=now,
                attempts=Run.attempts + 1,
                cancel_requested=False,
                error=None,
                phase="starting",
            )
            .returning(Run.id, Run.config_json, Run.attempts)
        )
        with db.session() as session:
            row = session.execute(statement).first()
            if row is None:
                return None
            try:
                claimed = ClaimedRun(check_run_id(row.id), RunConfig.from_json(row.config_json), row.attempts,
                                     worker_id)
            except (ValueError, TypeError) as exc:
                message = f"refused by worker {worker_id}: {exc}"
                session.execute(update(Run).where(Run.id == row.id).values(
                    status=RunStatus.FAILED, error=message, phase="failed", finished_at=now, **_NO_CLAIM))
                session.add(Event(run_id=row.id, kind="failed", message=message))
                continue
            session.add(Event(run_id=row.id, kind="claimed", message=f"worker {worker_id}, attempt {row.attempts}"))
        return claimed


def heartbeat(
    db: Database,
    run_id: str,
    worker_id: str,
    *,
    progress: float | None = None,
    phase: str | None = None,
    step: int | None = None,
    total_steps: int | None = None,
    loss: float | None = None,
    dev_loss: float | None = None,
) -> bool:
    """Record liveness and progress; return True when the user asked to cancel.

    Raises :class:`RunLost` when this worker no longer owns the run, so a
    worker that was presumed dead stops instead of overwriting a successor.
    """
    values: dict[str, object] = {"heartbeat_at": utcnow()}
    fields = (("progress", progress), ("phase", phase), ("step", step), ("total_steps", total_steps), ("loss", loss),
              ("dev_loss", dev_loss))
    for name, value in fields:
        if value is not None:
            values[name] = value
    statement = (
        update(Run)
        .where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RunStatus.RUNNING)
        .values(**values)
        .returning(Run.cancel_requested)
    )
    with db.session() as session:
        row = session.execute(statement).first()
    if row is None:
        raise RunLost(f"run {run_id} is no longer owned by worker {worker_id}")
    return bool(row.cancel_requested)


def set_log_path(db: Database, run_id: str, path: str) -> None:
    with db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(log_path=path))


def record_checkpoint(db: Database, run_id: str, step: int, path: str) -> None:
    with db.session() as session:
        session.add(Checkpoint(run_id=run_id, step=step, path=path))


def complete(
    db: Database, run_id: str, worker_id: str, metrics: Iterable[MetricValue],
    per_query: Iterable[QueryValuesOfCell] = (), warnings: Iterable[str] = (), *,
    step: int | None = None, total_steps: int | None = None, loss: float | None = None,
    selected_step: int | None = None,
) -> None:
    """Mark the run done and store all its metrics, per-query values and warnings in ONE transaction.

    A run therefore never has half its results: either the worker finished
    and every row is there, or nothing changed and the run can be retried.
    ``step``, ``total_steps`` and ``loss`` are the last training step's (the
    last heartbeat may predate it); without them the run shows all its steps
    and the loss of its last heartbeat. ``selected_step`` is the step whose weights the run kept (fewer
    than ``step`` under ``best_dev``; ``step`` itself is fewer than ``total_steps`` after an early stop).
    Warnings (e.g. relevant passages missing from a corpus) become events of
    kind ``warning``.
    """
    rows = [
        {
            "run_id": run_id,
            "eval_set": m.eval_set,
            "setting": m.setting,
            "query_language": m.query_language,
            "passage_language": m.passage_language,
            "metric": m.metric,
            "value": float(m.value),
            "num_queries": int(m.num_queries),
        }
        for m in metrics
    ]
    final: dict[str, Any] = {"step": Run.total_steps if step is None else step}
    for name, value in (("total_steps", total_steps), ("loss", loss), ("selected_step", selected_step)):
        if value is not None:
            final[name] = value
    cells = [
        {
            "run_id": run_id,
            "eval_set": c.eval_set,
            "setting": c.setting,
            "query_language": c.query_language,
            "passage_language": c.passage_language,
            "metric": c.metric,
            "packed_ids": pack_ids(c.query_ids),
            "packed_values": pack_values(c.values),
        }
        for c in per_query
    ]
    with db.session() as session:
        _finish(session, run_id, worker_id, status=RunStatus.DONE, progress=1.0, phase="done", **final)
        session.execute(delete(Metric).where(Metric.run_id == run_id))
        session.execute(delete(QueryValueSet).where(QueryValueSet.run_id == run_id))
        if rows:
            session.execute(insert(Metric), rows)
        if cells:
            session.execute(insert(QueryValueSet), cells)
        for message in warnings:
            session.add(Event(run_id=run_id, kind="warning", message=message))
        session.add(Event(run_id=run_id, kind="done", message=f"{len(rows)} metric values, "
                                                               f"per-query values of {len(cells)} cells"))


def fail(db: Database, run_id: str, worker_id: str, message: str) -> None:
    with db.session() as session:
        _finish(session, run_id, worker_id, status=RunStatus.FAILED, error=message, phase="failed")
        session.add(Event(run_id=run_id, kind="failed", message=message))


def acknowledge_cancel(db: Database, run_id: str, worker_id: str) -> None:
    """The worker stopped a run the user cancelled."""
    with db.session() as session:
        _finish(session, run_id, worker_id, status=RunStatus.CANCELLED, phase="cancelled")
        session.add(Event(run_id=run_id, kind="cancelled", message=f"stopped by worker {worker_id}"))


def _finish(session, run_id: str, worker_id: str, *, status: str, **values: object) -> None:
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RunStatus.RUNNING)
        .values(status=status, finished_at=utcnow(), heartbeat_at=utcnow(), **values)
    )
    if result.rowcount != 1:
        raise RunLost(f"run {run_id} is no longer owned by worker {worker_id}; its result was not stored")


def release(db: Database, run_id: str, worker_id: str) -> str:
    """The worker was told to stop (not a user cancel): put its run back at the head of the queue.

    The attempt does not count towards :data:`MAX_ATTEMPTS`: that limit is for
    workers that die on a run, and this one stopped cleanly after a checkpoint.
    A cancel the user asked for meanwhile wins: the run is then cancelled.
    Returns the run's new status, 'queued' or 'cancelled'.
    """
    with db.session() as session:
        released = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RunStatus.RUNNING,
                   Run.cancel_requested.is_(False))
            .values(status=RunStatus.QUEUED, phase="requeued (worker stopped)", **_NO_CLAIM,
                    attempts=func.max(Run.attempts - 1, 0) if db.is_sqlite else func.greatest(Run.attempts - 1, 0))
        ).rowcount
        if released:
            session.add(Event(run_id=run_id, kind="released", message=f"worker {worker_id} stopped; back in the queue"))
            return RunStatus.QUEUED
    acknowledge_cancel(db, run_id, worker_id)  # raises RunLost if the run is no longer ours
    return RunStatus.CANCELLED


def cancel(db: Database, run_id: str) -> str:
    """Cancel a queued run at once, or ask its worker to stop a running one.

    Returns the run's status afterwards ('cancelled', or 'running' with the
    request pending); raises KeyError for an unknown run.
    """
    with db.session() as session:
        done_now = session.execute(
            update(Run).where(Run.id == run_id, Run.status == RunStatus.QUEUED).values(status=RunStatus.CANCELLED, phase="cancelled")
        ).rowcount
        if done_now:
            session.add(Event(run_id=run_id, kind="cancelled", message="cancelled while queued"))
            return RunStatus.CANCELLED
        asked = session.execute(
            update(Run).where(Run.id == run_id, Run.status == RunStatus.RUNNING).values(cancel_requested=True)
        ).rowcount
        if asked:
            session.add(Event(run_id=run_id, kind="cancel-requested", message="waiting for the worker to stop"))
            return RunStatus.RUNNING
        status = session.scalar(select(Run.status).where(Run.id == run_id))
    if status is None:
        raise KeyError(f"no run {run_id!r} in this database")
    return status


def retry(db: Database, run_id: str) -> bool:
    """Queue a failed or cancelled run again (at the end of the queue); False when it is neither.

    Raises KeyError for an unknown run.
    """
    next_position = select(func.coalesce(func.max(Run.position), 0) + 1).scalar_subquery()
    with db.session() as session:
        changed = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_(RETRYABLE))
            .values(**_queued_again(next_position))
        ).rowcount
        if changed:
            session.add(Event(run_id=run_id, kind="retried", message="queued again"))
            return True
        known = session.scalar(select(Run.id).where(Run.id == run_id))
    if known is None:
        raise KeyError(f"no run {run_id!r} in this database")
    return False


def requeue_stale(db: Database, timeout_s: float) -> list[str]:
    """Give runs whose worker stopped heartbeating, or whose worker process on this host is gone, to the next worker.

    A run whose cancel was pending becomes cancelled; a run that has already
    killed :data:`MAX_ATTEMPTS` workers fails with a message saying so, so one
    poisonous run cannot stall the queue.
    """
    cutoff = utcnow() - dt.timedelta(seconds=timeout_s)
    requeued = _give_back(db, (Run.status == RunStatus.RUNNING, Run.heartbeat_at < cutoff),
                          f"no heartbeat for {timeout_s:g} s")
    host = this_host()
    with db.session() as session:
        local = session.execute(
            select(Run.id, Run.worker_pid).where(Run.status == RunStatus.RUNNING, Run.worker_host == host,
                                                 Run.worker_pid.is_not(None))
        ).all()
    for run_id, pid in local:
        if not process_alive(pid):
            requeued += _give_back(
                db, (Run.id == run_id, Run.status == RunStatus.RUNNING, Run.worker_host == host, Run.worker_pid == pid),
                f"its worker process {pid} on this host is gone",
            )
    return requeued


def _give_back(db: Database, claimed: tuple, reason: str) -> list[str]:
    """Runs matching ``claimed`` whose worker is gone: cancelled, failed after MAX_ATTEMPTS, else queued again."""
    with db.session() as session:
        cancelled = session.execute(
            update(Run).where(*claimed, Run.cancel_requested.is_(True))
            .values(status=RunStatus.CANCELLED, phase="cancelled", finished_at=utcnow()).returning(Run.id)
        ).scalars().all()
        message = (
            f"its worker stopped responding {MAX_ATTEMPTS} times (killed, or out of memory?): "
            "check the run log, then retry"
        )
        failed = session.execute(
            update(Run).where(*claimed, Run.attempts >= MAX_ATTEMPTS)
            .values(status=RunStatus.FAILED, error=message, phase="failed", finished_at=utcnow()).returning(Run.id)
        ).scalars().all()
        requeued = session.execute(
            update(Run).where(*claimed).values(status=RunStatus.QUEUED, phase="requeued", **_NO_CLAIM).returning(Run.id)
        ).scalars().all()
        for run_id in requeued:
            session.add(Event(run_id=run_id, kind="requeued", message=reason))
        for run_id in failed:
            session.add(Event(run_id=run_id, kind="failed", message=message))
        for run_id in cancelled:
            session.add(Event(run_id=run_id, kind="cancelled", message="worker gone while cancelling"))
    return list(requeued)

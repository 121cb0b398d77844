"""The worker: real queue on SQLite, real tiny encoder, real shipped data.

Covers the promises of the worker room: end to end, cancel, a killed worker's
run resumed by another with identical results, two workers never sharing a
run, and a broken run failing with one clear line while the queue goes on.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.config import EvalSpec, RunConfig, StudyConfig
from engine.runner import WorkerOptions, run_worker
from storage import queue
from storage.db import open_db
from storage.models import Checkpoint, Event, Metric
from storage.queries import list_runs

FAST_EVAL = (EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=8),)
TINY = RunConfig(
    model="tiny:",
    train_languages=("en", "de", "es"),
    evaluations=FAST_EVAL,
    batch_size=4,
    max_length=32,
    max_steps=3,
    learning_rate=1e-3,
    checkpoint_every=1,
    eval_batch_size=32,
)
WORKER = WorkerOptions(device="cpu", exit_when_empty=True, heartbeat_s=0.2, poll_s=0.1)


def _study(name: str, template: RunConfig = TINY, **kwargs) -> StudyConfig:
    values = {"strategies": ("hybrid",), "train_sizes": (8,), "seeds": (0,), "include_baseline": False}
    values.update(kwargs)
    return StudyConfig(name, template=template, **values)


def _metrics(db, run_id: str) -> dict[tuple, float]:
    with db.session() as session:
        rows = session.scalars(select(Metric).where(Metric.run_id == run_id)).all()
    return {(m.eval_set, m.setting, m.query_language, m.passage_language, m.metric): m.value for m in rows}


def _worker_process(db_path: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "hybridscale", "--db", str(db_path), "worker", "--device", "cpu", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_worker_runs_a_study_end_to_end(tmp_path):
    db = open_db(tmp_path / "e2e.db")
    submitted = queue.submit_study(db, _study("e2e", strategies=("mono", "hybrid"), include_baseline=True))
    assert run_worker(db, WORKER) == 3
    runs = {r.id: r for r in list_runs(db)}
    assert {r.status for r in runs.values()} == {"done"}, [r.error for r in runs.values()]
    for run_id in submitted.queued:
        metrics = _metrics(db, run_id)
        assert metrics, f"run {run_id} stored no metrics"
        assert all(0.0 <= v or k[-1] in ("MeanRank", "LangBias") for k, v in metrics.items())
        assert any(k[1] == "cross" and k[2] == "sw" for k in metrics)
        log_file = Path(runs[run_id].log_path)
        assert log_file.is_file() and run_id in log_file.read_text(encoding="utf-8")
    trained = [r for r in runs.values() if r.strategy != "none"]
    assert all(r.total_steps == 3 and r.loss is not None for r in trained)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Checkpoint)) >= 3
    # The trained model is a reusable Hugging Face / sentence-transformers folder.
    assert (db.artifacts_dir / "runs" / trained[0].id / "model" / "config.json").is_file()


def test_broken_run_fails_with_one_line_and_next_run_executes(tmp_path):
    db = open_db(tmp_path / "bad.db")
    missing = dataclasses.replace(
        TINY, evaluations=(EvalSpec("flores", ("en", "sw"), "test", path=str(tmp_path / "no-such-folder")),)
    )
    bad = queue.submit_study(db, _study("bad", template=missing)).queued[0]
    good = queue.submit_study(db, _study("good")).queued[0]
    assert run_worker(db, WORKER) == 2
    runs = {r.id: r for r in list_runs(db)}
    assert runs[good].status == "done"
    assert runs[bad].status == "failed"
    assert "no-such-folder" in runs[bad].error and "\n" not in runs[bad].error


def test_nan_loss_fails_the_run_with_a_clear_message(tmp_path):
    db = open_db(tmp_path / "nan.db")
    exploding = dataclasses.replace(TINY, learning_rate=1e30, max_steps=5)
    run_id = queue.submit_study(db, _study("nan", template=exploding)).queued[0]
    run_worker(db, WORKER)
    (run,) = [r for r in list_runs(db) if r.id == run_id]
    assert run.status == "failed"
    assert "nan" in run.error.lower() or "inf" in run.error.lower()


def test_cancel_from_the_database_stops_a_running_run(tmp_path):
    db = open_db(tmp_path / "cancel.db")
    slow = dataclasses.replace(TINY, max_steps=10_000, epochs=10_000.0)
    run_id = queue.submit_study(db, _study("cancel", template=slow)).queued[0]
    worker = threading.Thread(target=run_worker, args=(db, WORKER))
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not [r for r in list_runs(db) if r.step >= 2]:
        time.sleep(0.05)
    assert queue.cancel(db, run_id) == "running"
    asked = time.monotonic()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert time.monotonic() - asked < 10
    (run,) = list_runs(db)
    assert run.status == "cancelled"


def test_killed_worker_is_resumed_by_another_with_identical_results(tmp_path):
    config = dataclasses.replace(TINY, max_steps=40, epochs=100.0, checkpoint_every=5)
    # Reference: the same run, uninterrupted, in its own database and artifacts.
    reference_db = open_db(tmp_path / "reference" / "reference.db")
    run_id = queue.submit_study(reference_db, _study("ref", template=config)).queued[0]
    run_worker(reference_db, WORKER)
    expected = _metrics(reference_db, run_id)
    assert expected

    db_path = tmp_path / "crash.db"
    db = open_db(db_path)
    queue.submit_study(db, _study("crash", template=config))
    victim = _worker_process(db_path, "--exit-when-empty")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with db.session() as session:
            latest = session.scalar(select(func.max(Checkpoint.step)).where(Checkpoint.run_id == run_id))
        if (latest or 0) >= 10:
            break
        assert victim.poll() is None, victim.stdout.read()
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    (run,) = list_runs(db)
    assert run.status == "running"  # the dead worker left it behind

    time.sleep(1.0)
    successor = dataclasses.replace(WORKER, stale_after_s=0.5)
    assert run_worker(db, successor) == 1
    (run,) = list_runs(db)
    assert run.status == "done" and run.attempts == 2
    with db.session() as session:
        kinds = session.scalars(select(Event.kind).where(Event.run_id == run_id)).all()
    assert kinds.count("requeued") == 1
    log_text = Path(run.log_path).read_text(encoding="utf-8")
    assert "attempt 2" in log_text
    actual = _metrics(db, run_id)
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, abs=1e-5), key


def test_two_worker_processes_execute_each_run_exactly_once(tmp_path):
    db_path = tmp_path / "pair.db"
    db = open_db(db_path)
    one_step = dataclasses.replace(TINY, max_steps=1)
    submitted = queue.submit_study(db, _study("pair", template=one_step, seeds=tuple(range(10)))).queued
    assert len(submitted) == 10
    workers = [_worker_process(db_path, "--exit-when-empty", "--worker-id", f"w{i}") for i in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    runs = list_runs(db)
    assert {r.status for r in runs} == {"done"}
    with db.session() as session:
        claims = session.execute(select(Event.run_id, Event.message).where(Event.kind == "claimed")).all()
    assert sorted(run_id for run_id, _ in claims) == sorted(submitted)
    assert {r.worker_id for r in runs} <= {"w0", "w1"}

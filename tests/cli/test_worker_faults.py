"""The worker under faults and attacks: each ends in one line, the queue keeps what it cannot run, nothing is left behind.

Real SQLite files, real worker processes where a process matters (a planted
row, a killed worker, a full filesystem), and faults injected at the write
(the error a full disk gives) where a real full disk cannot be had.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import pathlib
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import event, func, insert, select

from engine.disk_full import MB
from hybridscale.cli import main
from hybridscale.worker import WorkerStopped, run_worker
from storage import queue
from storage.db import open_db
from storage.models import Checkpoint, Event, Run
from storage.queries import list_runs
from tests.cli.test_worker import TINY, WORKER, _study, _worker_process
from tests.faults import fill, small_tmpfs
from vocabulary.config import EvalSpec

SLOW = dataclasses.replace(TINY, max_steps=10_000, epochs=10_000.0, checkpoint_every=1_000)


def _runs(db) -> dict[str, object]:
    return {r.id: r for r in list_runs(db)}


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ---- a run id that is a path ------------------------------------------------------------
def test_a_planted_run_id_that_is_a_path_is_refused_and_nothing_is_written_outside(tmp_path):
    db_path = tmp_path / "a" / "b" / "queue.db"
    db = open_db(db_path)
    good = queue.submit_study(db, _study("good")).queued[0]
    with db.session() as session:  # what anyone who can write to a shared database can do
        row = session.execute(select(Run).where(Run.id == good)).scalar_one()
        columns = {c.name: getattr(row, c.name) for c in Run.__table__.columns if c.name not in ("id", "position")}
        session.execute(insert(Run).values(id="../../../x", position=-1, **columns))
    worker = _worker_process(db_path, "--exit-when-empty")
    output = worker.communicate(timeout=300)[0]
    assert worker.returncode == 0, output
    runs = _runs(db)
    assert runs["../../../x"].status == "failed"
    assert "'../../../x' is not a run id" in runs["../../../x"].error
    assert runs[good].status == "done"
    assert not (tmp_path / "a" / "x").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]


# ---- a dead worker ----------------------------------------------------------------------
def test_a_killed_workers_run_is_taken_over_at_once_on_the_same_host(tmp_path):
    db_path = tmp_path / "queue.db"
    db = open_db(db_path)
    run_id = queue.submit_study(db, _study("dead", template=dataclasses.replace(SLOW, max_steps=40))).queued[0]  # time to be killed, busy machine too
    victim = _worker_process(db_path, "--exit-when-empty")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(r.step >= 2 for r in list_runs(db)):
        assert victim.poll() is None, victim.stdout.read()
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert _runs(db)[run_id].status == "running"  # its heartbeat is fresh: the timeout alone would wait 120 s
    leftover = db.artifacts_dir / "runs" / run_id / ".checkpoint.partial-k1ll3d"  # a save the kill interrupted
    leftover.mkdir(exist_ok=True)
    (leftover / "model.safetensors").write_bytes(b"\0" * MB)

    # With an hour's --stale-after, only seeing the process gone can requeue the run within this test.
    assert run_worker(db, dataclasses.replace(WORKER, stale_after_s=3600.0)) == 1
    run = _runs(db)[run_id]
    assert (run.status, run.attempts) == ("done", 2)
    with db.session() as session:
        reasons = session.scalars(select(Event.message).where(Event.run_id == run_id, Event.kind == "requeued")).all()
    assert reasons == [f"its worker process {victim.pid} on this host is gone"]
    assert not leftover.exists()


# ---- a full disk under the artifacts ----------------------------------------------------
_LINE = re.compile(r"no space left on (?P<where>\S+): free (?P<mb>\d+) MB or use --artifacts elsewhere")


def _check_disk_full_outcome(db, artifacts: Path, failed: str, waiting: str, message: str, at_least_mb: int) -> None:
    runs = _runs(db)
    assert runs[failed].status == "failed" and runs[waiting].status == "queued"
    assert not any(r.status == "running" for r in runs.values())
    match = _LINE.fullmatch(runs[failed].error)
    assert match, runs[failed].error
    assert match["where"] == str(artifacts)
    assert int(match["mb"]) >= at_least_mb
    assert runs[failed].error in message
    # The half-written checkpoint is gone; the log (and nothing else) stays.
    assert _files(artifacts) == [f"runs/{failed}/run.log"]


def test_a_full_artifacts_disk_fails_the_run_in_one_line_and_stops_the_worker(tmp_path):
    db_path, artifacts = tmp_path / "queue.db", tmp_path / "small"
    db = open_db(db_path)
    first, second = queue.submit_study(db, _study("full", seeds=(0, 1))).queued
    with small_tmpfs(artifacts, "2m"):
        last = _stopped_worker_line(db_path, artifacts, first)
        _check_disk_full_outcome(db, artifacts, first, second, last, at_least_mb=30)  # 32 MB of weights alone


def _stopped_worker_line(db_path: Path, artifacts: Path, failed: str) -> str:
    """Run a worker process that must stop for a full disk after failing run ``failed``; its last line."""
    worker = _worker_process(db_path, "--exit-when-empty", "--artifacts", str(artifacts))
    output = worker.communicate(timeout=300)[0]
    assert worker.returncode == 2, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("hybridscale worker: error: stopped: no space left on ") and "Traceback" not in output
    assert last.endswith(f"(run {failed} failed; the other queued runs wait)")
    return last


def test_a_write_failing_for_lack_of_space_fails_the_run_and_stops_the_worker(tmp_path, monkeypatch):
    """The same with the fault injected at the write: the checkpoint's trainer.json meets ENOSPC."""
    artifacts = tmp_path / "artifacts"
    db = open_db(tmp_path / "queue.db", artifacts_dir=artifacts)
    first, second = queue.submit_study(db, _study("full", seeds=(0, 1))).queued
    write_text = pathlib.Path.write_text

    def full_disk(path, *args, **kwargs):
        if path.name == "trainer.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write_text(path, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full_disk)
    with pytest.raises(WorkerStopped) as stopped:
        run_worker(db, WORKER)
    assert "\n" not in str(stopped.value)
    _check_disk_full_outcome(db, artifacts, first, second, str(stopped.value), at_least_mb=1)  # the disk has room


def test_a_full_disk_under_the_frozen_prefix_cache_stops_the_worker_and_leaves_no_partial_file(tmp_path):
    """numpy's short write (no errno) on a real small tmpfs is a full disk like any other."""
    db_path, artifacts = tmp_path / "queue.db", tmp_path / "artifacts"
    db = open_db(db_path)
    cached = dataclasses.replace(TINY, model="tiny:layers=3", trainable_layers=1, frozen_cache=True)
    first, second = queue.submit_study(db, _study("cached", template=cached, seeds=(0, 1))).queued
    with small_tmpfs(artifacts / "frozen_prefix", "8k") as cache:
        _stopped_worker_line(db_path, artifacts, first)
        runs = _runs(db)
        assert runs[first].status == "failed" and runs[second].status == "queued"
        match = _LINE.fullmatch(runs[first].error)
        assert match and match["where"] == str(artifacts) and int(match["mb"]) >= 1, runs[first].error
        assert [p.name for p in cache.rglob("*") if p.is_file()] == [".lock"]


# ---- a full disk under the database ----------------------------------------------------
def test_a_database_that_cannot_be_written_at_the_end_stops_the_worker_and_the_run_is_taken_over(tmp_path):
    """The database's disk fills while the run evaluates: the worker stops in one line; the run is not lost."""
    db_path = tmp_path / "queue.db"
    db = open_db(db_path)
    run_id = queue.submit_study(db, _study("dbfull")).queued[0]
    full = {"now": False}

    @event.listens_for(db.engine, "before_cursor_execute")
    def _no_space(_conn, _cursor, statement, *_args) -> None:
        if full["now"] and statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError("database or disk is full")  # what SQLite says on a full disk

    def fill_at_evaluation(_run, _label, progress) -> None:
        if progress.phase.startswith("evaluating"):
            full["now"] = True

    with pytest.raises(WorkerStopped) as stopped:
        run_worker(db, WORKER, listener=fill_at_evaluation)
    message = str(stopped.value)
    assert "\n" not in message and f"no space left for {db_path}" in message
    assert f"run {run_id} stays 'running' until a worker requeues it" in message
    full["now"] = False  # space was freed
    assert _runs(db)[run_id].status == "running"  # nothing could be written...
    time.sleep(1.0)
    assert run_worker(db, dataclasses.replace(WORKER, stale_after_s=0.5)) == 1  # ...and it is not lost
    assert _runs(db)[run_id].status == "done"


def test_a_database_on_a_full_filesystem_stops_the_worker_in_one_line_and_claims_nothing(tmp_path):
    folder = tmp_path / "small"
    with small_tmpfs(folder, "2m"):
        db_path = folder / "queue.db"
        db = open_db(db_path, artifacts_dir=tmp_path / "artifacts")
        run_id = queue.submit_study(db, _study("dbfull")).queued[0]
        db.dispose()
        filler = fill(folder)
        worker = _worker_process(db_path, "--exit-when-empty", "--artifacts", str(tmp_path / "artifacts"))
        output = worker.communicate(timeout=300)[0]
        assert worker.returncode == 2, output
        assert "Traceback" not in output
        assert output.strip().splitlines()[-1] == (
            f"hybridscale worker: error: no space left for {db_path}: free space on its disk, or move the database "
            "elsewhere")
        filler.unlink()
        (run,) = list_runs(open_db(db_path))
        assert (run.id, run.status) == (run_id, "queued")


# ---- validation before training --------------------------------------------------------
def test_an_eval_set_that_cannot_load_fails_the_run_before_any_training(tmp_path):
    db = open_db(tmp_path / "queue.db")
    missing = dataclasses.replace(
        TINY, evaluations=(EvalSpec("flores", ("en", "sw"), "test", path=str(tmp_path / "no-such-folder")),))
    run_id = queue.submit_study(db, _study("early", template=missing)).queued[0]
    seen: list[str] = []
    assert run_worker(db, WORKER, listener=lambda _r, _l, p: seen.append(p.phase)) == 1
    run = _runs(db)[run_id]
    assert run.status == "failed" and "no-such-folder" in run.error
    assert not any("training" in phase for phase in seen)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Checkpoint)) == 0


# ---- what a finished run shows and keeps -----------------------------------------------
def test_status_shows_the_final_step_and_loss_of_a_finished_run(tmp_path, capsys):
    db_path = tmp_path / "queue.db"
    db = open_db(db_path)
    run_id = queue.submit_study(db, _study("final")).queued[0]
    assert run_worker(db, dataclasses.replace(WORKER, heartbeat_s=60.0)) == 1  # no heartbeat during the run
    log_text = Path(_runs(db)[run_id].log_path).read_text(encoding="utf-8")
    final = float(re.search(r"final loss (\d+\.\d+)", log_text)[1])
    capsys.readouterr()
    assert main(["--db", str(db_path), "status"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if run_id in line)
    assert f" step 3/3 loss={final:.4f}" in line


def test_a_finished_run_keeps_no_checkpoint_and_its_model_only_if_asked(tmp_path):
    artifacts = tmp_path / "artifacts"
    db = open_db(tmp_path / "queue.db", artifacts_dir=artifacts)
    kept = queue.submit_study(db, _study("kept", seeds=(0, 1))).queued
    dropped = queue.submit_study(db, _study("dropped", template=dataclasses.replace(TINY, keep_model=False),
                                            seeds=(2,))).queued[0]
    assert run_worker(db, WORKER) == 3
    assert {r.status for r in list_runs(db)} == {"done"}
    # Only the log and the evaluation files (qrels and rankings, kept for per-query analysis) stay.
    assert {path.split("/")[0] for path in _files(artifacts / "runs" / dropped)} == {"run.log", "eval"}
    models = [artifacts / "runs" / run_id / "model" for run_id in kept]
    for run_id in kept:
        assert not (artifacts / "runs" / run_id / "checkpoint").exists()
    # One tokenizer on disk for every kept model: a hard link into the shared store, a real file in each folder.
    tokenizers = [model / "tokenizer.json" for model in models]
    assert tokenizers[0].stat().st_size > MB
    assert tokenizers[0].stat().st_ino == tokenizers[1].stat().st_ino
    assert tokenizers[0].stat().st_nlink == 3  # two models and the store
    assert [p.name for p in (artifacts / "shared").iterdir()] == [
        next(p.name for p in (artifacts / "shared").iterdir())]

    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    assert AutoModel.from_pretrained(models[1]).config.num_hidden_layers == 2
    assert AutoTokenizer.from_pretrained(models[1])("Habari").input_ids[0] == 0
    vectors = SentenceTransformer(str(models[0]), device="cpu").encode(["query: Habari", "query: Bawo ni"])
    assert vectors.shape == (2, 32)


def test_a_checkpoint_left_by_a_kill_after_the_results_were_stored_is_deleted_at_the_next_start(tmp_path):
    """The kill falls between storing the results and deleting the checkpoint and the best dev loss's weights
    (here and in the mirror); a queued run's stay. A done run left with best weights only is found too."""
    db = open_db(tmp_path / "queue.db")
    mirror = tmp_path / "shared"
    worker = dataclasses.replace(WORKER, mirror=mirror.as_uri())
    done, waiting = queue.submit_study(db, _study("left", seeds=(0, 1))).queued
    assert run_worker(db, dataclasses.replace(worker, max_runs=1)) == 1
    assert _runs(db)[done].status == "done" and _runs(db)[waiting].status == "queued"
    planted = {}
    for run_id in (done, waiting):  # what the killed worker had not deleted yet, and a resumable run's state
        run = db.artifacts_dir / "runs" / run_id
        planted[run_id] = [run / "checkpoint", run / "best-step-3", mirror / "runs" / run_id / "checkpoints" / "3"]
        for folder in planted[run_id]:
            folder.mkdir(parents=True)
            (folder / "model.safetensors").write_bytes(b"\0" * 1024)
    assert run_worker(db, dataclasses.replace(worker, max_runs=0)) == 0
    assert not any(folder.exists() for folder in planted[done]) and all(map(Path.is_dir, planted[waiting]))
    best_only = db.artifacts_dir / "runs" / done / "best-step-5"
    best_only.mkdir()
    assert run_worker(db, dataclasses.replace(worker, max_runs=0)) == 0
    assert not best_only.exists()

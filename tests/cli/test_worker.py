"""The worker: real queue on SQLite, real tiny encoder, real shipped data.

Covers the promises of the worker room: end to end, cancel, a killed worker's
run resumed by another with identical results, two workers never sharing a
run, a broken run failing with one clear line while the queue goes on, and a
worker of two processes (DDP) that rank 0 drives.
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

from hybridscale.worker import ProgressListener, WorkerOptions, run_worker
from storage import queue
from storage.db import open_db
from storage.models import Checkpoint, Event, Metric
from storage.queries import list_runs
from tests.engine.test_distributed import run_on_two_ranks
from vocabulary.config import EvalSpec, RunConfig, StudyConfig

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
    exploding = dataclasses.replace(TINY, temperature=1e-45, max_steps=5)  # q.p / t overflows to inf, then nan
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


def test_a_stopped_worker_hands_its_run_back_and_the_next_one_resumes_it(tmp_path):
    """SIGTERM (the GUI's Stop workers): checkpoint, run queued again at once, not counted as an attempt."""
    config = dataclasses.replace(TINY, max_steps=400, epochs=1000.0, checkpoint_every=5)
    db_path = tmp_path / "stop.db"
    db = open_db(db_path)
    run_id = queue.submit_study(db, _study("stop", template=config)).queued[0]
    worker = _worker_process(db_path)  # no --exit-when-empty: only the signal ends it
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(r.step >= 3 for r in list_runs(db)):
        assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    (run,) = list_runs(db)
    assert (run.status, run.worker_id, run.attempts) == ("queued", None, 0)
    with db.session() as session:
        kinds = session.scalars(select(Event.kind).where(Event.run_id == run_id)).all()
        stopped_at = session.scalar(select(func.max(Checkpoint.step)).where(Checkpoint.run_id == run_id))
    assert kinds[-1] == "released" and stopped_at >= 3

    # The next worker continues from that checkpoint; stopping it in-process (the same event the
    # signal handler sets) hands the run back again rather than training the remaining steps here.
    steps: list[int] = []
    stop = threading.Event()

    def on_progress(_run_id, _label, progress) -> None:
        if progress.step:
            steps.append(progress.step)
            stop.set()

    assert run_worker(db, WORKER, listener=on_progress, shutdown=stop) == 1
    assert steps[0] == stopped_at + 1  # continued from the checkpoint, not from step 1
    (run,) = list_runs(db)
    assert (run.status, run.attempts) == ("queued", 0)
    with db.session() as session:
        assert session.scalar(select(func.max(Checkpoint.step)).where(Checkpoint.run_id == run_id)) > stopped_at


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


# ---- several processes per run (DDP under torchrun) ----------------------------
def _two_rank_worker(context, out: Path) -> int:
    """Every rank runs the worker loop; only rank 0 opens the database."""
    db = open_db(out / "ddp.db") if context.is_main else None
    return run_worker(db, WORKER, context=context)


def test_two_rank_worker_fails_a_bad_run_executes_the_next_and_both_ranks_exit(tmp_path):
    db = open_db(tmp_path / "ddp.db")
    odd = queue.submit_study(db, _study("odd", template=dataclasses.replace(TINY, batch_size=5))).queued[0]
    baseline, good = queue.submit_study(db, _study("good", include_baseline=True)).queued
    db.dispose()  # the ranks open their own connections

    assert run_on_two_ranks(_two_rank_worker, tmp_path) == [3, 3]  # the same loop on both ranks

    runs = {r.id: r for r in list_runs(db)}
    assert runs[odd].status == "failed"
    assert runs[odd].error.startswith("DistributedSetupError: batch_size 5 (the global batch) cannot be split evenly")
    assert runs[good].status == runs[baseline].status == "done"
    assert _metrics(db, good) and _metrics(db, baseline) and not _metrics(db, odd)
    with db.session() as session:
        claims = session.scalars(select(Event.run_id).where(Event.kind == "claimed")).all()
        steps = session.scalars(select(Checkpoint.step).where(Checkpoint.run_id == good)).all()
    assert sorted(claims) == sorted([odd, baseline, good])  # rank 0 claimed each run once for both ranks
    assert steps == [1, 2, 3]  # recorded once per checkpoint, by rank 0
    assert "on cpu x 2" in Path(runs[good].log_path).read_text(encoding="utf-8")


@pytest.mark.slow
def test_worker_command_with_nproc_per_node_trains_under_torchrun_and_mirrors(tmp_path):
    """The real launcher: ``hybridscale worker --nproc-per-node 2`` re-runs itself through torchrun."""
    db_path, shared, local = tmp_path / "torchrun.db", tmp_path / "shared", tmp_path / "local"
    db = open_db(db_path)
    run_id = queue.submit_study(db, _study("torchrun")).queued[0]
    worker = _worker_process(db_path, "--nproc-per-node", "2", "--exit-when-empty",
                             "--artifacts", shared.as_uri(), "--workdir", str(local))
    output = worker.communicate(timeout=300)[0]
    assert worker.returncode == 0, output
    assert output.count("worker finished: 1 run(s) executed") == 1  # printed by rank 0 only
    (run,) = list_runs(db)
    assert (run.id, run.status) == (run_id, "done")
    assert _metrics(db, run_id)
    with db.session() as session:
        assert session.scalars(select(Checkpoint.step).where(Checkpoint.run_id == run_id)).all() == [1, 2, 3]
    assert Path(run.log_path) == local / "runs" / run_id / "run.log"
    assert "on cpu x 2" in Path(run.log_path).read_text(encoding="utf-8")
    assert not (shared / "runs" / run_id / "checkpoints").exists()  # results stored: checkpoints removed
    assert (shared / "runs" / run_id / "model" / "config.json").is_file()


# ---- a shared artifact mirror ---------------------------------------------------
def _record_losses(losses: dict[int, float]) -> ProgressListener:
    def listener(_run_id, _label, progress) -> None:
        if progress.step is not None and progress.loss is not None:
            losses[progress.step] = progress.loss
    return listener


def test_run_cancelled_on_one_machine_resumes_from_the_file_mirror_on_another(tmp_path):
    config = dataclasses.replace(TINY, max_steps=8, epochs=100.0, checkpoint_every=2)
    reference_db = open_db(tmp_path / "reference" / "reference.db")
    run_id = queue.submit_study(reference_db, _study("ref", template=config)).queued[0]
    expected: dict[int, float] = {}
    run_worker(reference_db, WORKER, listener=_record_losses(expected))
    assert sorted(expected) == list(range(1, 9))

    shared = tmp_path / "shared"
    options = dataclasses.replace(WORKER, mirror=shared.as_uri())
    machine_a = open_db(tmp_path / "queue.db", artifacts_dir=tmp_path / "machine-a")
    queue.submit_study(machine_a, _study("mirror", template=config))
    losses: dict[int, float] = {}
    record = _record_losses(losses)

    def cancel_at_step_3(run, label, progress):
        record(run, label, progress)
        if progress.step == 3:
            queue.cancel(machine_a, run_id)
            time.sleep(1.0)  # let the heartbeat (every 0.2 s) bring the request before step 4

    run_worker(machine_a, options, listener=cancel_at_step_3)
    assert [r.status for r in list_runs(machine_a)] == ["cancelled"]
    assert queue.retry(machine_a, run_id)

    machine_b = open_db(tmp_path / "queue.db", artifacts_dir=tmp_path / "machine-b")
    steps: list[int] = []

    def on_machine_b(run, label, progress):
        record(run, label, progress)
        if progress.step:
            steps.append(progress.step)

    run_worker(machine_b, options, listener=on_machine_b)
    (run,) = list_runs(machine_b)
    assert run.status == "done", run.error
    assert sorted(set(steps)) == [4, 5, 6, 7, 8]  # resumed from the mirrored step-3 checkpoint
    assert "fetched the checkpoint of step 3" in Path(run.log_path).read_text(encoding="utf-8")
    assert Path(run.log_path).is_relative_to(tmp_path / "machine-b")
    assert [losses[s] for s in range(1, 9)] == pytest.approx([expected[s] for s in range(1, 9)], abs=1e-6)
    mirrored = shared / "runs" / run_id
    assert (mirrored / "model" / "config.json").is_file() and (mirrored / "run.log").is_file()
    # Its results are stored: no checkpoint is kept, here or in the mirror.
    assert not (mirrored / "checkpoints").exists() and not (mirrored / "checkpoint.json").exists()
    assert not (tmp_path / "machine-b" / "runs" / run_id / "checkpoint").exists()
    with machine_b.session() as session:
        paths = session.scalars(select(Checkpoint.path).where(Checkpoint.run_id == run_id)).all()
    assert paths[-1] == (mirrored / "checkpoints" / "000000008").as_uri()
    assert _metrics(machine_b, run_id) == pytest.approx(_metrics(reference_db, run_id), abs=1e-5)


def test_a_mirror_that_cannot_be_read_fails_the_run_not_the_worker(tmp_path):
    db = open_db(tmp_path / "q.db")
    run_id = queue.submit_study(db, _study("unreadable")).queued[0]
    pointer = tmp_path / "shared" / "runs" / run_id / "checkpoint.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text('{"step": 3, "fol')  # an upload cut short
    assert run_worker(db, dataclasses.replace(WORKER, mirror=(tmp_path / "shared").as_uri())) == 0
    (run,) = list_runs(db)
    assert run.status == "failed"
    assert run.error.startswith(f"fetching its checkpoint from {(tmp_path / 'shared').as_uri()} failed: ValueError:")
    assert "Traceback" in Path(run.log_path).read_text(encoding="utf-8")  # the details the message points to


def test_a_finished_run_keeps_its_rankings_and_per_query_values_and_they_reproduce_its_rows(tmp_path, capsys):
    import json as json_module

    from hybridscale.cli import main
    from storage.queries import per_query_values, run_warnings, tidy_metrics

    corpus = tmp_path / "one-passage.jsonl"
    corpus.write_text(json_module.dumps({"docid": "10020#1", "text": "Idije Olympiiki"}) + "\n")
    evaluations = FAST_EVAL + (EvalSpec("miracl", ("yo",), "dev", max_queries=20, path=str(corpus)),)
    template = dataclasses.replace(TINY, evaluations=evaluations)
    db = open_db(tmp_path / "files.db")
    run_id = queue.submit_study(db, _study("files", template=template, include_baseline=True)).queued[0]  # untrained
    assert run_worker(db, dataclasses.replace(WORKER, max_runs=1)) == 1
    files = db.artifacts_dir / "runs" / run_id / "eval"
    flores = files / "flores-test"
    assert sorted(p.name for p in flores.glob("qrels.*")) == ["qrels.all.txt", "qrels.en.txt", "qrels.sw.txt", "qrels.yo.txt"]
    assert (flores / "cross.sw-en.run.gz").is_file() and (files / "miracl-dev" / "mono.yo-yo.run.gz").is_file()

    rows = {(r["eval_set"], r["setting"], r["query_language"], r["passage_language"], r["metric"]): r
            for r in tidy_metrics(db) if r["run_id"] == run_id}
    per_query: dict[tuple, list[float]] = {}
    for value in per_query_values(db):
        key = (value["eval_set"], value["setting"], value["query_language"], value["passage_language"], value["metric"])
        per_query.setdefault(key, []).append(value["value"])
    assert set(per_query) == {key for key in rows if key[2] != "all"}
    for key, values in per_query.items():  # each cell's per-query values average to its row
        assert len(values) == rows[key]["num_queries"]
        assert sum(values) / len(values) == pytest.approx(rows[key]["value"], abs=1e-12)

    # `hybridscale metrics` on the stored files reproduces the rows (the measures with a cutoff; AP is full depth).
    for setting, x, y in (("cross", "sw", "en"), ("multi", "yo", "all")):
        capsys.readouterr()
        assert main(["metrics", "--qrels", str(flores / f"qrels.{y}.txt"), "--run",
                     str(flores / f"{setting}.{x}-{y}.run.gz"), "--measures", "nDCG@10,R@100,RR@10"]) == 0
        printed = json_module.loads(capsys.readouterr().out)
        for metric, value in printed.items():
            assert value == rows[("flores/test", setting, x, y, metric)]["value"]
    # The partial MIRACL corpus: a warning in the run log and the result, and no perfect score.
    (warning,) = run_warnings(db)[run_id]
    assert warning.startswith("miracl/dev: ") and "missing from the corpus" in warning
    log_text = Path(next(r for r in list_runs(db) if r.id == run_id).log_path).read_text(encoding="utf-8")
    assert warning in log_text
    assert rows[("miracl/dev", "mono", "yo", "yo", "nDCG@10")]["value"] < 0.5

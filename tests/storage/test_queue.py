"""The run queue on a real SQLite file."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from dataclasses import dataclass

import pytest
from sqlalchemy import func, insert, select, update

from storage import queue
from storage.db import open_db
from storage.models import Event, Metric, Run
from storage.queries import list_runs, list_studies
from tests.storage.studies import grid_study


@dataclass(frozen=True)
class Value:
    eval_set: str = "flores/test"
    setting: str = "cross"
    query_language: str = "sw"
    passage_language: str = "en"
    metric: str = "nDCG@10"
    value: float = 0.5
    num_queries: int = 204


def test_submit_queues_every_run_in_expansion_order(db):
    study = grid_study(baseline=True)
    result = queue.submit_study(db, study)
    assert len(result.queued) == 21 and not result.reused
    runs = list_runs(db, result.study_id)
    assert [r.id for r in runs] == [c.run_id for c in study.expand()]
    assert runs[0].strategy == "none" and runs[0].train_size == 0
    assert {r.status for r in runs} == {"queued"}


def test_claim_complete_and_resubmit_reuses_done_runs(db):
    first = queue.submit_study(db, grid_study(sizes=(2, 3), seeds=(0,)))
    claimed = queue.claim_next(db, "w1")
    assert claimed.id == first.queued[0]
    assert claimed.config.run_id == claimed.id
    queue.complete(db, claimed.id, "w1", [Value(), Value(metric="R@100", value=0.9)])

    again = queue.submit_study(db, grid_study(name="again", sizes=(2, 3), seeds=(0,)))
    assert again.reused == (claimed.id,)
    assert set(again.pending) == set(first.queued) - {claimed.id}
    assert again.queued == ()
    with db.session() as session:
        assert session.scalar(select(Run.status).where(Run.id == claimed.id)) == "done"
        values = session.scalars(select(Metric.value).where(Metric.run_id == claimed.id)).all()
    assert sorted(values) == [0.5, 0.9]
    # The reused run belongs to both studies.
    counts = {s.name: s.status_counts for s in list_studies(db)}
    assert counts["again"]["done"] == 1 and counts["grid"]["done"] == 1


def test_claim_returns_none_on_empty_queue(db):
    assert queue.claim_next(db, "w1") is None


def test_failed_run_keeps_message_and_queue_goes_on(db):
    queue.submit_study(db, grid_study(sizes=(2, 3), seeds=(0,)))
    first = queue.claim_next(db, "w1")
    queue.fail(db, first.id, "w1", "FileNotFoundError: xquad.sw.json is missing")
    second = queue.claim_next(db, "w1")
    assert second is not None and second.id != first.id
    failed = [r for r in list_runs(db) if r.id == first.id][0]
    assert failed.status == "failed" and "xquad.sw.json" in failed.error
    assert queue.retry(db, first.id)
    assert [r.status for r in list_runs(db) if r.id == first.id] == ["queued"]


def test_cancel_queued_and_running(db):
    queue.submit_study(db, grid_study(sizes=(2, 3), seeds=(0,)))
    running = queue.claim_next(db, "w1")
    waiting = [r.id for r in list_runs(db) if r.status == "queued"][0]
    assert queue.cancel(db, waiting) == "cancelled"
    assert queue.cancel(db, running.id) == "running"
    assert queue.heartbeat(db, running.id, "w1", progress=0.3) is True
    queue.acknowledge_cancel(db, running.id, "w1")
    statuses = {r.id: r.status for r in list_runs(db)}
    assert statuses[running.id] == "cancelled" and statuses[waiting] == "cancelled"
    with pytest.raises(KeyError):
        queue.cancel(db, "nope")


def _age_heartbeat(db, run_id: str, seconds: float) -> None:
    old = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=seconds)
    with db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=old))


def test_stale_run_is_requeued_and_dead_worker_cannot_write(db):
    queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,)))
    claimed = queue.claim_next(db, "dead")
    assert queue.requeue_stale(db, timeout_s=60) == []  # fresh heartbeat: left alone
    _age_heartbeat(db, claimed.id, 120)
    assert queue.requeue_stale(db, timeout_s=60) == [claimed.id]
    again = queue.claim_next(db, "alive")
    assert again.id == claimed.id and again.attempts == 2
    with pytest.raises(queue.RunLost):
        queue.heartbeat(db, claimed.id, "dead")
    with pytest.raises(queue.RunLost):
        queue.complete(db, claimed.id, "dead", [Value()])
    queue.complete(db, claimed.id, "alive", [Value()])


def test_run_that_kills_every_worker_fails_after_max_attempts(db):
    poison, healthy = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued
    for attempt in range(1, queue.MAX_ATTEMPTS + 1):
        claimed = queue.claim_next(db, f"w{attempt}")
        assert (claimed.id, claimed.attempts) == (poison, attempt)
        _age_heartbeat(db, claimed.id, 999)
        queue.requeue_stale(db, timeout_s=60)
    statuses = {r.id: r for r in list_runs(db)}
    assert statuses[poison].status == "failed" and "stopped responding" in statuses[poison].error
    assert queue.claim_next(db, "w9").id == healthy  # the queue goes on


def test_complete_stores_all_metrics_or_none(db):
    queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,)))
    claimed = queue.claim_next(db, "w1")
    duplicate = [Value(), Value()]  # violates the unique cell constraint mid-insert
    with pytest.raises(Exception):
        queue.complete(db, claimed.id, "w1", duplicate)
    with db.session() as session:
        assert session.scalars(select(Metric)).all() == []
        assert session.scalar(select(Run.status).where(Run.id == claimed.id)) == "running"


def _claim_all(url: str, worker: str, out) -> None:
    database = open_db(url)
    taken = []
    while (run := queue.claim_next(database, worker)) is not None:
        taken.append(run.id)
        queue.complete(database, run.id, worker, [Value(value=len(taken))])
    out.put(taken)


def test_worker_processes_claim_each_run_exactly_once(database_url):
    db = open_db(database_url)
    submitted = queue.submit_study(db, grid_study()).queued
    assert len(submitted) == 20
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_claim_all, args=(database_url, f"w{i}", results)) for i in range(4)]
    for process in workers:
        process.start()
    taken = [results.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    claimed = [run_id for share in taken for run_id in share]
    assert sorted(claimed) == sorted(submitted)  # every run once: no loss, no duplicate
    assert {r.status for r in list_runs(db)} == {"done"}
    with db.session() as session:
        claims = session.execute(
            select(Event.run_id, func.count()).where(Event.kind == "claimed").group_by(Event.run_id)
        ).all()
        metric_rows = session.scalar(select(func.count()).select_from(Metric))
    assert dict(claims) == {run_id: 1 for run_id in submitted}
    assert metric_rows == 20
    db.dispose()


def test_release_puts_a_running_run_back_without_counting_the_attempt(db):
    run_id = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued[0]
    claimed = queue.claim_next(db, "w1")
    assert claimed.id == run_id and claimed.attempts == 1
    with pytest.raises(queue.RunLost, match="no longer owned by worker w2"):
        queue.release(db, run_id, "w2")
    assert queue.release(db, run_id, "w1") == "queued"
    (run, *_rest) = list_runs(db)
    assert (run.id, run.status, run.worker_id, run.attempts) == (run_id, "queued", None, 0)
    assert queue.claim_next(db, "w2").id == run_id  # at the head of the queue again
    assert queue.cancel(db, run_id) == "running"  # the user cancels just before the worker is stopped
    assert queue.release(db, run_id, "w2") == "cancelled"  # the cancel is not lost to the requeue
    assert next(r for r in list_runs(db) if r.id == run_id).status == "cancelled"


def test_heartbeat_carries_the_dev_loss_beside_the_training_loss(db):
    run_id = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued[0]
    queue.claim_next(db, "w")
    queue.heartbeat(db, run_id, "w", step=3, loss=1.25)
    assert [(r.loss, r.dev_loss) for r in list_runs(db) if r.id == run_id] == [(1.25, None)]
    queue.heartbeat(db, run_id, "w", step=4, loss=1.0, dev_loss=1.5)
    queue.heartbeat(db, run_id, "w", step=5, loss=0.75)  # a beat without a new dev loss keeps the last one
    assert [(r.step, r.loss, r.dev_loss) for r in list_runs(db) if r.id == run_id] == [(5, 0.75, 1.5)]


def test_a_finished_run_shows_all_its_steps_whatever_its_last_heartbeat_said(db):
    run_id = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued[0]
    queue.claim_next(db, "w")
    queue.heartbeat(db, run_id, "w", progress=0.7, step=8, total_steps=9)
    queue.complete(db, run_id, "w", [])
    run = next(r for r in list_runs(db) if r.id == run_id)
    assert (run.status, run.step, run.total_steps, run.progress) == ("done", 9, 9, 1.0)


def test_the_final_step_and_loss_replace_the_last_heartbeats(db):
    run_id = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued[0]
    queue.claim_next(db, "w")
    queue.heartbeat(db, run_id, "w", progress=0.7, step=8, total_steps=9, loss=2.5)
    queue.complete(db, run_id, "w", [], step=9, loss=0.125)
    run = next(r for r in list_runs(db) if r.id == run_id)
    assert (run.step, run.loss) == (9, 0.125)


def test_retrying_an_unknown_run_says_so(db):
    queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,)))
    with pytest.raises(KeyError, match="no run 'deadbeef' in this database"):
        queue.retry(db, "deadbeef")
    assert queue.retry(db, list_runs(db)[0].id) is False  # known but queued: left as it is


def _plant(db, run_id: str, **columns) -> None:
    """A row at the head of the queue, written past hybridscale (as anyone with write access could)."""
    template = grid_study(sizes=(2,), seeds=(0,)).expand()[0]
    values = dict(id=run_id, config_json=template.to_json(), label="planted", model="tiny:", strategy="mono",
                  train_size=2, seed=0, status="queued", position=-1)
    values.update(columns)
    with db.session() as session:
        session.execute(insert(Run).values(**values))


@pytest.mark.parametrize("bad_id", ["../../../x", "0123456789ABCDEF", "abc"])
def test_a_row_that_is_not_a_run_fails_in_the_claim_and_the_next_run_is_taken(db, bad_id):
    queued = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued
    _plant(db, bad_id)
    claimed = queue.claim_next(db, "w")
    assert claimed.id == queued[0]
    refused = next(r for r in list_runs(db) if r.id == bad_id)
    assert refused.status == "failed" and refused.worker_id is None
    assert f"{bad_id!r} is not a run id" in refused.error and "\n" not in refused.error


def test_unreadable_settings_fail_in_the_claim(db):
    queued = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued
    _plant(db, "00000000000000aa", config_json='{"colour": "red"}')
    assert queue.claim_next(db, "w").id == queued[0]
    refused = next(r for r in list_runs(db) if r.id == "00000000000000aa")
    assert refused.status == "failed" and "colour: is not a run setting" in refused.error


def _claim_and_wait(url: str, claimed) -> None:
    database = open_db(url)
    claimed.put(queue.claim_next(database, "doomed").id)
    multiprocessing.Event().wait(600)  # until killed


def test_a_run_whose_worker_process_is_gone_is_requeued_at_once_on_the_same_host(database_url):
    db = open_db(database_url)
    run_id = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued[0]
    context = multiprocessing.get_context("spawn")
    claimed = context.Queue()
    holder = context.Process(target=_claim_and_wait, args=(database_url, claimed))
    holder.start()
    assert claimed.get(timeout=120) == run_id
    assert queue.requeue_stale(db, timeout_s=120) == []  # its process is alive: left alone
    holder.kill()
    holder.join(timeout=30)
    assert queue.requeue_stale(db, timeout_s=120) == [run_id]  # long before the heartbeat timeout
    (run, *_rest) = [r for r in list_runs(db) if r.id == run_id]
    assert (run.status, run.worker_id) == ("queued", None)
    with db.session() as session:
        reasons = session.scalars(select(Event.message).where(Event.run_id == run_id, Event.kind == "requeued")).all()
    assert reasons == [f"its worker process {holder.pid} on this host is gone"]
    db.dispose()

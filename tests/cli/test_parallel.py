"""Helper worker processes beside the caller's own: how cores are shared, and that they share one queue."""

from __future__ import annotations

import os
import threading

import pytest

from hybridscale.parallel import cpu_layout, helper_workers
from storage import queue
from storage.db import open_db
from storage.queries import list_runs
from tests.cli.test_worker import TINY
from vocabulary.config import StudyConfig


@pytest.mark.parametrize(("workers", "cores", "layout"), [
    (None, 2, (2, 1)),  # the 2-core reference machine: two one-thread workers
    (None, 1, (1, 1)),
    (None, 8, (2, 4)),
    (3, 8, (3, 2)),
    (4, 2, (2, 1)),  # never more workers than cores
])
def test_cpu_layout_gives_every_core_one_thread(workers, cores, layout):
    assert cpu_layout(workers, cores) == layout


def _six_runs(db):
    study = StudyConfig("parallel", template=TINY, strategies=("mono", "hybrid"), train_sizes=(8,), seeds=(0, 1, 2),
                        include_baseline=False)
    return queue.submit_study(db, study).queued


def test_two_helpers_empty_one_queue_between_them(tmp_path):
    db = open_db(tmp_path / "parallel.db")
    queued = _six_runs(db)
    with helper_workers(db, "cpu", 2, 1, threading.Event()):
        pass  # this process takes no run: leaving waits until the helpers have emptied the queue
    runs = list_runs(db)
    assert sorted(r.id for r in runs) == sorted(queued) and {r.status for r in runs} == {"done"}
    workers = {r.worker_id for r in runs}
    assert len(workers) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)


def test_a_stop_hands_the_helpers_runs_back_to_the_queue(tmp_path):
    db = open_db(tmp_path / "stopped.db")
    _six_runs(db)
    stop = threading.Event()
    with helper_workers(db, "cpu", 2, 1, stop):
        stop.set()
    statuses = {r.status for r in list_runs(db)}
    assert "running" not in statuses and statuses <= {"queued", "done"}

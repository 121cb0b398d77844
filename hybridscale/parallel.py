"""Several queue workers on one machine's CPU cores: helper processes beside the caller's own worker.

A CPU run of a small encoder leaves cores idle between its matrix products
(tokenising, Python in the layers, searching, storing), so on a machine of
two cores two one-thread workers finish a study sooner than one worker of two
threads (bench/demo_costs.py measures it). The helpers are ordinary queue
workers (:func:`hybridscale.worker.run_worker`) in spawned processes on the
same database and artifacts folder: each claims its own runs, and the
frozen-prefix cache on disk is shared. Ctrl-C reaches them as it reaches the
caller (one process group); a stop the caller alone gets (SIGTERM) is passed
on, so each helper checkpoints its run and hands it back.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from typing import Iterator

import torch

from storage.db import Database

#: Worker processes used on a CPU when the caller does not say (two one-thread workers beat
#: one two-thread worker on the 2-core reference machine; more cores get more threads each).
DEFAULT_CPU_WORKERS = 2


def cpu_layout(workers: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """(worker processes, torch threads for each) for ``cores`` CPU cores (default: this machine's)."""
    cores = cores or os.cpu_count() or 1
    count = max(1, min(workers or DEFAULT_CPU_WORKERS, cores))
    return count, max(1, cores // count)


def _helper(url: str, artifacts: str, device: str, threads: int) -> None:
    from hybridscale.signals import stop_on_signals
    from hybridscale.worker import WorkerOptions, run_worker
    from storage.db import open_db

    torch.set_num_threads(threads)
    with stop_on_signals("hybridscale helper worker") as stop:
        run_worker(open_db(url, artifacts), WorkerOptions(device=device, exit_when_empty=True), shutdown=stop)


@contextlib.contextmanager
def helper_workers(db: Database, device: str, helpers: int, threads: int, stop: threading.Event) -> Iterator[None]:
    """``helpers`` worker processes of ``threads`` torch threads on ``db``'s queue, and this process's torch
    threads set to ``threads`` meanwhile; on leaving, wait for them to empty the queue, or stop them when
    leaving on an error or with ``stop`` set."""
    if helpers < 1:
        yield
        return
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
    processes = [context.Process(target=_helper, args=(db.url, str(db.artifacts_dir), device, threads),
                                 name=f"hybridscale-helper-{index}") for index in range(helpers)]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    for process in processes:
        process.start()
    finished = False
    try:
        yield
        finished = not stop.is_set()
    finally:
        torch.set_num_threads(previous)
        for process in processes:
            if not finished and process.is_alive():
                process.terminate()  # SIGTERM: the helper checkpoints its run and hands it back
            process.join()

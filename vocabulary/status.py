"""The states a run moves through in the queue; only :mod:`storage.queue` moves runs between them.

``queued`` -> ``running`` (a worker claimed it) -> ``done`` | ``failed`` |
``cancelled``; a stopped or dead worker's run goes back to ``queued``. The
members are strings, so they compare equal to what the database holds.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: A run in one of these states is finished; submit and retry queue the last two again.
FINISHED: tuple[RunStatus, ...] = (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED)
RETRYABLE: tuple[RunStatus, ...] = (RunStatus.FAILED, RunStatus.CANCELLED)

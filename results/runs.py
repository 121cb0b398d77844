"""The queue table's model without Qt: merge polled run rows, derive times and text.

Polling is incremental: each poll asks storage for the runs changed since
the newest ``updated_at`` seen, minus :data:`POLL_OVERLAP`. The overlap covers
a writer whose transaction took its timestamp before, but committed after,
the newest row we saw; re-reading a few rows is harmless because merging is
an upsert by run id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from storage.models import utcnow
from storage.queries import RunView
from vocabulary.status import RunStatus

POLL_OVERLAP = dt.timedelta(seconds=2)


def run_clock() -> dt.datetime:
    """Now, as the queue's timestamps are written (naive UTC), for the times shown beside them."""
    return utcnow()


def elapsed_seconds(run: RunView, now: dt.datetime) -> float | None:
    """Time spent on the current attempt (until now while running)."""
    if run.started_at is None or run.status == RunStatus.QUEUED:
        return None
    end = now if run.status == RunStatus.RUNNING else (run.finished_at or run.heartbeat_at or now)
    return max(0.0, (end - run.started_at).total_seconds())


def eta_seconds(run: RunView, now: dt.datetime) -> float | None:
    """Remaining time of a running run, extrapolated linearly from its progress so far."""
    elapsed = elapsed_seconds(run, now)
    if run.status != RunStatus.RUNNING or elapsed is None or not 0.0 < run.progress < 1.0:
        return None
    return elapsed * (1.0 - run.progress) / run.progress


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class Column:
    """One queue column; ``widest`` is about its longest text, so the column is wide enough before a run says it."""

    title: str
    text: Callable[[RunView, dt.datetime], str]
    tooltip: str = ""
    widest: str = ""


def _loss(run: RunView) -> str:
    text = "" if run.loss is None else f"{run.loss:.4f}"
    return text if run.dev_loss is None else f"{text} (dev {run.dev_loss:.4f})"


def _status(run: RunView, _now: dt.datetime) -> str:
    return f"{run.status} (cancelling)" if run.cancel_requested and run.status == RunStatus.RUNNING else run.status


def _step(run: RunView, _now: dt.datetime) -> str:
    return f"{run.step}/{run.total_steps}" if run.total_steps else ""


#: The error comes last: it is the one long text, and the last column takes the width left over.
COLUMNS: tuple[Column, ...] = (
    Column("Run", lambda r, _: r.label, "strategy, training size and seed", "hybrid α=0.5 n=1000 seed=0"),
    Column("Status", _status, "", "running (cancelling)"),
    Column("Progress", lambda r, _: f"{r.progress:.0%}", "", "100% progress"),
    Column("Phase", lambda r, _: r.phase or "", "", "loading training data"),
    Column("Step", _step, "training step / total steps", "10000/10000"),
    Column("Loss", lambda r, _: _loss(r), "latest training loss (and dev loss on held-out groups, when computed)",
           "0.0000 (dev 0.0000)"),
    Column("Elapsed", lambda r, now: format_duration(elapsed_seconds(r, now)), "", "10:00:00"),
    Column("ETA", lambda r, now: format_duration(eta_seconds(r, now)), "rough: extrapolated from progress",
           "10:00:00"),
    Column("Worker", lambda r, _: r.worker_id or "", "", "workstation.local:123456"),
    Column("Attempts", lambda r, _: str(r.attempts), "", "Attempts"),
    Column("Run id", lambda r, _: r.id, "", "0123456789abcdef"),
    Column("Error", lambda r, _: r.error or ""),
)
PROGRESS_COLUMN = 2


class RunTable:
    """Runs in first-seen order, updated in place as polls bring newer versions."""

    def __init__(self) -> None:
        self.runs: list[RunView] = []
        self._index: dict[str, int] = {}

    def clear(self) -> None:
        self.runs.clear()
        self._index.clear()

    def merge(self, views: Iterable[RunView]) -> tuple[list[int], int]:
        """Upsert ``views``; return (indexes of changed existing rows, number of rows appended)."""
        changed: list[int] = []
        added = 0
        for view in views:
            index = self._index.get(view.id)
            if index is None:
                self._index[view.id] = len(self.runs)
                self.runs.append(view)
                added += 1
            elif self.runs[index] != view:
                self.runs[index] = view
                changed.append(index)
        return changed, added

    def changed_since(self) -> dt.datetime | None:
        """What to pass to ``list_runs(changed_since=...)`` next (None: fetch everything)."""
        if not self.runs:
            return None
        return max(run.updated_at for run in self.runs) - POLL_OVERLAP

    def find(self, run_id: str) -> RunView | None:
        index = self._index.get(run_id)
        return None if index is None else self.runs[index]

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for run in self.runs:
            result[run.status] = result.get(run.status, 0) + 1
        return result


def rows_as_text(table: Sequence[Sequence[str]]) -> str:
    """Tab-separated lines, which spreadsheets paste as a table."""
    return "\n".join("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row) for row in table) + "\n"

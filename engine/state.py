"""One small run-state protocol: what long engine work reports, and how it learns it should stop.

Training, evaluation and the run executor all take a :class:`RunState`
(Orange3's TaskState idea): they ``report`` a :class:`Progress` record as
they go and ask ``cancelled()`` at points where stopping is safe, then raise
:class:`Cancelled`. The queue worker, the demo's progress bar and the tests
implement it; nothing in the engine knows who is listening, so the same code
runs headless, in a worker process, or in a notebook.

:class:`Slice` maps a part of the work onto a share of the parent's
progress bar (training takes the first 80 % of a run, each eval set a
share of the rest), so each piece reports its own 0..1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Protocol


class Cancelled(Exception):
    """The run state asked to stop; whatever can be resumed (a training checkpoint) was saved first."""


@dataclass(frozen=True)
class Progress:
    """What a piece of work is doing now; ``fraction`` runs from 0 to 1 over that piece.

    Training fills the step fields, the learning rate of the step just taken,
    its throughput and the latest dev loss (once one was evaluated); other
    work leaves them None. Encoding fills ``items``, the texts encoded so far
    in this phase, from which the worker's provenance record derives passages/s.
    """

    phase: str
    fraction: float
    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None
    learning_rate: float | None = None
    samples_per_second: float | None = None
    dev_loss: float | None = None
    items: int | None = None
    #: Once training ended: the step whose weights were kept (the lowest dev loss under ``best_dev``).
    selected_step: int | None = None


class RunState(Protocol):
    def report(self, progress: Progress) -> None: ...

    def cancelled(self) -> bool: ...


class TaskState:
    """A :class:`RunState` from two optional callables (the default hears nothing and never cancels)."""

    def __init__(self, report: Callable[[Progress], None] | None = None,
                 cancelled: Callable[[], bool] | None = None):
        self._report = report
        self._cancelled = cancelled

    def report(self, progress: Progress) -> None:
        if self._report is not None:
            self._report(progress)

    def cancelled(self) -> bool:
        return self._cancelled is not None and bool(self._cancelled())


class Slice:
    """The share ``[start, start + span]`` of a parent state's progress, with a phase prefix."""

    def __init__(self, parent: RunState, start: float, span: float, prefix: str = ""):
        self._parent = parent
        self._start = start
        self._span = span
        self._prefix = prefix

    def report(self, progress: Progress) -> None:
        phase = f"{self._prefix}: {progress.phase}" if self._prefix and progress.phase else self._prefix or progress.phase
        self._parent.report(dataclasses.replace(
            progress, phase=phase, fraction=self._start + self._span * min(max(progress.fraction, 0.0), 1.0)))

    def cancelled(self) -> bool:
        return self._parent.cancelled()


def check_cancelled(state: RunState, what: str) -> None:
    """Raise :class:`Cancelled` (saying ``what`` was interrupted) when the state asks to stop."""
    if state.cancelled():
        raise Cancelled(f"cancelled while {what}")

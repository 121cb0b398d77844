"""Run database queries off the UI thread and hand the results back on it.

A query can wait on a busy SQLite file (workers write while the GUI reads),
so the views never call storage from the event loop directly: they submit a
plain function here and get its result, or its error, in a callback on the
GUI thread. One thread is enough: queries are short and run one after
another, which also keeps their results in submission order.

The worker thread never touches Qt. Emitting a signal from a plain Python
thread crashes PySide6 >= 6.8 at random (refcount errors, PYSIDE-3124;
reproduced here with 6.12), so instead the GUI thread collects finished
futures with a timer that runs only while something is pending. The
latency that adds (:data:`COLLECT_MS`) is far below what a user notices.
Answers keep submission order, so a view that asks again drops the older
answers with :class:`results.latest.Latest`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import shiboken6
from PySide6 import QtCore

#: How often the GUI thread looks for finished queries while any is pending.
COLLECT_MS = 15

_Callbacks = tuple[Callable[[Any], None], Callable[[BaseException], None] | None, QtCore.QObject | None]


class Background(QtCore.QObject):
    """A one-thread executor whose callbacks run in the GUI thread, in submission order."""

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hybridscale-db")
        self._pending: list[tuple[Future, _Callbacks]] = []
        self._timer = QtCore.QTimer(self, interval=COLLECT_MS, timeout=self._collect)
        self._closed = False

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(
        self,
        function: Callable[[], Any],
        done: Callable[[Any], None],
        failed: Callable[[BaseException], None] | None = None,
        owner: QtCore.QObject | None = None,
    ) -> None:
        """Run ``function()`` in the background; then ``done(result)`` or ``failed(error)`` in the GUI thread.

        With an ``owner`` (a dialog that may be closed and deleted meanwhile),
        the callbacks are skipped once the owner's C++ object is gone.
        """
        if self._closed:  # a timer firing while the window closes: nothing left to answer to
            return
        self._pending.append((self._executor.submit(function), (done, failed, owner)))
        if not self._timer.isActive():
            self._timer.start()

    def _collect(self) -> None:
        """Deliver the finished futures at the head of the queue (order is kept)."""
        while self._pending and self._pending[0][0].done():
            future, (done, failed, owner) = self._pending.pop(0)
            if owner is not None and not shiboken6.isValid(owner):
                continue
            error = future.exception()
            if error is None:
                done(future.result())
            elif failed is not None:
                failed(error)
            else:
                raise error
        if not self._pending:
            self._timer.stop()

    def shutdown(self) -> None:
        """Finish the query in flight, drop the rest; later submissions are ignored."""
        self._closed = True
        self._timer.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

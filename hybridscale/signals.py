"""Stopping a worker loop cleanly: SIGTERM and a first Ctrl-C ask it to stop, a second Ctrl-C aborts.

The worker (and the demo, which runs one in-process) checks the event
between steps: a run in progress is checkpointed and handed back to the
queue, so stopping loses at most one step and never leaves a run that looks
alive until its heartbeat goes stale.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator


@contextlib.contextmanager
def stop_on_signals(who: str) -> Iterator[threading.Event]:
    """An event set by SIGTERM or a first Ctrl-C (a second Ctrl-C raises KeyboardInterrupt).

    The previous handlers are restored on exit, so a caller that is not a
    command of its own (a test running the demo) keeps its Ctrl-C.
    """
    stop = threading.Event()

    def on_signal(signum: int, _frame) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        print(f"{who}: stopping; a run in progress is checkpointed and goes back to the queue "
              "(Ctrl-C again to abort at once)", file=sys.stderr, flush=True)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_forwarding_signals(command: list[str]) -> int:
    """Run ``command`` (torchrun) as a child, passing SIGTERM and Ctrl-C on to it, and wait for it.

    Killing the launcher instead would orphan its worker processes.
    """
    import subprocess

    child = subprocess.Popen(command)

    def forward(signum: int, _frame) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

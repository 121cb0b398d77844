"""Local worker processes started from the GUI.

Training runs in separate ``python -m hybridscale worker`` processes, never
in a GUI thread: torch would stall the event loop (and the 2 s start-up),
and a crashed or killed worker must not take the window with it. The
workers talk to the GUI only through the database.
"""

from __future__ import annotations

import sys

from PySide6 import QtCore

DEVICES = ("auto", "cpu", "cuda")


def worker_arguments(db_url: str, device: str, *, exit_when_empty: bool = False) -> list[str]:
    """Arguments after the Python executable: the CLI worker on this database and device."""
    if device not in DEVICES:
        raise ValueError(f"device {device!r}: use one of {', '.join(DEVICES)}")
    arguments = ["-m", "hybridscale", "--db", db_url, "worker", "--device", device]
    return arguments + (["--exit-when-empty"] if exit_when_empty else [])


class WorkerPool(QtCore.QObject):
    """Starts, tracks and stops worker processes; forwards their output line by line."""

    output = QtCore.Signal(str)  # one line of a worker's stdout/stderr, prefixed with its pid
    changed = QtCore.Signal(int)  # number of running workers

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.processes: list[QtCore.QProcess] = []

    @property
    def running(self) -> int:
        return sum(p.state() != QtCore.QProcess.ProcessState.NotRunning for p in self.processes)

    def start(self, db_url: str, device: str, *, exit_when_empty: bool = False) -> QtCore.QProcess:
        process = QtCore.QProcess(self)
        process.setProgram(sys.executable)
        process.setArguments(worker_arguments(db_url, device, exit_when_empty=exit_when_empty))
        process.setProcessChannelMode(QtCore.QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(lambda p=process: self._forward(p))
        process.finished.connect(lambda code, _status, p=process: self._finished(p, code))
        process.errorOccurred.connect(lambda error, p=process: self._failed(p, error))
        self.processes.append(process)
        process.start()
        self.changed.emit(self.running)
        return process

    def stop_all(self, wait_ms: int = 20_000) -> None:
        """Ask every worker to stop (SIGTERM): each checkpoints its run and hands it back to the queue.

        A worker that has not exited after ``wait_ms`` (a checkpoint of a large
        model takes seconds) is killed; its run is requeued once its heartbeat is stale.
        """
        for process in self.processes:
            if process.state() != QtCore.QProcess.ProcessState.NotRunning:
                process.terminate()
        for process in self.processes:
            if process.state() != QtCore.QProcess.ProcessState.NotRunning and not process.waitForFinished(wait_ms):
                process.kill()
                process.waitForFinished(1000)
        self.changed.emit(self.running)

    def _forward(self, process: QtCore.QProcess) -> None:
        text = bytes(process.readAllStandardOutput().data()).decode("utf-8", errors="replace")
        for line in text.splitlines():
            if line.strip():
                self.output.emit(f"[worker {process.processId()}] {line}")

    def _finished(self, process: QtCore.QProcess, code: int) -> None:
        self._forward(process)
        self.output.emit(f"[worker] a worker exited with status {code}")
        self.processes = [p for p in self.processes if p is not process]
        process.deleteLater()
        self.changed.emit(self.running)

    def _failed(self, process: QtCore.QProcess, error: QtCore.QProcess.ProcessError) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart:
            self.output.emit(f"[worker] could not start {process.program()}: {process.errorString()}")
            self.processes = [p for p in self.processes if p is not process]
            self.changed.emit(self.running)

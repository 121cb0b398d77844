"""Local worker processes started from the GUI.

Training runs in separate ``python -m hybridscale worker`` processes, never
in a GUI thread: torch would stall the event loop (and slow the start-up),
and a crashed or killed worker must not take the window with it. The
workers talk to the GUI only through the database. The database URL reaches
them in the environment (``HYBRIDSCALE_DB``), not on the command line, where
``ps`` would show a PostgreSQL password to every user of the machine.
"""

from __future__ import annotations

import sys

from PySide6 import QtCore

DEVICES = ("auto", "cpu", "cuda")
#: The environment variable the CLI reads when no --db is given.
DB_ENVIRONMENT = "HYBRIDSCALE_DB"
#: How long a stopped worker gets to checkpoint its run before it is killed.
STOP_GRACE_MS = 20_000


def worker_arguments(device: str, *, exit_when_empty: bool = False) -> list[str]:
    """Arguments after the Python executable: the CLI worker on ``device`` (the database comes from the environment)."""
    if device not in DEVICES:
        raise ValueError(f"device {device!r}: use one of {', '.join(DEVICES)}")
    arguments = ["-m", "hybridscale", "worker", "--device", device]
    return arguments + (["--exit-when-empty"] if exit_when_empty else [])


class WorkerPool(QtCore.QObject):
    """Starts, tracks and stops worker processes; forwards their output line by line."""

    output = QtCore.Signal(str)  # one line of a worker's stdout/stderr, prefixed with its pid
    changed = QtCore.Signal(int)  # number of running workers

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.processes: list[QtCore.QProcess] = []
        self._databases: dict[int, str] = {}  # id(process) -> the URL it works on
        self._partial: dict[int, str] = {}  # id(process) -> output after its last newline

    @property
    def running(self) -> int:
        return sum(p.state() != QtCore.QProcess.ProcessState.NotRunning for p in self.processes)

    def running_on(self, db_url: str) -> int:
        """Workers of this pool that work on ``db_url``."""
        return sum(
            p.state() != QtCore.QProcess.ProcessState.NotRunning and self._databases.get(id(p)) == db_url
            for p in self.processes
        )

    def start(self, db_url: str, device: str, *, exit_when_empty: bool = False) -> QtCore.QProcess:
        process = QtCore.QProcess(self)
        process.setProgram(sys.executable)
        process.setArguments(worker_arguments(device, exit_when_empty=exit_when_empty))
        environment = QtCore.QProcessEnvironment.systemEnvironment()
        environment.insert(DB_ENVIRONMENT, db_url)
        process.setProcessEnvironment(environment)
        process.setProcessChannelMode(QtCore.QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(lambda p=process: self._forward(p))
        process.finished.connect(lambda code, _status, p=process: self._finished(p, code))
        process.errorOccurred.connect(lambda error, p=process: self._failed(p, error))
        self.processes.append(process)
        self._databases[id(process)] = db_url
        process.start()
        self.changed.emit(self.running)
        return process

    def stop_all(self, *, block: bool = True, grace_ms: int = STOP_GRACE_MS) -> None:
        """Ask every worker to stop (SIGTERM): each checkpoints its run and hands it back to the queue.

        A worker still running after ``grace_ms`` (a checkpoint of a large model
        takes seconds) is killed; its run is then requeued once its heartbeat is
        stale. ``block=False`` returns at once (the window stays responsive) and
        kills the stragglers from a timer; quitting blocks, since the process
        must not outlive its workers' grace.
        """
        alive = [p for p in self.processes if p.state() != QtCore.QProcess.ProcessState.NotRunning]
        for process in alive:
            process.terminate()
        if not block:
            QtCore.QTimer.singleShot(grace_ms, self, lambda: self._kill(alive))
            return
        for process in alive:
            if not process.waitForFinished(grace_ms):
                self._kill([process])
        self.changed.emit(self.running)

    def _kill(self, processes: list[QtCore.QProcess]) -> None:
        for process in processes:
            if process in self.processes and process.state() != QtCore.QProcess.ProcessState.NotRunning:
                self.output.emit(f"[worker {process.processId()}] did not stop in time; killed")
                process.kill()
                process.waitForFinished(1000)

    def _forward(self, process: QtCore.QProcess) -> None:
        """Emit complete lines; a line split across two reads is joined first."""
        text = self._partial.pop(id(process), "")
        text += bytes(process.readAllStandardOutput().data()).decode("utf-8", errors="replace")
        *lines, rest = text.replace("\r", "\n").split("\n")
        if rest:
            self._partial[id(process)] = rest
        for line in lines:
            if line.strip():
                self.output.emit(f"[worker {process.processId()}] {line}")

    def _finished(self, process: QtCore.QProcess, code: int) -> None:
        self._forward(process)
        rest = self._partial.pop(id(process), "")
        if rest.strip():
            self.output.emit(f"[worker] {rest}")
        self.output.emit(f"[worker] a worker exited with status {code}")
        self._forget(process)

    def _failed(self, process: QtCore.QProcess, error: QtCore.QProcess.ProcessError) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart:
            self.output.emit(f"[worker] could not start {process.program()}: {process.errorString()}")
            self._forget(process)

    def _forget(self, process: QtCore.QProcess) -> None:
        self.processes = [p for p in self.processes if p is not process]
        self._databases.pop(id(process), None)
        process.deleteLater()
        self.changed.emit(self.running)

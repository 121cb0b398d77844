"""Collect one attempt's provenance record in the worker (what :mod:`vocabulary.provenance` describes).

Collected here, in the shell, not in the engine: the engine already reports
every phase through its run-state protocol (:class:`engine.state.Progress`),
and the worker, which hears it, is the one place that also knows the device,
the attempt and the database. The engine thus stays free of storage.

The data a run read is learnt from Python's audit events (``open``, PEP 578)
rather than from each loader saying what it opened: every reader (our files,
``datasets``, the hub cache) goes through ``open``, so no loader can forget
to report. Audit hooks cannot be removed, so one hook is installed per
process and records only while an attempt is running. Files under Python's
own folders and the run's artifacts are not data and are left out. A file is
hashed (SHA-256) where that is cheap (up to :data:`HASHED_UP_TO` bytes); a
hub file's repository and revision are read from its cache path
(``…/datasets--org--name/snapshots/<revision>/…``).

Peak host memory is the process's high-water mark (``VmHWM``), reset at the
start of each attempt on Linux (``/proc/self/clear_refs``); elsewhere it is
the process's peak so far. Peak GPU memory is torch's peak allocation on
this process's device (rank 0's under torchrun).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import re
import resource
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from engine.state import Progress
from vocabulary.provenance import PACKAGES

#: Files up to this size are hashed (SHA-256 reads about 1 GB/s; larger corpora get their size only).
HASHED_UP_TO = 256 * 1024 * 1024
_HUB_PATH = re.compile(r"/(datasets|models)--([^/]+)/snapshots/([0-9a-f]{40})/")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_NOT_DATA_SUFFIXES = (".py", ".pyc", ".so", ".pth", ".lock")

_capture: "_Reads | None" = None
_hook_lock = threading.Lock()
_hook_installed = False


class _Reads:
    """The regular files opened for reading while an attempt runs, outside the excluded folders."""

    def __init__(self, excluded: Sequence[Path]):
        # Both spellings of each folder: a path is compared as opened (made absolute), not resolved.
        self._excluded = tuple({os.path.join(os.path.abspath(p), "") for p in excluded}
                               | {os.path.join(str(Path(p).resolve()), "") for p in excluded})
        self.paths: dict[str, None] = {}  # insertion-ordered set
        self._lock = threading.Lock()  # every thread's opens are heard, and the record reads them at the end

    def opened(self, path: object, mode: object, flags: object) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, (str, os.PathLike)):
            return  # a file descriptor
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return
        if mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS:
            return
        name = os.path.abspath(os.fspath(path))
        if name in self.paths or name.endswith(_NOT_DATA_SUFFIXES) or name.startswith(self._excluded):
            return
        with self._lock:
            self.paths[name] = None

    def files(self) -> list[str]:
        with self._lock:
            return list(self.paths)


def _audit(event: str, args: tuple) -> None:
    if event != "open":
        return
    reads = _capture
    if reads is not None and len(args) == 3:
        reads.opened(*args)


def _install_hook() -> None:
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True


def _python_folders() -> list[Path]:
    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()}
    folders |= {p for p in sys.path if p and "site-packages" in p}
    return [Path(p) for p in folders if p and Path(p).is_dir()] + [Path("/proc"), Path("/sys"), Path("/dev")]


class AttemptRecorder:
    """Times the phases of one attempt, watches what it reads and its memory, and writes the record at the end."""

    def __init__(self, attempt: int, device: str, world_size: int, excluded: Sequence[Path] = ()):
        self._attempt = attempt
        self._device = device
        self._world_size = world_size
        self._reads = _Reads([*_python_folders(), *excluded])
        self._phases: list[dict[str, Any]] = []
        self._started = _now()
        self._first: tuple[float, int] | None = None  # (time, count) of the current phase's first report

    def start(self) -> None:
        global _capture
        _install_hook()
        _reset_peak_rss()
        _reset_peak_gpu(self._device)
        self._started = _now()
        _capture = self._reads

    def report(self, progress: Progress) -> None:
        """Hear a progress report: a new phase closes the previous one; counts give the phase's rate."""
        now, clock = _now(), time.perf_counter()
        count = progress.step if progress.step is not None else progress.items
        current = self._phases[-1] if self._phases else None
        if current is None or current["phase"] != progress.phase:
            if current is not None:
                _close(current, now)
            current = {"phase": progress.phase, "start": now, "end": now, "seconds": 0.0, "done": None, "rate": None}
            self._phases.append(current)
            self._first = (clock, count) if count is not None else None
        elif count is not None and self._first is None:
            self._first = (clock, count)
        if count is not None:
            current["done"] = count
            if self._first is not None and clock > self._first[0] and count > self._first[1]:
                current["rate"] = (count - self._first[1]) / (clock - self._first[0])
        current["end"] = now

    def finish(self, outcome: str) -> dict[str, Any]:
        """Stop watching and return the attempt's record (JSON-ready)."""
        global _capture
        if _capture is self._reads:
            _capture = None
        finished = _now()
        if self._phases:
            _close(self._phases[-1], finished)
        for phase in self._phases:
            phase["start"], phase["end"] = _iso(phase["start"]), _iso(phase["end"])
        return {
            "attempt": self._attempt, "outcome": outcome, "started_at": _iso(self._started),
            "finished_at": _iso(finished), "software": software(self._device), "os": platform.platform(),
            "host": socket.gethostname(), "device": {"name": device_name(self._device), "count": self._world_size},
            "phases": self._phases, "peak_rss_mb": _peak_rss_mb(), "peak_gpu_mb": _peak_gpu_mb(self._device),
            "data": [describe_file(Path(p)) for p in self._reads.files() if Path(p).is_file()],
        }


def _close(phase: dict[str, Any], now: dt.datetime) -> None:
    phase["end"] = now
    phase["seconds"] = round((now - phase["start"]).total_seconds(), 3)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def describe_file(path: Path) -> dict[str, Any]:
    """The file's path, size, and SHA-256 where cheap; for a hub cache file its repository and revision."""
    stat = path.stat()
    entry: dict[str, Any] = {"file": str(path), "size": stat.st_size, "sha256": None, "kind": "file", "repo": None,
                             "revision": None}
    hub = _HUB_PATH.search(path.as_posix())
    if hub is not None:
        kind, repo, revision = hub.groups()
        entry.update(kind=f"hub {kind[:-1]}", repo=repo.replace("--", "/"), revision=revision)
    elif stat.st_size <= HASHED_UP_TO:
        entry["sha256"] = _sha256(str(path), stat.st_size, stat.st_mtime_ns)
    return entry


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """Cached by size and modification time: a worker's runs mostly read the same files, hashed once."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    commit = _commit()
    if commit:
        found["hybridscale_commit"] = commit
    found["python"] = platform.python_version()
    return found


def software(device: str) -> dict[str, str]:
    """Package versions, the hybridscale commit (``+dirty`` with uncommitted changes), Python, CUDA and cuDNN."""
    import torch

    found = dict(_versions())
    if device.startswith("cuda") and torch.cuda.is_available():
        found["cuda"] = torch.version.cuda or ""
        found["cudnn"] = str(torch.backends.cudnn.version())
    return found


def _commit() -> str | None:
    """The checkout's commit where hybridscale runs from one (an installed wheel has none)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.device(device))
    if device.startswith("mps"):
        return "Apple MPS"
    return f"cpu ({platform.processor() or platform.machine()})"


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: the peak is the process's so far


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _reset_peak_gpu(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats(torch.device(device))


def _peak_gpu_mb(device: str) -> float | None:
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return round(torch.cuda.max_memory_allocated(torch.device(device)) / 2**20, 1)
    return None

"""What a study reads beyond the shipped files, as the setup form says it: the hub files it will download and
how large they are, and the cheap checks of its local corpora.

Both answers are the engine's (which files a source reads, how a local
corpus must be laid out), and neither this layer nor the GUI imports the
engine: the shell hands the form an object that answers them
(:class:`StudyData`, built in :mod:`hybridscale.study_data`). Without one the
form says nothing about downloads.

Sizes need the hub, and a machine may be offline or behind a firewall that
drops packets, so the form never waits for them: :class:`SizeLookup` asks in
a daemon thread (never joined, so a hung request cannot hold the app open at
exit), keeps each answer per set of files, and after :data:`SIZE_WAIT_S`
without one the line says the size is unknown; a late answer still replaces it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Protocol, Sequence

from results.wording import plural
from vocabulary.config import StudyConfig

#: Seconds the form says "looking up" before it says the size is unknown.
SIZE_WAIT_S = 5.0
#: How the form tells a user to fetch the files (docs/commands.md has the command).
DOWNLOAD_COMMAND = "hybridscale data download STUDY.json --to DIR"


@dataclass(frozen=True)
class Download:
    """One hub file (or glob) a study reads: what it is part of in words (``ciral sw corpus``), its
    ``hf://`` URL, and the bytes and files it matched on the hub (None: not known)."""

    name: str
    url: str
    size: int | None = None
    files: int | None = None


class StudyData(Protocol):
    """The engine's answers about a study's data, for the setup form."""

    def downloads(self, study: StudyConfig) -> list[Download]:
        """The hub files the study's runs read, without sizes (no network)."""

    def with_sizes(self, downloads: Sequence[Download]) -> tuple[list[Download], str | None]:
        """The downloads with their sizes from the hub, or unchanged and why not (the hub's first line)."""

    def check(self, study: StudyConfig) -> None:
        """Raise ConfigError, naming the evaluation row, when a local corpus is in the wrong layout."""


@dataclass(frozen=True)
class Sizes:
    """The answer for one set of downloads: sized where known; ``missing``, in words, why they are not."""

    downloads: tuple[Download, ...]
    missing: str = ""
    #: The hub's own message when it could not be reached (for a tooltip; it can be long).
    detail: str = ""


class SizeLookup:
    """Sizes of sets of downloads, asked off the caller's thread and kept per set (they change rarely)."""

    def __init__(self, with_sizes: Callable[[Sequence[Download]], tuple[list[Download], str | None]],
                 wait_s: float = SIZE_WAIT_S) -> None:
        self._with_sizes = with_sizes
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._started: dict[tuple[str, ...], float] = {}
        #: URL set -> (URL -> (size, files), what is missing, the hub's message).
        self._answers: dict[tuple[str, ...], tuple[dict[str, tuple[int | None, int | None]], str, str]] = {}

    def sizes(self, downloads: Sequence[Download], arrived: Callable[[], None]) -> Sizes:
        """What is known of the sizes of ``downloads`` now. The first call for a set of URLs starts its lookup,
        and that call's ``arrived()`` is called, on the lookup's thread, once the answer is in."""
        key = tuple(d.url for d in downloads)
        with self._lock:
            answer = self._answers.get(key)
            started = self._started.get(key)
            if answer is None and started is None:
                started = self._started[key] = time.monotonic()
                threading.Thread(target=self._look_up, args=(key, tuple(downloads), arrived), daemon=True,
                                 name="hub sizes").start()
        if answer is not None:
            found, missing, detail = answer
            return Sizes(tuple(replace(d, size=found[d.url][0], files=found[d.url][1]) for d in downloads),
                         missing, detail)
        if time.monotonic() - started < self.wait_s:
            return Sizes(tuple(downloads), "looking up the size")
        return Sizes(tuple(downloads), f"size unknown: the hub did not answer within {self.wait_s:g} s")

    def _look_up(self, key: tuple[str, ...], downloads: tuple[Download, ...], arrived: Callable[[], None]) -> None:
        try:
            sized, unreachable = self._with_sizes(downloads)
        except Exception as exc:  # whatever the hub did, the form must stop saying "looking up"
            sized, unreachable = list(downloads), str(exc).split("\n")[0] or type(exc).__name__
        found = {d.url: (d.size, d.files) for d in sized}
        missing = "size unknown offline" if unreachable else ""
        with self._lock:
            self._answers[key] = (found, missing, unreachable or "")
        arrived()


def downloads_text(sizes: Sizes) -> str:
    """One line for the form: the downloads by what they belong to, their size, and how to fetch them ahead
    (empty when the study reads only shipped or local data)."""
    if not sizes.downloads:
        return ""
    groups: dict[str, int] = {}
    for download in sizes.downloads:
        groups[download.name] = groups.get(download.name, 0) + 1
    names = ", ".join(name if count == 1 else f"{name} ({count} files)" for name, count in groups.items())
    known = [d.size for d in sizes.downloads if d.size is not None]
    if sizes.missing:
        size = sizes.missing
    elif len(known) < len(sizes.downloads):
        size = "size unknown"
    else:
        size = f"{_bytes(sum(known))} in all"
    return (f"Downloads: {plural(len(sizes.downloads), 'hub file')} ({names}; {size}) — "
            f"'{DOWNLOAD_COMMAND}' fetches them ahead for machines without internet")


def _bytes(size: int) -> str:
    if size >= 1e9:
        return f"{size / 1e9:.1f} GB"
    if size >= 1e6:
        return f"{size / 1e6:.0f} MB"
    return f"{size / 1e3:.0f} kB"

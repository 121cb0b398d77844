"""Folders that are replaced whole or not at all: a model, a checkpoint, a converted model cache.

Each is written into a work folder beside its final name and then swapped
into place, so a crash or a full disk never leaves half a folder under the
final name: a reader sees the old folder or the new one. Work folders are
named ``.<name>.partial-XXXX`` so leftovers are recognisable, and the old
folder waits as ``.<name>.previous`` between the two renames of a swap.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def partial_prefix(target: Path) -> str:
    return f".{target.name}.partial-"


def new_work_folder(target: Path) -> Path:
    """An empty folder beside ``target`` (same filesystem, so renaming it into place is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=partial_prefix(target), dir=target.parent))


def _previous(target: Path) -> Path:
    return target.with_name(f".{target.name}.previous")


def swap_into_place(work: Path, target: Path) -> None:
    """Rename ``work`` to ``target``; an existing ``target`` is moved aside first, then deleted."""
    previous = _previous(target)
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    work.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


def recover_interrupted_swap(target: Path) -> None:
    """Put the old folder back when a swap was interrupted between its two renames."""
    previous = _previous(target)
    if not target.exists() and previous.exists():
        previous.rename(target)


@contextlib.contextmanager
def replaced_whole(target: Path) -> Iterator[Path]:
    """Yield a work folder; when the block succeeds it becomes ``target``, otherwise it is deleted."""
    work = new_work_folder(target)
    try:
        yield work
        swap_into_place(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)

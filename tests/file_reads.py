"""The files a block of code opens for reading, heard through Python's ``open`` audit events (numpy's, gzip's and
lzma's opens included): tests of reads that should happen once count them here instead of timing them."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

_LISTENING: list[list[Path]] = []  # an audit hook cannot be removed, so it hears only while a block listens


def _heard(event: str, args: tuple) -> None:
    if _LISTENING and event == "open" and isinstance(args[0], (str, os.PathLike)) and "r" in str(args[1] or "r"):
        _LISTENING[-1].append(Path(os.fspath(args[0])))


sys.addaudithook(_heard)


@contextlib.contextmanager
def reads() -> Iterator[list[Path]]:
    """The paths opened for reading inside the block, in order, one entry per open (as the code named them)."""
    _LISTENING.append([])
    try:
        yield _LISTENING[-1]
    finally:
        _LISTENING.pop()

"""Matrix files written whole and checked on read: an XXH3 checksum of every byte, taken while writing.

Two caches keep numpy matrices on disk between processes (the frozen-prefix
cache and the passage-embedding cache), and a damaged or cut-short file in
either must never change a number: it is found by its checksum and computed
again. The checksum is of the bytes written, taken from memory, so a file is
not read back after writing; it is written under a temporary name and renamed
only when whole. numpy's own ``np.save`` is not used: its write drops the
error of a failed write that fits its stdio buffer, leaving a short file
behind a successful save (a full disk).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import xxhash

#: Inserted before a file's suffix while it is being written.
PARTIAL = ".partial"
#: Bytes read at once when a file's checksum is computed.
_CHUNK = 8 * 2**20
#: How much older than its check a file's modification time must be for the check to be remembered. A file
#: rewritten within the file system's timestamp granularity of the check can keep its modification time (ext4
#: and tmpfs stamp at the kernel's clock tick, FAT at 2 s), so such a check is not trusted again.
_SETTLED_NS = 2 * 10**9

Written = TypeVar("Written")

#: Files this process read whole and found matching their checksum, by (path, inode, size, modification time):
#: a worker opens the same cache files for every run, and reading a 2 GiB cache again each time costs seconds.
#: A file changed since (rewritten, replaced, truncated) has another key and is read again.
_VERIFIED: dict[tuple[str, int, int, int], str] = {}


def file_checksum(path: Path) -> str:
    checksum = xxhash.xxh3_128()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            checksum.update(chunk)
    return checksum.hexdigest()


def matches_checksum(path: Path, checksum: str) -> bool:
    """Whether ``path`` holds bytes with XXH3 ``checksum``: read whole unless this process already found so."""
    before = os.stat(path)
    key = (str(path.resolve()), before.st_ino, before.st_size, before.st_mtime_ns)
    if _VERIFIED.get(key) == checksum:
        return True
    _VERIFIED.pop(key, None)
    if file_checksum(path) != checksum:
        return False
    if time.time_ns() - before.st_mtime_ns > _SETTLED_NS:
        _VERIFIED[key] = checksum
    return True


def save_matrix(path: Path, matrix: np.ndarray) -> str:
    """``matrix`` as a ``.npy`` file through Python's file writes; the XXH3 checksum of the bytes written."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(matrix))
    data = np.ascontiguousarray(matrix).data
    with path.open("wb") as stream:
        stream.write(header.getvalue())
        stream.write(data)
    checksum = xxhash.xxh3_128(header.getvalue())
    checksum.update(data)
    return checksum.hexdigest()


def write_atomically(path: Path, write: Callable[[Path], Written]) -> Written:
    """``write(partial_path)``, then rename it to ``path``; a failed write removes its partial file."""
    partial = path.with_name(path.stem + PARTIAL + path.suffix)
    try:
        written = write(partial)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written

"""Recognising a full disk, whichever library's write hit it, and saying how much room a write needed.

Python's own writes raise ``OSError(ENOSPC)``; safetensors (Rust) raises a
``SafetensorError`` whose text carries the OS error; Hugging Face's
``save_pretrained`` passes either through; numpy's ``tofile`` (hence
``np.save``) reports a short write, ``OSError("N requested and M written")``,
with no errno. :func:`is_disk_full` recognises them all (also along an
exception's cause chain), and :class:`DiskFullError` is what the checkpoint writer raises instead, with the size it tried to
write, so the queue worker can tell the user how much to free.
"""

from __future__ import annotations

import contextlib
import errno
import re
import shutil
from pathlib import Path
from typing import Iterator

#: EFBIG: a file size limit (``ulimit -f``) or the filesystem's largest file; as with a full disk, no write there fits.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: How the OS error reaches us through libraries that do not raise OSError (safetensors: "os error 28").
_FULL_TEXTS = ("no space left on device", f"os error {errno.ENOSPC}", "disk quota exceeded")
#: numpy's short write: a full disk (or a file size limit), the only cause of a write stopping early.
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
MB = 1024 * 1024


class DiskFullError(OSError):
    """A write failed for lack of space in ``path``'s filesystem; ``needed_bytes`` it tried to write."""

    def __init__(self, path: Path, needed_bytes: int | None = None):
        self.path = Path(path)
        self.needed_bytes = needed_bytes
        self.free_bytes = free_bytes(self.path)
        super().__init__(errno.ENOSPC, self.describe(), str(self.path))

    def describe(self) -> str:
        needed = "" if self.needed_bytes is None else f" for {self.needed_bytes / MB:.0f} MB"
        return f"no space left on {self.path}{needed} ({self.free_bytes / MB:.0f} MB free)"

    def __str__(self) -> str:
        return self.describe()

    @property
    def shortfall_mb(self) -> int | None:
        """Whole MB to free before the write fits (at least 1), or None when the size is not known."""
        if self.needed_bytes is None:
            return None
        return max(1, -(-(self.needed_bytes - self.free_bytes) // MB))


def free_bytes(path: Path) -> int:
    """Free space of the filesystem holding ``path`` (or its nearest existing parent); 0 if unknown."""
    for candidate in (Path(path), *Path(path).parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return 0
    return 0


def exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or during, most recent first."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) reports a full disk or an exhausted quota."""
    return any(
        (isinstance(e, OSError) and (e.errno in _FULL_ERRNOS or _SHORT_WRITE.fullmatch(str(e)) is not None))
        or any(text in str(e).lower() for text in _FULL_TEXTS)
        for e in exception_chain(exc)
    )


@contextlib.contextmanager
def disk_full_as_error(path: Path, needed_bytes: int | None = None) -> Iterator[None]:
    """Turn a full-disk failure of the block into a :class:`DiskFullError` for ``path``."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFullError(path, needed_bytes) from exc
        raise

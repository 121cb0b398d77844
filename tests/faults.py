"""Real faults for tests: a small filesystem that fills up, one made read-only, files that cannot be read.

Mounting needs root (and a kernel that lets this container mount tmpfs);
where that is refused the test skips, saying so, and its injected-fault
twin still runs. Permission bits do not stop root, so as root a command is
run without the capabilities that let it read and write any file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator, Sequence

import pytest


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "2m") -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size`` for the block; skip the test where mounting is not permitted."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root on Linux; the injected-fault variant covers this case")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the injected-fault variant covers it")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its filesystem is full; return the file (delete it to free the space)."""
    filler = folder / "filler"
    block = b"\0" * 65536
    with filler.open("wb") as stream:
        try:
            while True:
                stream.write(block)
                stream.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    with contextlib.suppress(OSError), filler.open("ab") as stream:  # the last partial block
        while True:
            stream.write(b"\0" * 512)
            stream.flush()
    return filler


def without_file_override(command: Sequence[str]) -> list[str]:
    """``command`` run so that permission bits bind it: as root, without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH."""
    if os.geteuid() != 0:
        return list(command)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("as root, permission bits only bind a command run without its capabilities (setpriv, util-linux)")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", *command]

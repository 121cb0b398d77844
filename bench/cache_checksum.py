"""What verifying a frozen-prefix cache part costs: reading and hashing it, per digest, against not checking.

A part is at most the cache's flush size (64 MiB) of float16 rows; a folder
holds at most 2 GiB of them, all read when a run opens the cache. This writes
one part-sized ``.npy`` to ``--dir`` and times, best of ``--repeat`` with the
file in the page cache: opening it memory-mapped (what a read costs without a
checksum), and reading plus hashing it with BLAKE2b (standard library), SHA-256
and, when the ``xxhash`` package is importable, XXH3-128.

    python bench/cache_checksum.py [--dir DIR] [--megabytes 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np


def _best(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def _digests() -> dict[str, Callable[[bytes], object]]:
    digests: dict[str, Callable[[bytes], object]] = {
        "blake2b (hashlib)": lambda data: hashlib.blake2b(data, digest_size=16).digest(),
        "sha256 (hashlib)": lambda data: hashlib.sha256(data).digest(),
    }
    try:
        import xxhash
    except ImportError:
        return digests
    digests["xxh3_128 (xxhash)"] = lambda data: xxhash.xxh3_128_digest(data)
    return digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to write the part (default: a temp folder)")
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        part = Path(folder) / "part.npy"
        rows = args.megabytes * 2**20 // (2 * 384)
        np.save(part, np.random.default_rng(0).standard_normal((rows, 384)).astype(np.float16))
        size = part.stat().st_size
        part.read_bytes()  # into the page cache
        mmap = _best(lambda: np.load(part, mmap_mode="r", allow_pickle=False), args.repeat)
        print(f"part: {size / 2**20:.0f} MiB; opening memory-mapped (no checksum): {mmap * 1e3:.2f} ms")
        for name, digest in _digests().items():
            seconds = _best(lambda: digest(part.read_bytes()), args.repeat)
            print(f"read + {name}: {seconds * 1e3:.1f} ms = {size / seconds / 2**30:.2f} GiB/s; "
                  f"a full 2 GiB cache: {2 * 2**30 / size * seconds:.1f} s")


if __name__ == "__main__":
    main()

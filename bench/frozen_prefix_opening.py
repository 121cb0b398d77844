"""What opening a frozen-prefix cache costs a worker's first run and its later runs (one process).

Writes ``--parts`` parts of 64 MiB (the cache's flush size) of float16 rows for
the tiny test model's frozen prefix into a temporary folder under ``--dir``,
dates them an hour back (parts an earlier process wrote), then times building a
:class:`engine.frozen_prefix.FrozenPrefix` over them ``--repeat`` times in this
process: the first reads every part whole for its checksum, the later ones trust
that check. Also prints the median time to flush (write) one part. The rows are
put in the pending list directly: computing 64 MiB of hidden states would
dominate the run and is not what is measured.

    PYTHONPATH=$PWD python bench/frozen_prefix_opening.py [--dir /tmp] [--parts 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.frozen_prefix import FrozenPrefix
from engine.loading import load_encoder

PART_BYTES = 64 * 2**20
ENTRIES_PER_PART = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    backbone = load_encoder("tiny:layers=3").backbone
    folder = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        prefix = FrozenPrefix(backbone, 2, folder)
        tokens = PART_BYTES // (ENTRIES_PER_PART * prefix.hidden_size * 2)
        flushes = []
        for part in range(args.parts):
            prefix._pending = [(hashlib.blake2b(f"{part}-{i}".encode(), digest_size=16).digest(),
                                np.full((tokens, prefix.hidden_size), i, dtype=np.float16))
                               for i in range(ENTRIES_PER_PART)]
            start = time.perf_counter()
            prefix.flush()
            flushes.append(time.perf_counter() - start)
        hour_ago = time.time_ns() - 3600 * 10**9
        for path in (folder / prefix.identity).glob("part-*.npy"):
            os.utime(path, ns=(hour_ago, hour_ago))
        openings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            FrozenPrefix(backbone, 2, folder)
            openings.append(time.perf_counter() - start)
        flush_ms = statistics.median(flushes) * 1000
        print(f"{args.parts} parts of {PART_BYTES // 2**20} MiB: flush median {flush_ms:.0f} ms; "
              f"opening the cache: {', '.join(f'{t * 1000:.0f}' for t in openings)} ms (first, then later runs)")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()

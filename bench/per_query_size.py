"""Database size of the per-query values: our packed rows vs a row per value, on the demo study.

Runs the demo study (its 10 runs, eval sets, languages and query subsets) with
the ``tiny:`` model and one training step per run: the number of per-query
values and of ranking lines depends on the eval sets only, not on the model,
so this measures the demo's storage in minutes instead of the demo's time.
Then it prints the SQLite file with and without the per-query values, the
same values stored one row per value (the peer: a plain tidy table with an
index on its cell, as one would write it first), and the size of the runs'
TREC files.

    python bench/per_query_size.py [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybridscale.demo import demo_study  # noqa: E402
from hybridscale.worker import WorkerOptions, run_worker  # noqa: E402
from storage import queue  # noqa: E402
from storage.db import open_db  # noqa: E402
from storage.queries import list_runs, per_query_values  # noqa: E402

_ROW_PER_VALUE = """
CREATE TABLE query_value (
    run_id VARCHAR(32) NOT NULL, eval_set VARCHAR(100) NOT NULL, setting VARCHAR(16) NOT NULL,
    query_language VARCHAR(16) NOT NULL, passage_language VARCHAR(16) NOT NULL, query_id TEXT NOT NULL,
    metric VARCHAR(64) NOT NULL, value FLOAT NOT NULL
);
CREATE INDEX ix_query_value_cell ON query_value (run_id, eval_set, setting, query_language, passage_language, metric);
"""


def _compact_size(path: Path) -> int:
    """The file's size after VACUUM, with the write-ahead log folded in (no WAL, no free pages)."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=DELETE")  # leaves WAL mode: the log is checkpointed and removed
    connection.execute("VACUUM")
    connection.close()
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder to keep the database in (default: a temporary one)")
    args = parser.parse_args(argv)
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="hs-size-"))
    study = demo_study()
    tiny = dataclasses.replace(study.template, model="tiny:", max_steps=1, trainable_layers=None)  # tiny: has 2 layers
    study = dataclasses.replace(study, template=tiny)
    db = open_db(folder / "hybridscale.db", artifacts_dir=folder / "artifacts")
    queue.submit_study(db, study)
    started = time.perf_counter()
    executed = run_worker(db, WorkerOptions(device="cpu", exit_when_empty=True))
    seconds = time.perf_counter() - started
    failed = [f"{r.id}: {r.error}" for r in list_runs(db) if r.status != "done"]
    if failed:
        raise SystemExit("runs did not finish, so the sizes would be wrong:\n" + "\n".join(failed))
    values = list(per_query_values(db))
    db.dispose()

    ours = folder / "hybridscale.db"
    with_values = _compact_size(ours)
    without = folder / "without.db"
    shutil.copy(ours, without)
    with sqlite3.connect(without) as connection:
        connection.execute("DELETE FROM query_values")
    without_values = _compact_size(without)
    peer = folder / "row-per-value.db"
    shutil.copy(without, peer)
    with sqlite3.connect(peer) as connection:
        connection.executescript(_ROW_PER_VALUE)
        connection.executemany(
            "INSERT INTO query_value VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(v["run_id"], v["eval_set"], v["setting"], v["query_language"], v["passage_language"], v["query_id"],
              v["metric"], v["value"]) for v in values],
        )
    peer_size = _compact_size(peer)
    run_files = sum(p.stat().st_size for p in (folder / "artifacts").rglob("*") if "eval" in p.parts and p.is_file())

    mib = 2**20
    print(f"demo study with tiny:, {executed} runs in {seconds:.0f} s; {len(values):,} per-query values")
    print(f"database without per-query values:   {without_values / mib:8.2f} MiB")
    print(f"database with them, packed (ours):   {with_values / mib:8.2f} MiB  "
          f"(+{(with_values - without_values) / mib:.2f} MiB, {(with_values - without_values) / len(values):.1f} B/value)")
    print(f"database with a row per value (peer): {peer_size / mib:8.2f} MiB  "
          f"(+{(peer_size - without_values) / mib:.2f} MiB, {(peer_size - without_values) / len(values):.1f} B/value)")
    print(f"ratio of the additions, ours / peer:  {(with_values - without_values) / (peer_size - without_values):.3f}")
    print(f"TREC run files and qrels (gzip), all runs: {run_files / mib:.2f} MiB ({run_files / executed / mib:.2f} per run)")
    if not args.out:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

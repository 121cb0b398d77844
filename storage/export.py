"""Tidy CSV exports: the metrics (one row per run x eval set x setting x languages x metric), the
per-query values behind them (one more column: the query), and the runs (one row per run, with what
produced it: :mod:`storage.provenance`).

Text cells are made spreadsheet-safe: a cell a spreadsheet would read as a
formula (it begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return,
the characters OWASP's CSV-injection advice lists) gets a leading single quote,
so a study named ``=HYPERLINK(...)`` is shown as text, not evaluated. Numbers are
written as numbers.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from storage.db import Database
from storage.provenance import RUN_COLUMNS, run_rows
from storage.queries import PER_QUERY_COLUMNS, TIDY_COLUMNS, per_query_values, tidy_metrics
from vocabulary.printable import escape_unprintable

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """``value`` as a CSV cell: empty for None, text that would start a formula quoted and its control characters
    escaped (:mod:`vocabulary.printable`), anything else as it is."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    return "'" + escape_unprintable(value) if value.startswith(_FORMULA_STARTS) else escape_unprintable(value)


def export_csv(db: Database, path: str | Path, study_id: int | None = None) -> int:
    """Write the tidy metrics table to ``path`` (atomically); return the number of data rows."""
    return _write_atomically(path, TIDY_COLUMNS, tidy_metrics(db, study_id))


def export_per_query_csv(db: Database, path: str | Path, study_id: int | None = None) -> int:
    """Write every stored per-query value to ``path`` (atomically, streamed); return the number of data rows.

    A cell's values average to its row in :func:`export_csv`; values keep
    every digit (Python's shortest round-trip form).
    """
    return _write_atomically(path, PER_QUERY_COLUMNS, per_query_values(db, study_id))


def export_runs_csv(db: Database, path: str | Path, study_id: int | None = None) -> int:
    """Write one row per run with its settings, state and latest provenance to ``path`` (atomically); return the
    number of rows."""
    return _write_atomically(path, RUN_COLUMNS, run_rows(db, study_id))


def _write_atomically(path: str | Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> int:
    """The folder must exist: a mistyped folder is an error, not a new folder somewhere."""
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target}: the folder {target.parent} does not exist; create it or choose another")
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    count = 0
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
                count += 1
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return count

"""Tidy CSV exports: the metrics (one row per run x eval set x setting x languages x metric) and the
per-query values behind them (one more column: the query)."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from storage.db import Database
from storage.queries import PER_QUERY_COLUMNS, TIDY_COLUMNS, per_query_values, tidy_metrics


def export_csv(db: Database, path: str | Path, study_id: int | None = None) -> int:
    """Write the tidy metrics table to ``path`` (atomically); return the number of data rows."""
    return _write_atomically(path, TIDY_COLUMNS, tidy_metrics(db, study_id))


def export_per_query_csv(db: Database, path: str | Path, study_id: int | None = None) -> int:
    """Write every stored per-query value to ``path`` (atomically, streamed); return the number of data rows.

    A cell's values average to its row in :func:`export_csv`; values keep
    every digit (Python's shortest round-trip form).
    """
    return _write_atomically(path, PER_QUERY_COLUMNS, per_query_values(db, study_id))


def _write_atomically(path: str | Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> int:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    count = 0
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
                count += 1
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return count

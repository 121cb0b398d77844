"""Tidy CSV export: one row per run x eval set x setting x languages x metric."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from storage.db import Database
from storage.queries import TIDY_COLUMNS, tidy_metrics


def export_csv(db: Database, path: str | Path, study_id: int | None = None) -> int:
    """Write the tidy metrics table to ``path`` (atomically); return the number of data rows."""
    rows = tidy_metrics(db, study_id)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=TIDY_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return len(rows)

"""The tidy metric rows both plot pages draw from, read and indexed off the UI thread.

One object holds them so the scaling and heatmap pages never query the
database twice for the same study, and both redraw when a run finishes.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore

from gui.background import Background
from gui.results import MetricTable
from storage.db import Database
from storage.queries import tidy_metrics


class MetricRows(QtCore.QObject):
    """``table``: :func:`storage.queries.tidy_metrics` of the chosen study (None: every study), indexed."""

    changed = QtCore.Signal()
    failed = QtCore.Signal(str)

    def __init__(self, db: Database, background: Background, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.db = db
        self.background = background
        self.study_id: int | None = None
        self.table = MetricTable()
        self._generation = 0

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.table.rows

    def set_database(self, db: Database) -> None:
        self.db = db
        self.study_id = None
        self.reload()

    def set_study(self, study_id: int | None) -> None:
        self.study_id = study_id
        self.reload()

    def reload(self) -> None:
        """Fetch the rows again; an answer overtaken by a newer request is dropped."""
        self._generation += 1
        generation, db, study_id = self._generation, self.db, self.study_id

        def loaded(table: MetricTable) -> None:
            if generation != self._generation:
                return
            old, self.table = self.table, table
            # Freeing tens of thousands of rows takes ~20 ms: let the background thread do it,
            # and let the pages redraw in a later turn of the event loop.
            self.background.submit(old.rows.clear, lambda _none: None)
            QtCore.QTimer.singleShot(0, self, self.changed.emit)

        def failed(error: BaseException) -> None:
            self.failed.emit(f"Could not read the metrics: {error}")

        self.background.submit(lambda: MetricTable(tidy_metrics(db, study_id)), loaded, failed)

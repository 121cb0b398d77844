"""What every page of the window shows from: the open database, the chosen study and its metric rows.

One object, no Qt (napari style; the whole :mod:`results` package is
Qt-free, an import contract says so): the pages observe it instead of each
holding a database handle, so opening another database or choosing a study
is one call here, and every page follows through its subscription. The pages
read through it alone (metric rows, runs, per-query findings and
drill-downs): the GUI never imports storage. Each
storage call runs through an injected executor with the interface of
:class:`gui.background.Background` (off the UI thread in the app, inline in
tests), so a query waiting on a busy SQLite file never blocks the window.
Every call reads the database and study current when it is made, and its
answer comes back in ``done`` or ``failed``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any, Callable, Collection, Protocol, Sequence, TypeVar

from analysis.findings import Findings
from results.latest import Latest
from results.per_query import QueryDetail, Side, compute_findings, query_detail, sides
from results.plot_data import MetricTable
from storage import queue
from storage.db import Database, display_url, open_db, url_without_password
from storage.export import export_csv
from storage.provenance import latest_provenance
from storage.queries import RunView, StudySummary, list_runs, list_studies, query_value_cells, run_events, tidy_metrics
from storage.queue import SubmitResult
from vocabulary.config import StudyConfig
from vocabulary.status import RunStatus

T = TypeVar("T")
Done = Callable[[T], None]
Failed = Callable[[BaseException], None]


def open_first_database(location: str | None, *, remembered: bool) -> Database:
    """The database the window opens with (None: the per-user default file).

    A ``remembered`` one (from the last session) that moved or broke falls
    back to the default, so it never locks the user out; one asked for
    explicitly fails with its own error.
    """
    try:
        return open_db(location)
    except Exception as error:
        if not remembered:
            raise
        print(f"hybridscale gui: could not reopen {location} ({error}); opening the default database", file=sys.stderr)
        return open_db(None)


class Executor(Protocol):
    """Runs ``function()`` elsewhere, then ``done(result)`` or ``failed(error)``, answers in submission order."""

    @property
    def busy(self) -> bool: ...

    def submit(self, function: Callable[[], Any], done: Callable[[Any], None], failed: Failed | None = None,
               owner: Any = None) -> None: ...


class Event:
    """Callbacks called in the order they subscribed, each time the model announces this change."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., None]] = []

    def connect(self, callback: Callable[..., None]) -> None:
        self._callbacks.append(callback)

    def emit(self, *args: object) -> None:
        for callback in list(self._callbacks):
            callback(*args)


def shown_location(location: str) -> str:
    """A database location fit for the screen: a URL with its password masked, a file path as it is."""
    return display_url(location) if "://" in location else location


class AppModel:
    """The open database, the chosen study (None: every study) and the metric rows of that choice.

    Events: ``database_changed(previous_url)``, ``study_changed()``,
    ``metrics_changed()`` (``metrics`` holds new rows) and ``message(text)``
    (a background read failed; the window's status bar shows it).
    """

    def __init__(self, db: Database, executor: Executor):
        self.db = db
        self.executor = executor
        self.study_id: int | None = None
        self.metrics = MetricTable()
        self.database_changed = Event()
        self.study_changed = Event()
        self.metrics_changed = Event()
        self.message = Event()
        self._metrics_requests = Latest()

    # ---- the database and the study ---------------------------------------------------------
    @property
    def url(self) -> str:
        """The full URL (workers started from the window need it, password included)."""
        return self.db.url

    @property
    def shown_url(self) -> str:
        return display_url(self.db.url)

    @property
    def remembered_url(self) -> str:
        """The URL for a settings file: drivers find the password again in .pgpass / PGPASSWORD."""
        return url_without_password(self.db.url)

    @property
    def busy(self) -> bool:
        return self.executor.busy

    def set_database(self, db: Database) -> None:
        """Switch to ``db`` with every study shown; the previous handle is closed."""
        previous, self.db = self.db, db
        self.study_id = None
        self.reload_metrics()
        self.database_changed.emit(previous.url)
        if previous is not db:
            previous.dispose()

    def open_database(self, location: str, done: Callable[[], None], failed: Failed) -> None:
        """Open ``location`` in the background (a server may be slow to answer), then switch to it.

        On any driver or schema error the current database stays open.
        """
        def opened(db: Database) -> None:
            self.set_database(db)
            done()

        self.executor.submit(lambda: open_db(location), opened, failed)

    def set_study(self, study_id: int | None) -> None:
        self.study_id = study_id
        self.reload_metrics()
        self.study_changed.emit()

    # ---- reads ------------------------------------------------------------------------------
    def _run(self, query: Callable[[Database], T], done: Done[T], failed: Failed | None, owner: Any = None) -> None:
        db = self.db  # the database of the request, even if another is opened before it runs
        self.executor.submit(lambda: query(db), done, failed, owner)

    def list_studies(self, done: Done[list[StudySummary]], failed: Failed) -> None:
        self._run(list_studies, done, failed)

    def poll_runs(self, changed_since: dt.datetime | None, done: Done[list[RunView]], failed: Failed) -> None:
        """The chosen study's runs changed since ``changed_since`` (None: all of them)."""
        study_id = self.study_id
        self._run(lambda db: list_runs(db, study_id, changed_since=changed_since), done, failed)

    def run_events(self, run_id: str, done: Done[list[tuple]], failed: Failed, owner: Any = None) -> None:
        """The run's journal; with an ``owner`` (a dialog) the answer is dropped once it is deleted."""
        self._run(lambda db: run_events(db, run_id), done, failed, owner)

    def reload_metrics(self) -> None:
        """Read the chosen study's metric rows again; an answer overtaken by a newer request is dropped."""
        if_latest, study_id = self._metrics_requests.request(), self.study_id

        def loaded(table: MetricTable) -> None:
            old, self.metrics = self.metrics, table
            # Freeing tens of thousands of rows is slow: the background thread does it.
            self.executor.submit(old.rows.clear, lambda _none: None)
            self.metrics_changed.emit()

        def failed(error: BaseException) -> None:
            self.message.emit(f"Could not read the metrics: {error}")

        self._run(lambda db: MetricTable(tidy_metrics(db, study_id)), if_latest(loaded), failed)

    # ---- writes -----------------------------------------------------------------------------
    def submit_study(self, study: StudyConfig, done: Done[SubmitResult], failed: Failed) -> None:
        self._run(lambda db: queue.submit_study(db, study), done, failed)

    def cancel_runs(self, run_ids: list[str], done: Done[list[RunStatus]], failed: Failed) -> None:
        """Each run's status afterwards: cancelled, or still running until its worker hears the request."""
        self._run(lambda db: [queue.cancel(db, run_id) for run_id in run_ids], done, failed)

    def retry_runs(self, run_ids: list[str], done: Done[list[bool]], failed: Failed) -> None:
        """Whether each run was queued again (only failed and cancelled runs are)."""
        self._run(lambda db: [queue.retry(db, run_id) for run_id in run_ids], done, failed)

    def findings(self, eval_set: str, setting: str, passage_language: str, metric: str,
                 query_languages: tuple[str, ...], done: Done[Findings | None], failed: Failed) -> None:
        """The chosen study's findings of one view (None: no per-query values stored for it)."""
        study_id = self.study_id
        self._run(lambda db: compute_findings(db, study_id, eval_set, setting, passage_language, metric,
                                              query_languages), done, failed)

    def per_query_sides(self, eval_set: str, setting: str, query_language: str, passage_language: str, metric: str,
                        done: Done[dict[tuple[str, int], Side]], failed: Failed) -> None:
        """Every series' side (per-query values averaged over its seeds) at every size of one cell and metric."""
        study_id = self.study_id

        def read(db: Database) -> dict[tuple[str, int], Side]:
            cells = query_value_cells(db, study_id, eval_set=eval_set, setting=setting, metric=metric)
            return sides(cells, query_language, passage_language)

        self._run(read, done, failed)

    def provenance(self, run_ids: Collection[str] | None, done: Done[dict[str, dict[str, Any]]], failed: Failed) -> None:
        """Run id -> its latest provenance record, for ``run_ids`` (None: every run of the chosen study).

        Runs stored before records were kept, and runs not yet ended, have none.
        """
        study_id, wanted = self.study_id, None if run_ids is None else set(run_ids)

        def read(db: Database) -> dict[str, dict[str, Any]]:
            records = latest_provenance(db, study_id)
            return records if wanted is None else {k: v for k, v in records.items() if k in wanted}

        self._run(read, done, failed)

    def query_detail(self, eval_set: str, setting: str, query_language: str, passage_language: str, query_id: str,
                     shown: Sequence[tuple[str, str]], done: Done[QueryDetail], failed: Failed) -> None:
        """One query's text, judgements and each shown run's top passages, from the runs' files."""
        self._run(lambda db: query_detail(db.artifacts_dir, eval_set, setting, query_language, passage_language,
                                          query_id, shown), done, failed)

    def export_csv(self, path: Path, done: Done[int], failed: Failed) -> None:
        """Write the chosen study's tidy report; ``done`` gets the number of rows written."""
        study_id = self.study_id
        self._run(lambda db: export_csv(db, path, study_id=study_id), done, failed)

"""The app model without Qt: an executor that answers inline (or when told), a real SQLite file."""

from __future__ import annotations

import csv
import dataclasses
from typing import Any, Callable

import pytest

from results.app_model import AppModel
from storage import queue
from storage.db import open_db
from storage.queries import list_runs, tidy_metrics
from tests.storage.studies import grid_study
from vocabulary.status import RunStatus


class Inline:
    """Runs each function at once and answers before ``submit`` returns."""

    busy = False

    def submit(self, function: Callable[[], Any], done: Callable[[Any], None],
               failed: Callable[[BaseException], None] | None = None, owner: Any = None) -> None:
        try:
            result = function()
        except Exception as error:
            if failed is None:
                raise
            failed(error)
            return
        done(result)


class Held(Inline):
    """Keeps every request until :meth:`answer_all`, which answers them in submission order."""

    def __init__(self) -> None:
        self.pending: list[tuple] = []

    @property
    def busy(self) -> bool:
        return bool(self.pending)

    def submit(self, function, done, failed=None, owner=None) -> None:
        self.pending.append((function, done, failed, owner))

    def answer_all(self) -> None:
        while self.pending:
            super().submit(*self.pending.pop(0))


class Calls:
    """A subscriber that counts how often, and with what, it was called."""

    def __init__(self) -> None:
        self.args: list[tuple] = []

    def __call__(self, *args: object) -> None:
        self.args.append(args)


def subscribed(model: AppModel) -> dict[str, Calls]:
    calls = {name: Calls() for name in ("database", "study", "metrics", "message")}
    model.database_changed.connect(calls["database"])
    model.study_changed.connect(calls["study"])
    model.metrics_changed.connect(calls["metrics"])
    model.message.connect(calls["message"])
    return calls


def test_set_database_notifies_every_subscriber_once_and_shows_every_study(seeded, tmp_path):
    db, _study, study_id = seeded
    model = AppModel(db, Inline())
    model.set_study(study_id)
    first, second = subscribed(model), subscribed(model)
    other = open_db(tmp_path / "other.db")
    previous_url = db.url
    model.set_database(other)
    for calls in (first, second):
        assert calls["database"].args == [(previous_url,)]
        assert len(calls["metrics"].args) == 1 and not calls["study"].args and not calls["message"].args
    assert model.db is other and model.study_id is None and len(model.metrics) == 0
    other.dispose()


def test_a_metrics_answer_overtaken_by_a_newer_request_is_dropped(seeded):
    db, _study, study_id = seeded
    executor = Held()
    model = AppModel(db, executor)
    calls = subscribed(model)
    model.set_study(study_id)
    model.set_study(None)  # asked before the first answer came
    assert not calls["metrics"].args and executor.busy
    executor.answer_all()
    assert len(calls["metrics"].args) == 1 and calls["study"].args == [(), ()]
    assert len(model.metrics) == len(tidy_metrics(db))


def test_the_study_choice_filters_runs_metrics_and_the_csv_report(seeded, tmp_path):
    db, study, study_id = seeded
    smaller = dataclasses.replace(study, name="only hybrid", strategies=("hybrid",), train_sizes=(16,), seeds=(0,),
                                  include_baseline=False)
    other = queue.submit_study(db, smaller)
    model = AppModel(db, Inline())
    polled: list[list] = []
    model.set_study(other.study_id)
    model.poll_runs(None, polled.append, pytest.fail)
    assert [r.id for r in polled[0]] == list(other.reused)
    assert {row["run_id"] for row in model.metrics.rows} == set(other.reused)
    written: list[int] = []
    model.export_csv(tmp_path / "report.csv", written.append, pytest.fail)
    with (tmp_path / "report.csv").open(newline="") as stream:
        assert {row["run_id"] for row in csv.DictReader(stream)} == set(other.reused)
    assert written == [len(tidy_metrics(db, other.study_id))]
    model.set_study(None)
    model.poll_runs(None, polled.append, pytest.fail)
    assert len(polled[1]) == len(list_runs(db)) == 13
    studies: list[list] = []
    model.list_studies(studies.append, pytest.fail)
    assert [s.id for s in studies[0]] == [study_id, other.study_id]


def test_submit_cancel_retry_and_the_run_journal(empty_db):
    model = AppModel(empty_db, Inline())
    answers: list[Any] = []
    model.submit_study(grid_study(sizes=(2,), seeds=(0,)), answers.append, pytest.fail)
    submitted = answers.pop()
    running = queue.claim_next(empty_db, "w1")
    waiting = next(run_id for run_id in submitted.queued if run_id != running.id)
    model.cancel_runs([waiting, running.id], answers.append, pytest.fail)
    assert answers.pop() == [RunStatus.CANCELLED, RunStatus.RUNNING]
    model.retry_runs([waiting, running.id], answers.append, pytest.fail)
    assert answers.pop() == [True, False]
    model.run_events(waiting, answers.append, pytest.fail)
    assert [kind for _time, kind, _message in answers.pop()] == ["cancelled", "retried"]
    errors: list[BaseException] = []
    model.cancel_runs(["no-such-run"], pytest.fail, errors.append)
    assert isinstance(errors[0], KeyError)


def test_a_database_that_cannot_be_opened_leaves_the_current_one(seeded, tmp_path):
    db = seeded[0]
    model = AppModel(db, Inline())
    calls = subscribed(model)
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    errors: list[BaseException] = []
    model.open_database(str(bad), pytest.fail, errors.append)
    assert "is not a SQLite database" in str(errors[0]) and model.db is db and not calls["database"].args
    opened: list[bool] = []
    model.open_database(str(tmp_path / "fresh.db"), lambda: opened.append(True), pytest.fail)
    assert opened == [True] and str(tmp_path / "fresh.db") in model.url and calls["database"].args == [(db.url,)]
    assert "fresh.db" in model.shown_url and model.remembered_url == model.url
    model.db.dispose()


def test_a_failed_metrics_read_is_announced_as_a_message(seeded, monkeypatch):
    def locked(_db, _study_id):
        raise OSError("database is locked")

    monkeypatch.setattr("results.app_model.tidy_metrics", locked)
    model = AppModel(seeded[0], Inline())
    calls = subscribed(model)
    model.reload_metrics()
    assert calls["message"].args == [("Could not read the metrics: database is locked",)] and not calls["metrics"].args

"""The queue page on a real SQLite file: it follows the database, and its buttons write to it."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets

from gui.queue_view import QueueView
from results.runs import COLUMNS
from storage import queue
from storage.db import open_db
from storage.queries import list_runs
from tests.gui.conftest import show_page
from tests.storage.studies import grid_study

STATUS = [c.title for c in COLUMNS].index("Status")
PROGRESS = [c.title for c in COLUMNS].index("Progress")
LOSS = [c.title for c in COLUMNS].index("Loss")


@pytest.fixture()
def page(qtbot, app_model):
    view = show_page(qtbot, QueueView(app_model), 1300, 600)
    view.start_polling()
    yield view
    view.timer.stop()


def cell(view: QueueView, row: int, column: int) -> str:
    return view.model.data(view.model.index(row, column))


def row_of(view: QueueView, run_id: str) -> int:
    return next(i for i, run in enumerate(view.model.table.runs) if run.id == run_id)


def select(view: QueueView, run_id: str) -> None:
    view.view.clearSelection()
    view.view.selectRow(row_of(view, run_id))


def test_the_table_follows_the_database_as_runs_change(qtbot, page):
    db = page.app_model.db
    submitted = queue.submit_study(db, grid_study(sizes=(2, 3), seeds=(0,)))
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=5000)
    assert [cell(page, r, STATUS) for r in range(4)] == ["queued"] * 4

    claimed = queue.claim_next(db, "w1")
    assert claimed.id == submitted.queued[0]
    queue.heartbeat(db, claimed.id, "w1", progress=0.4, phase="training", step=4, total_steps=10, loss=1.2345)
    row = row_of(page, claimed.id)
    qtbot.waitUntil(lambda: cell(page, row, STATUS) == "running", timeout=5000)
    qtbot.waitUntil(lambda: cell(page, row, LOSS) == "1.2345", timeout=5000)
    assert cell(page, row, PROGRESS) == "40%"
    assert page.model.data(page.model.index(row, PROGRESS), QtCore.Qt.ItemDataRole.UserRole) == pytest.approx(0.4)

    queue.complete(db, claimed.id, "w1", [])
    qtbot.waitUntil(lambda: cell(page, row, STATUS) == "done", timeout=5000)
    assert page.counts.text() == "1 done, 3 queued"


def test_cancel_from_the_gui_marks_queued_runs_cancelled_and_asks_running_ones_to_stop(qtbot, page):
    db = page.app_model.db
    submitted = queue.submit_study(db, grid_study(sizes=(2, 3), seeds=(0,)))
    running = queue.claim_next(db, "w1")
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=5000)
    waiting = submitted.queued[1]

    select(page, waiting)
    qtbot.mouseClick(page.cancel_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: cell(page, row_of(page, waiting), STATUS) == "cancelled", timeout=5000)
    assert {r.id: r.status for r in list_runs(db)}[waiting] == "cancelled"

    select(page, running.id)
    page.cancel_selected()
    qtbot.waitUntil(lambda: cell(page, row_of(page, running.id), STATUS) == "running (cancelling)", timeout=5000)
    assert queue.heartbeat(db, running.id, "w1") is True  # the worker hears it on its next heartbeat

    select(page, waiting)
    page.retry_selected()
    qtbot.waitUntil(lambda: cell(page, row_of(page, waiting), STATUS) == "queued", timeout=5000)


def test_copy_table_and_the_run_log(qtbot, page, tmp_path):
    db = page.app_model.db
    queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,)))
    claimed = queue.claim_next(db, "w1")
    log_file = tmp_path / "run.log"
    log_file.write_text("step 1 loss 2.0\n")
    queue.set_log_path(db, claimed.id, str(log_file))
    queue.fail(db, claimed.id, "w1", "DataError: flores: no such language 'xx' (details in the run log)")
    qtbot.waitUntil(lambda: page.model.rowCount() == 2 and "failed" in page.counts.text(), timeout=5000)

    page.copy_table()
    text = QtWidgets.QApplication.clipboard().text()
    lines = text.splitlines()
    assert lines[0].split("\t")[:3] == ["Run", "Status", "Progress"] and len(lines) == 3
    assert "DataError: flores: no such language 'xx'" in text

    select(page, claimed.id)
    dialog = page.show_log()  # deletes itself when closed, so qtbot does not own it
    qtbot.waitUntil(lambda: dialog.events.rowCount() >= 2, timeout=5000)
    kinds = [dialog.events.item(r, 1).text() for r in range(dialog.events.rowCount())]
    assert kinds == ["claimed", "failed"]
    assert "step 1 loss 2.0" in dialog.log.toPlainText()
    with log_file.open("a") as stream:
        stream.write("step 2 loss 1.5\n")
    dialog.refresh()
    assert "step 2 loss 1.5" in dialog.log.toPlainText()  # followed like tail -f
    dialog.close()


def test_the_study_filter_and_switching_databases(qtbot, page, tmp_path):
    db = page.app_model.db
    first = queue.submit_study(db, grid_study("a", sizes=(2,), seeds=(0,)))
    second = queue.submit_study(db, grid_study("b", sizes=(3, 4), seeds=(0,)))
    qtbot.waitUntil(lambda: page.model.rowCount() == 6, timeout=5000)
    page.app_model.set_study(second.study_id)
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=5000)
    assert {r.id for r in page.model.table.runs} == set(second.queued)
    page.app_model.set_study(first.study_id)
    qtbot.waitUntil(lambda: {r.id for r in page.model.table.runs} == set(first.queued), timeout=5000)

    other = open_db(tmp_path / "other.db")
    page.app_model.set_database(other)
    qtbot.waitUntil(lambda: page.model.rowCount() == 0, timeout=5000)
    queue.submit_study(other, grid_study("c", sizes=(9,), seeds=(0,)))
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=5000)
    other.dispose()

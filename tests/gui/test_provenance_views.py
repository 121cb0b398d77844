"""The GUI shows provenance records: in a finished run's row tooltips on the queue page and in the drill-down
heading's tooltip (real SQLite, records stored as a worker stores them)."""

from __future__ import annotations

from PySide6 import QtCore

from gui.drill_down import DrillDownPanel
from gui.queue_view import QueueView
from results.app_model import AppModel
from storage import queue
from storage.provenance import record_provenance
from storage.queries import list_runs
from tests.gui.conftest import show_page
from tests.gui.per_query_seed import EVAL_SET, per_query_study
from tests.storage.studies import grid_study


def _record(torch: str, device: str) -> dict:
    return {"attempt": 1, "outcome": "done", "host": "node7",
            "software": {"hybridscale": "0.1.0", "torch": torch, "transformers": "4.46.0", "python": "3.11.7"},
            "device": {"name": device, "count": 1},
            "phases": [{"phase": "training", "seconds": 20.0, "done": 50, "rate": 2.5},
                       {"phase": "evaluating flores/test: encoding passages", "seconds": 4.0, "done": 1000,
                        "rate": 250.0}],
            "peak_rss_mb": 1500.0, "peak_gpu_mb": None, "data": []}


def test_a_finished_runs_row_tooltip_shows_its_record(qtbot, app_model):
    page = show_page(qtbot, QueueView(app_model), 1300, 600)
    db = app_model.db
    submitted = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,)))
    claimed = queue.claim_next(db, "w")
    queue.complete(db, claimed.id, "w", [])
    record_provenance(db, claimed.id, 1, _record("2.5.1", "NVIDIA L4"))
    page.start_polling()
    try:
        qtbot.waitUntil(lambda: claimed.id in page.model.provenance, timeout=5000)
        row = next(i for i, run in enumerate(page.model.table.runs) if run.id == claimed.id)
        tip = page.model.data(page.model.index(row, 0), QtCore.Qt.ItemDataRole.ToolTipRole)
        assert "torch 2.5.1" in tip and "1 × NVIDIA L4 on node7" in tip
        assert "2.5 steps/s, 250 passages/s" in tip
        queued = next(i for i, run in enumerate(page.model.table.runs) if run.id != claimed.id)
        assert "torch" not in page.model.data(page.model.index(queued, 0), QtCore.Qt.ItemDataRole.ToolTipRole)
        assert len(list_runs(db)) == len(submitted.queued)
    finally:
        page.timer.stop()


def test_the_drill_down_tooltip_says_what_produced_each_side(qtbot, tmp_path, background):
    db, study_id = per_query_study(tmp_path / "study.db", gain=True)
    hybrid = [r.id for r in list_runs(db, study_id) if r.strategy == "hybrid" and r.train_size == 16]
    cross = [r.id for r in list_runs(db, study_id) if r.strategy == "cross" and r.train_size == 16]
    record_provenance(db, hybrid[0], 1, _record("2.5.1", "NVIDIA L4"))
    record_provenance(db, hybrid[1], 1, _record("2.6.0", "NVIDIA L4"))
    for run_id in cross:
        record_provenance(db, run_id, 1, _record("2.5.1", "NVIDIA L4"))
    model = AppModel(db, background)
    model.set_study(study_id)
    panel = show_page(qtbot, DrillDownPanel(model), 1200, 500)
    try:
        panel.open(EVAL_SET, "cross", "yo", "en", "nDCG@10", "hybrid α=0.5", 16)
        qtbot.waitUntil(lambda: len(panel.shown) > 0, timeout=10_000)
        tip = panel.heading.toolTip()
        a, b = tip.split("\n\n")
        assert a.startswith("A = hybrid α=0.5 (n=16): all 2 runs on transformers 4.46.0, 1 × NVIDIA L4; "
                            "they differ in torch (") and "run " in a
        assert b.startswith("B = cross (n=16): all 2 runs on torch 2.5.1, transformers 4.46.0, 1 × NVIDIA L4")
    finally:
        db.dispose()

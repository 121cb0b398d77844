"""End to end through the window: submit from the form, a real worker process trains, plots appear, cancel works."""

from __future__ import annotations

from PySide6 import QtCore

from storage.db import open_db
from storage.queries import list_runs
from tests.gui.conftest import make_window

WORKER_TIMEOUT_MS = 180_000


def set_up_tiny_study(form, name: str, steps: int) -> None:
    """A study the tiny random encoder finishes in seconds: one strategy, one size, the baseline."""
    form.name.setText(name)
    form.model_kind.setCurrentIndex(form.model_kind.findData("hub"))
    form.model_value.setText("tiny:")
    form.train_languages.set_checked(("de", "en", "es"))
    for strategy, box in form.strategy_boxes.items():
        box.setChecked(strategy == "mono")
    form.train_sizes.setText("8")
    form.seeds.setText("0")
    for row in form.eval_rows:
        row.use.setChecked(row.dataset == "flores")
        if row.dataset == "flores":
            row.languages.set_checked(("en", "sw", "yo"))
            row.max_queries.setValue(8)
    form.fields["budget"].widget.setCurrentText("steps")
    for name_, value in (("batch_size", 4), ("max_length", 32), ("steps", steps), ("checkpoint_every", 1)):
        form.fields[name_].widget.setValue(value)
    form.fields["learning_rate"].widget.setText("1e-3")
    form.device.setCurrentText("cpu")
    form.start_worker.setChecked(True)


def test_submit_train_plot_and_cancel_with_a_real_worker(qtbot, tmp_path, settings):
    db = open_db(tmp_path / "live.db")
    window = make_window(qtbot, db, settings)
    try:
        set_up_tiny_study(window.setup, "live", steps=3)
        assert window.setup.validate() is not None
        qtbot.mouseClick(window.setup.submit_button, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.queue.workers.running == 1, timeout=10_000)
        assert window.tabs.currentWidget() is window.queue
        qtbot.waitUntil(lambda: [r.status for r in list_runs(db)] == ["done", "done"], timeout=WORKER_TIMEOUT_MS)
        # The finished runs reach the plots without any click: untrained baseline + one mono point per language,
        # its legend naming the budget.
        def plotted() -> bool:
            drawn = window.scaling.drawn
            return set(drawn) == {"sw", "yo"} and all(list(d.curves) == ["mono (3 steps)"] for _p, d in drawn.values())

        window.tabs.setCurrentWidget(window.scaling)
        qtbot.waitUntil(plotted, timeout=10_000)
        assert all(len(d.baselines) == 1 for _p, d in window.scaling.drawn.values())

        # A run that would train for hours, cancelled from the queue page while the worker holds it.
        set_up_tiny_study(window.setup, "long", steps=1_000_000)
        window.setup.submit()
        qtbot.waitUntil(lambda: any(r.status == "running" and r.step > 0 for r in list_runs(db)), timeout=WORKER_TIMEOUT_MS)
        qtbot.waitUntil(lambda: any(r.status == "running" for r in window.queue.model.table.runs), timeout=10_000)
        row = next(i for i, r in enumerate(window.queue.model.table.runs) if r.status == "running")
        window.queue.view.selectRow(row)
        qtbot.mouseClick(window.queue.cancel_button, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "cancelled" in [r.status for r in list_runs(db)], timeout=60_000)
        assert window.queue.workers.running == 1  # the worker survives a cancel and waits for more work
        assert "[worker" in window.queue.worker_output.toPlainText()
    finally:
        window.queue.workers.stop_all()
        db.dispose()

"""The scaling and heatmap pages drawn from a database of known metrics, and every export."""

from __future__ import annotations

import csv
import math
import statistics

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtGui, QtWidgets

from storage.queries import TIDY_COLUMNS, tidy_metrics
from tests.gui.conftest import grab, make_window, svg_text
from tests.gui.seed import SEEDS, SIZES, mean_rank, ndcg


def test_scaling_page_draws_one_panel_per_language_and_one_curve_per_strategy(window, seeded):
    _db, study, _ = seeded
    page = window.scaling
    window.tabs.setCurrentWidget(page)
    assert page.choices.chosen() == ("flores/test", "cross", "en", "nDCG@10")
    assert page.choices.languages.checked() == ("sw", "yo")
    assert list(page.drawn) == ["sw", "yo"]
    runs = {(r.strategy, r.train_size, r.seed): r for r in study.expand() if r.is_training}
    for language, (plot, drawn) in page.drawn.items():
        assert list(drawn.curves) == ["mono", "cross", "hybrid α=0.5"]
        for (label, curve), strategy in zip(drawn.curves.items(), ("mono", "cross", "hybrid")):
            x, y = curve.getData()
            assert np.allclose(10 ** x, SIZES)  # log-scaled x axis, ticks labelled with real sizes
            expected = [statistics.mean(ndcg(runs[(strategy, size, s)], language) for s in SEEDS) for size in SIZES]
            assert np.allclose(y, expected)
            assert label in drawn.bands  # two seeds: a shaded band
            tips = [p.data() for p in drawn.points[label].points()]
            assert all(runs[(strategy, SIZES[0], s)].run_id in tips[0] for s in SEEDS)
        (baseline,) = drawn.baselines.values()
        assert baseline.value() == pytest.approx(0.30 if language == "sw" else 0.20)
        low, high = plot.viewRange()[1]
        assert low < 0.20 and high > 0.62  # one shared y range shows every line, baselines included
        axis = plot.getAxis("left")
        behind = QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent
        assert axis.grid is not False and axis.flags() & behind  # a grid, painted before (under) the curves
        assert plot.getAxis("left").labelText == "nDCG@10"
    grab(window, window.app_model.db.artifacts_dir.parent / "scaling_page.png")


def test_scaling_page_controls_change_what_is_drawn(qtbot, window):
    page = window.scaling
    window.tabs.setCurrentWidget(page)
    page.band.setCurrentIndex(1)  # ±sd
    plot, drawn = page.drawn["sw"]
    band = drawn.bands["mono"]
    low_edge = band.curves[0].getData()[1]
    mean = drawn.curves["mono"].getData()[1]
    assert np.allclose(mean - low_edge, 0.02 / math.sqrt(2))  # sample sd of two seeds 0.02 apart
    page.choices.languages.set_checked(("yo",))
    assert list(page.drawn) == ["yo"]
    page.choices.languages.set_checked(())
    assert not page.has_plot and "Tick at least one query language" in page.empty.text()
    page.choices.languages.set_checked(("sw", "yo"))
    page.choices.setting.setCurrentIndex(page.choices.setting.findData("multi"))
    # The multilingual pool holds MeanRank per passage language; the English choice is kept.
    assert (page.choices.passages.currentData(), page.choices.metric.currentData()) == ("en", "MeanRank")
    assert page.has_plot and page.plot_title() == "MeanRank on flores/test, multi setting, searching English passages"
    plot, drawn = page.drawn["sw"]
    assert plot.getAxis("left").labelText == "MeanRank (lower is better)"


def test_heatmap_page_matrix_equals_the_stored_values(window, seeded):
    _db, study, _ = seeded
    page = window.heatmaps
    window.tabs.setCurrentWidget(page)
    assert page.metric.currentData() == "MeanRank"
    left, right = page.shown_choices()
    assert (left.label, left.train_size) == ("untrained tiny:", 0)
    assert (right.label, right.train_size) == ("hybrid α=0.5", 64)
    untrained, hybrid = page.maps
    baseline = next(r for r in study.expand() if not r.is_training)
    runs = [r for r in study.expand() if r.strategy == "hybrid" and r.train_size == 64]
    for i, x in enumerate(untrained.query_languages):
        for j, y in enumerate(untrained.passage_languages):
            if x == y:
                assert math.isnan(untrained.values[i, j])
                continue
            assert untrained.values[i, j] == pytest.approx(mean_rank(baseline, x, y))
            assert hybrid.values[i, j] == pytest.approx(np.mean([mean_rank(r, x, y) for r in runs]))
    image = page.images[0].image
    assert np.allclose(image, untrained.values, equal_nan=True)  # what the ImageItem shows
    assert page.images[0].getLevels() == pytest.approx(page.images[1].getLevels())  # one colour scale
    grab(window, window.app_model.db.artifacts_dir.parent / "heatmap_page.png")

    page.compare.setChecked(False)
    assert len(page.maps) == 1
    single = next(k for k, c in page.choices.items() if c.run_id == runs[1].run_id)
    page.left.setCurrentIndex(page.left.findData(single))
    assert page.maps[0].values[2, 0] == pytest.approx(mean_rank(runs[1], "en", "sw"))


def test_heatmap_redraw_with_new_values_rewrites_the_same_maps(window, seeded):
    _db, study, _ = seeded
    page = window.heatmaps
    window.tabs.setCurrentWidget(page)
    plots = [drawn.plot for drawn in page.drawn]
    runs = [r for r in study.expand() if r.strategy == "hybrid" and r.train_size == 64]
    single = next(k for k, c in page.choices.items() if c.run_id == runs[1].run_id)
    page.left.setCurrentIndex(page.left.findData(single))  # same languages, other values
    assert [drawn.plot for drawn in page.drawn] == plots  # rewritten in place, not laid out anew
    left = page.drawn[0]
    assert left.plot.titleLabel.text == page.maps[0].title
    assert np.allclose(left.image.image, page.maps[0].values, equal_nan=True)
    for (i, j), cell in left.cells.items():
        value = page.maps[0].values[i, j]
        assert cell.toPlainText() == ("—" if math.isnan(value) else f"{value:.1f}")
    assert left.cells[2, 0].toPlainText() == f"{mean_rank(runs[1], 'en', 'sw'):.1f}"
    assert page.images[0].getLevels() == pytest.approx(page.images[1].getLevels())

    page.compare.setChecked(False)  # one map instead of two: laid out anew
    assert len(page.drawn) == 1 and page.drawn[0].plot not in plots


def test_a_chunked_redraw_shows_the_old_drawing_until_the_new_one_is_complete(qtbot, window):
    page = window.scaling
    window.tabs.setCurrentWidget(page)
    page.band.setCurrentIndex(1)  # ±sd bands, drawn in steps
    page.redraw(chunked=True)
    assert not page.canvas.updatesEnabled()  # no paint of a half-drawn canvas
    qtbot.waitUntil(page.canvas.updatesEnabled, timeout=5000)
    assert list(page.drawn) == ["sw", "yo"]
    page.redraw(chunked=True)
    page.redraw()  # the user's own change overtakes the chunked drawing, and is shown at once
    assert page.canvas.updatesEnabled()
    qtbot.wait(100)
    assert page.canvas.updatesEnabled() and list(page.drawn) == ["sw", "yo"]


def test_csv_export_writes_the_tidy_report(qtbot, window, tmp_path, seeded):
    db, _study, study_id = seeded
    path = tmp_path / "report.csv"  # the file dialog gives an existing folder
    window.export_csv(path)
    qtbot.waitUntil(path.exists, timeout=5000)
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == TIDY_COLUMNS
    assert len(rows) == len(tidy_metrics(db, study_id)) == 13 * 2 + 13 * 6
    hybrid = [r for r in rows if r["strategy"] == "hybrid" and r["metric"] == "nDCG@10" and r["query_language"] == "sw"]
    assert {float(r["alpha"]) for r in hybrid} == {0.5} and len(hybrid) == len(SIZES) * len(SEEDS)


@pytest.mark.parametrize("page_name", ["scaling", "heatmaps"])
def test_plot_images_export_as_png_and_svg(window, tmp_path, page_name):
    page = getattr(window, page_name)
    window.tabs.setCurrentWidget(page)
    png = page.export_image(tmp_path / f"{page_name}.png")
    image = QtGui.QImage(str(png))
    assert image.width() >= 1200 and image.height() > 300
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 20  # a drawing, not a blank canvas
    svg = page.export_image(tmp_path / f"{page_name}.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    title = "nDCG@10 on flores/test" if page_name == "scaling" else "MeanRank"
    assert title in svg_text(svg)
    with pytest.raises(ValueError, match="use .png or .svg"):
        page.export_image(tmp_path / "plot.gif")


def test_the_png_export_asks_for_its_size(window, tmp_path, monkeypatch):
    page = window.scaling
    window.tabs.setCurrentWidget(page)
    asked: list[int] = []

    def size(_parent, _title, _label, value, _low, _high, _step):
        asked.append(value)
        return 3000, True

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        lambda *_args: (str(tmp_path / "print.png"), "PNG image (*.png)"))
    monkeypatch.setattr(QtWidgets.QInputDialog, "getInt", size)
    page.choose_export_path()
    assert asked == [2 * max(1200, page.canvas.width())]  # offered: twice the screen's
    image = QtGui.QImage(str(tmp_path / "print.png"))
    assert image.width() == 3000 and image.height() > 700


def test_copy_table_puts_the_plotted_numbers_on_the_clipboard(window):
    window.tabs.setCurrentWidget(window.scaling)
    window.copy_current_table()
    lines = QtWidgets.QApplication.clipboard().text().splitlines()
    assert lines[0].startswith("query_language\tstrategy\ttrain_size\tnDCG@10 mean")
    assert lines[1].startswith("sw\tuntrained tiny:\t0\t0.3000")
    window.tabs.setCurrentWidget(window.heatmaps)
    window.copy_current_table()
    text = QtWidgets.QApplication.clipboard().text()
    assert "untrained tiny: (size 0): MeanRank" in text and "en\t2.0000\t3.0000\t" in text


def test_pages_say_why_they_are_empty(qtbot, tmp_path, settings, empty_db):
    window = make_window(qtbot, empty_db, settings)
    qtbot.wait(200)
    for page in (window.scaling, window.heatmaps):
        assert not page.has_plot and "No results to plot yet" in page.empty.text()
        assert not page.export_button.isEnabled()
        with pytest.raises(LookupError, match="there is no plot to export"):
            page.export_image(tmp_path / "nothing.png")


def test_a_hidden_page_redraws_when_it_is_shown(qtbot, window):
    window.tabs.setCurrentWidget(window.queue)
    window.app_model.reload_metrics()
    qtbot.waitUntil(lambda: window.scaling._stale and window.heatmaps._stale, timeout=5000)
    window.scaling.drawn.clear()
    window.tabs.setCurrentWidget(window.scaling)
    assert list(window.scaling.drawn) == ["sw", "yo"] and not window.scaling._stale


def test_maps_side_by_side_are_equally_wide_and_their_choices_uncut(qtbot, window):
    page = window.heatmaps
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: len(page.drawn) == 2 and page.has_plot, timeout=5000)
    plots = [item for item in page.canvas.ci.items
             if isinstance(item, pg.PlotItem) and not isinstance(item, pg.ColorBarItem)]
    assert len(plots) == 2 and plots[0].geometry().width() == pytest.approx(plots[1].geometry().width())
    for box in (page.left, page.right):  # the closed box shows its whole entry, once laid out
        qtbot.waitUntil(lambda box=box: box.width() > box.fontMetrics().horizontalAdvance(box.currentText()),
                        timeout=2000)

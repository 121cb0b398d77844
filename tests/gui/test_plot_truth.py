"""The plots say what the data say: tick labels on the data's scale, seeds pooled only within one configuration,
one seed shown as one seed, coinciding points named, fits drawn through the plotted means (issue 21)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtCore, QtWidgets

from analysis.fits import fit_power_law
from gui.figures import PALETTE, ValueAxis, series_styles
from results.plot_data import scaling_panels
from storage.queries import tidy_metrics
from tests.gui.conftest import grab, make_window, svg_text
from tests.gui.seed import seed_database, seeded_study, values_of
from vocabulary.config import RunConfig, StudyConfig
from vocabulary.records import MetricRow
from vocabulary.strategies import STRATEGY_NAMES


def shown_ticks(axis) -> list[str]:
    """The tick labels ``axis`` paints now, computed the way AxisItem.generateDrawSpecs computes them."""
    low, high = axis.range
    length = axis.geometry().height() if axis.orientation in ("left", "right") else axis.geometry().width()
    strings = []
    for spacing, values in axis.tickValues(low, high, length)[: axis.style["maxTextLevel"] + 1]:
        strings += axis.tickStrings(values, axis.autoSIPrefixScale * axis.scale, spacing)
    return strings


@pytest.fixture()
def painted(monkeypatch) -> dict[int, list[str]]:
    """id(axis) -> the tick labels in the picture it last generated: what screen paints and image exports play back.

    pyqtgraph's own drawing, spied on (AxisItem caches its picture and
    regenerates it from generateDrawSpecs when its range or scale changes).
    """
    latest: dict[int, list[str]] = {}
    original = pg.AxisItem.generateDrawSpecs

    def spy(axis, painter):
        specs = original(axis, painter)
        if specs is not None:
            latest[id(axis)] = [text for _rect, _flags, text in specs[2]]
        return specs

    monkeypatch.setattr(pg.AxisItem, "generateDrawSpecs", spy)
    return latest


def ap_and_mean_rank(config: RunConfig) -> list[MetricRow]:
    """The seeded values plus AP (also within [0, 1]) and a cross-lingual MeanRank (5 to 200)."""
    rows = values_of(config)
    rows += [MetricRow("flores/test", "cross", r.query_language, "en", "AP", 0.9 * r.value, 10)
             for r in rows if r.metric == "nDCG@10"]
    rank = {"sw": 5 + 195 * config.train_size / 64, "yo": 5.0}
    rows += [MetricRow("flores/test", "cross", x, "en", "MeanRank", rank[x], 10) for x in ("sw", "yo")]
    return rows


@pytest.fixture()
def three_metrics(tmp_path):
    db, study, study_id = seed_database(tmp_path / "three.db", values=ap_and_mean_rank)
    yield db
    db.dispose()


def test_tick_labels_are_on_the_data_scale_after_any_metric_on_screen_and_in_images(qtbot, three_metrics, settings,
                                                                                  tmp_path, painted):
    window = make_window(qtbot, three_metrics, settings)
    qtbot.waitUntil(lambda: len(window.app_model.metrics) > 0, timeout=10_000)
    page = window.scaling
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.has_plot and page.canvas.updatesEnabled(), timeout=5000)
    assert page.choices.metric.currentData() == "nDCG@10"
    left = page.drawn["sw"][0].getAxis("left")
    assert isinstance(left, ValueAxis)
    first = shown_ticks(left)
    assert all(0.0 <= float(t) <= 1.0 for t in first), first

    for metric in ("AP", "MeanRank", "nDCG@10"):  # [0, 1] after [0, 1]; [5, 200] after [0, 1]; [0, 1] after [5, 200]
        page.choices.metric.setCurrentIndex(page.choices.metric.findData(metric))
        qtbot.wait(20)
        plot = page.drawn["sw"][0]
        low, high = plot.viewRange()[1]
        ticks = [float(t) for t in shown_ticks(plot.getAxis("left"))]
        assert ticks and all(low - 1e-9 <= t <= high + 1e-9 for t in ticks), (metric, ticks, (low, high))
        assert "(x" not in plot.getAxis("left").labelString()
        page.export_image(tmp_path / f"{metric}.png")
        in_png = painted[id(plot.getAxis("left"))]
        assert in_png and set(in_png) <= set(shown_ticks(plot.getAxis("left"))), (in_png, ticks)
        svg = svg_text(page.export_image(tmp_path / f"{metric}.svg").read_text())
        for tick in shown_ticks(plot.getAxis("left")):
            assert f" {tick} " in svg
        numbers = [float(n) for n in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])", svg.split("queries")[1])]
        assert max(numbers) <= max(high, 64), (metric, numbers)  # no tick far above the data (sizes go to 64)
        if metric == "AP":
            grab(window, tmp_path / "scaling_after_switching_to_AP.png")
    assert shown_ticks(page.drawn["sw"][0].getAxis("left")) == first


def test_a_single_column_heatmap_has_no_scale_factor_on_its_axes(qtbot, window):
    page = window.heatmaps
    window.tabs.setCurrentWidget(page)
    page.metric.setCurrentIndex(page.metric.findData("nDCG@10"))  # cells sw->en, yo->en: one passage column
    plot = page.drawn[0].plot
    assert page.maps[0].passage_languages == ("en",)
    for side in ("left", "bottom"):
        assert "(x" not in plot.getAxis(side).labelString()


# ---- runs pooled only within one configuration; one seed is one seed -------------------------------------
def open_scaling(qtbot, db, settings):
    window = make_window(qtbot, db, settings)
    page = window.scaling
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.has_plot and "sw" in page.drawn and page.canvas.updatesEnabled(), timeout=10_000)
    return window, page


def other_study() -> StudyConfig:
    """The issue's second small study: hybrid n=16, seed 0, another learning rate, 20 queries."""
    template = seeded_study().template
    evaluations = tuple(dataclasses.replace(spec, max_queries=20) for spec in template.evaluations)
    return StudyConfig("other lr", strategies=("hybrid",), alphas=(0.5,), train_sizes=(16,), seeds=(0,),
                       include_baseline=False,
                       template=dataclasses.replace(template, learning_rate=1e-4, evaluations=evaluations))


def lower_and_twenty_queries(config: RunConfig) -> list[MetricRow]:
    return [dataclasses.replace(r, value=r.value - 0.1, num_queries=20) for r in values_of(config)]


@pytest.fixture()
def two_studies(tmp_path):
    """The seeded study and :func:`other_study`, in one database."""
    db, _study, first = seed_database(tmp_path / "two.db")
    _db, _other, second = seed_database(db, other_study(), values=lower_and_twenty_queries)
    yield db, first, second
    db.dispose()


NEW = "hybrid α=0.5 (evaluations B, learning_rate=0.0001)"
OLD = "hybrid α=0.5 (evaluations A, learning_rate=3e-05)"


def test_all_studies_never_average_two_configurations_as_seeds(two_studies):
    db, _first, _second = two_studies
    rows = tidy_metrics(db)
    (sw, _yo) = scaling_panels(rows, eval_set="flores/test", setting="cross", metric="nDCG@10", passage_language="en")
    assert [s.label for s in sw.series] == ["mono", "cross", OLD, NEW]
    old, new = sw.series[2:]
    assert [p.seed_count for p in old.points] == [2, 2]  # seeds 0 and 1 of one configuration
    (point,) = new.points
    assert (point.size, point.seed_count, point.mean) == (16, 1, pytest.approx(0.50 + 0.016 + 0.05 - 0.1))
    assert not new.has_spread and old.points[0].mean == pytest.approx(0.50 + 0.016 + 0.05 + 0.01)
    # The CSV report carries the series too, so a spreadsheet groups as the plots do.
    assert {r["series"] for r in rows if r["strategy"] == "hybrid"} == {OLD, NEW}


def test_a_strategy_keeps_its_colour_in_every_view_and_variants_differ_in_line_and_marker(qtbot, two_studies, settings):
    db, _first, second = two_studies
    window, page = open_scaling(qtbot, db, settings)
    pens = {label: curve.opts["pen"] for label, curve in page.drawn["sw"][1].curves.items()}
    green = PALETTE[STRATEGY_NAMES.index("hybrid")]
    assert pens[OLD].color().name() == pens[NEW].color().name() == green.lower()
    assert pens["mono"].color().name() == PALETTE[STRATEGY_NAMES.index("mono")].lower()
    assert pens[OLD].style() != pens[NEW].style()
    symbols = {label: points.opts["symbol"] for label, points in page.drawn["sw"][1].points.items()}
    assert symbols[OLD] != symbols[NEW]
    legend = [text for _style, text in page._legend.hybridscale_entries]
    assert legend[:4] == ["mono", "cross", OLD, NEW]
    grab(window, db.artifacts_dir.parent / "scaling_two_configurations.png")

    window.study.setCurrentIndex(window.study.findData(second))  # only the hybrid study: still green
    qtbot.waitUntil(lambda: "sw" in page.drawn and list(page.drawn["sw"][1].curves) == ["hybrid α=0.5"],
                    timeout=10_000)
    (pen,) = [curve.opts["pen"] for curve in page.drawn["sw"][1].curves.values()]
    assert pen.color().name() == green.lower()
    assert series_styles([("hybrid", "a"), ("hybrid", "b"), ("mono", "c")])["a"].colour == green.lower()


def test_one_seed_says_1_seed_draws_no_band_and_every_point_names_its_queries(qtbot, two_studies, settings):
    db, _first, _second = two_studies
    window, page = open_scaling(qtbot, db, settings)
    drawn = page.drawn["sw"][1]
    assert NEW not in drawn.bands and OLD in drawn.bands
    (tip,) = [p.data() for p in drawn.points[NEW].points()]
    assert "1 seed" in tip and "sd" not in tip and "queries: 20" in tip
    old_tip = drawn.points[OLD].points()[0].data()
    assert "over 2 seeds" in old_tip and "queries: 10 per run" in old_tip and "(seed 1)" in old_tip
    table = page.table()
    header = table[0]
    by_series = {(row[1], row[2]): dict(zip(header, row)) for row in table[1:] if row[0] == "sw"}
    assert by_series[(NEW, "16")]["queries"] == "20" and by_series[(NEW, "16")]["sd"] == ""
    assert by_series[(NEW, "16")]["seeds"] == "1"
    assert by_series[(OLD, "16")]["queries"] == "10" and by_series[(OLD, "16")]["sd"] != ""
    assert by_series[("untrained tiny:", "0")]["queries"] == "10"
    window.copy_current_table()
    assert "\tqueries\t" in QtWidgets.QApplication.clipboard().text().splitlines()[0]


def same_mono_and_cross(config: RunConfig) -> list[MetricRow]:
    """cross measures exactly what mono measures: their points coincide."""
    if config.strategy == "cross":
        config = dataclasses.replace(config, strategy="mono", alpha=None)
    return values_of(config)


def test_coinciding_points_name_every_series_there(qtbot, tmp_path, settings):
    db, _study, _ = seed_database(tmp_path / "same.db", values=same_mono_and_cross)
    _window, page = open_scaling(qtbot, db, settings)
    drawn = page.drawn["sw"][1]
    for label in ("mono", "cross"):
        for point in drawn.points[label].points():
            tip = point.data()
            assert tip.startswith("2 series coincide here: ") and "mono, n=" in tip and "cross, n=" in tip, tip
    hybrid_tip = drawn.points["hybrid α=0.5"].points()[0].data()
    assert "coincide" not in hybrid_tip and "mono" not in hybrid_tip
    db.dispose()


# ---- fits and per-panel ranges -------------------------------------------------------------------------
@pytest.fixture()
def four_sizes(tmp_path):
    study = dataclasses.replace(seeded_study(), train_sizes=(16, 32, 64, 128))
    db, study, _ = seed_database(tmp_path / "four.db", study)
    yield db
    db.dispose()


def test_fit_draws_the_power_law_through_the_plotted_means_also_in_exported_images(qtbot, four_sizes, settings,
                                                                                  tmp_path):
    window, page = open_scaling(qtbot, four_sizes, settings)
    plain_svg = page.export_image(tmp_path / "plain.svg").read_text()
    page.fit.setChecked(True)
    for _language, (plot, drawn) in page.drawn.items():
        assert list(drawn.fits) == list(drawn.curves) == ["mono", "cross", "hybrid α=0.5"]
        for label, line in drawn.fits.items():
            sizes, means = 10 ** drawn.curves[label].getData()[0], drawn.curves[label].getData()[1]
            law = fit_power_law(np.round(sizes).astype(int), means)
            x, y = line.getData()
            assert 10 ** x[0] == pytest.approx(16) and 10 ** x[-1] == pytest.approx(128)  # never extrapolated
            assert np.allclose(y, law(10 ** x))
            assert line.opts["pen"].widthF() < drawn.curves[label].opts["pen"].widthF()  # thin
            assert line in plot.items
    assert page.note == ""
    assert "fit a − b·N^−c" in [text for _kind, text in page._legend.hybridscale_entries][-1]
    fitted_svg = page.export_image(tmp_path / "fitted.svg").read_text()
    assert fitted_svg.count("<path") >= plain_svg.count("<path") + 2 * 3  # a line per series and panel
    grab(window, four_sizes.artifacts_dir.parent / "scaling_fit.png")
    page.fit.setChecked(False)
    assert not any(drawn.fits for _plot, drawn in page.drawn.values())


def test_fit_with_fewer_than_four_sizes_is_a_note_not_a_line(qtbot, window, tmp_path):
    page = window.scaling
    window.tabs.setCurrentWidget(page)
    page.fit.setChecked(True)
    assert not any(drawn.fits for _plot, drawn in page.drawn.values())
    assert page.note == ("no fit for mono, cross, hybrid α=0.5: a scaling fit needs at least 4 training sizes; "
                         "this curve has 2")
    assert page.note in svg_text(page.export_image(tmp_path / "note.svg").read_text())


def test_own_y_range_per_panel_scales_each_panel_to_its_values(qtbot, window):
    page = window.scaling
    window.tabs.setCurrentWidget(page)
    shared = np.array([plot.viewRange()[1] for plot, _drawn in page.drawn.values()])
    assert np.allclose(shared[0], shared[1])
    page.own_range.setChecked(True)
    (sw_plot, _), (yo_plot, _) = page.drawn.values()
    sw_range, yo_range = sw_plot.viewRange()[1], yo_plot.viewRange()[1]
    assert sw_range[0] > 0.25 and yo_range[0] < 0.2  # sw's lowest line is its 0.30 baseline, yo's is 0.20
    assert yo_plot.getViewBox().linkedView(1) is None
    page.own_range.setChecked(False)
    assert np.allclose([plot.viewRange()[1] for plot, _drawn in page.drawn.values()], shared)


# ---- the smaller items -------------------------------------------------------------------------------
def test_the_difference_map_is_b_minus_a_on_a_scale_centred_on_zero(qtbot, window, tmp_path):
    page = window.heatmaps
    window.tabs.setCurrentWidget(page)
    a, b = page.maps
    page.difference.setChecked(True)
    (diff,) = page.maps
    assert diff.difference and diff.title.startswith("B − A: hybrid α=0.5 n=64")
    assert "negative: B better" in diff.title
    assert np.allclose(diff.values, b.values - a.values, equal_nan=True)
    low, high = page.images[0].getLevels()
    assert low == pytest.approx(-high) and high == pytest.approx(np.nanmax(np.abs(diff.values)))
    colours = page.images[0].getColorMap()
    assert colours.mapToQColor(0.0).blue() > colours.mapToQColor(0.0).red()  # MeanRank: lower (negative) is B better
    cell = page.drawn[0].cells[0, 1]
    assert cell.toPlainText() == f"{diff.values[0, 1]:+.1f}"
    svg = svg_text(page.export_image(tmp_path / "difference.svg").read_text())
    assert "B − A MeanRank (negative: B better)" in svg
    grab(window, tmp_path / "heatmap_difference.png")
    page.compare.setChecked(False)
    assert len(page.maps) == 1 and not page.maps[0].difference and not page.difference.isEnabled()


def test_counts_are_in_words_and_titles_and_lists_are_not_cut(qtbot, window):
    from results.plan import StudyPlan

    assert StudyPlan(1, 1, 0.4, "cpu").summary().startswith("1 run (1 training), about 1 minute on")
    assert StudyPlan(2, 1, 3, "cpu").summary().startswith("2 runs (1 training + 1 evaluation-only), about 3 minutes")
    page = window.scaling
    window.tabs.setCurrentWidget(page)
    page.choices.setting.setCurrentIndex(page.choices.setting.findData("multi"))
    page.choices.languages.set_entries([("sw", "sw — Swahili"), ("all", "all query languages (average)")], ("all",))
    plot = next(iter(page.drawn.values()))[0]
    assert plot.titleLabel.text == "All query languages (average)"
    popup = page.choices.languages.view()
    assert popup.minimumWidth() >= popup.sizeHintForColumn(0)  # whole entries in the open list
    qtbot.waitUntil(lambda: all(combo.width() >= combo.sizeHint().width()
                                for _label, combo in page.choices.pick_lists()), timeout=2000)
    metric = page.choices.metric
    assert "lower is better" in metric.itemData(metric.currentIndex(), QtCore.Qt.ItemDataRole.ToolTipRole)


def test_queue_columns_are_wide_enough_for_what_a_running_run_shows(qtbot, window):
    from results.runs import COLUMNS

    view = window.queue.view
    metrics = view.fontMetrics()
    for index, column in enumerate(COLUMNS):
        if column.widest:
            assert view.columnWidth(index) >= metrics.horizontalAdvance(column.widest), column.title
    assert [c.title for c in COLUMNS][-1] == "Error"  # the long one takes the width left over
    assert view.columnWidth([c.title for c in COLUMNS].index("Run id")) < view.width() / 4


def test_every_file_dialog_starts_in_the_remembered_folder(qtbot, window, tmp_path, monkeypatch):
    window.folder.remember(str(tmp_path / "results" / "report.csv"))
    offered: list[str] = []

    def dialog(_parent, _title, start, _filter):
        offered.append(start)
        return "", ""

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", dialog)
    window.choose_csv_path()
    window.tabs.setCurrentWidget(window.scaling)
    window.export_current_plot()
    assert [Path(path).parent for path in offered] == [tmp_path / "results"] * 2


def test_the_bias_measures_are_defined_where_they_are_shown(window):
    from gui.about import about_html

    text = about_html()
    assert "<b>MeanRank</b>: mean, over a query language's queries, of the rank" in text
    assert "<b>LangBias</b>: for each query with answers in several languages" in text
    heatmaps = window.heatmaps
    window.tabs.setCurrentWidget(heatmaps)
    tip = heatmaps.metric.itemData(heatmaps.metric.findData("MeanRank"), QtCore.Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("mean, over a query language's queries")


def test_the_fit_note_names_the_panels_a_series_lacks_a_fit_in():
    from gui.scaling_view import fit_note

    why = "a scaling fit needs at least 4 training sizes; this curve has 3"
    assert fit_note({("mono", "sw"): why, ("mono", "yo"): why, ("cross", "yo"): why}, ["sw", "yo"]) == (
        f"no fit for mono, cross (yo): {why}")


def test_a_flat_curve_gets_a_note_not_a_fit(qtbot, settings, tmp_path):
    """Values that do not depend on the size (a seed term only): no curve is drawn through them."""

    def flat(config):
        level = 0.5 + (0.01 * ((config.seed * 7 + config.train_size) % 3) if config.is_training else 0.0)
        return [MetricRow("flores/test", "cross", x, "en", "nDCG@10", level, 10) for x in ("sw", "yo")]

    study = dataclasses.replace(seeded_study(), train_sizes=(16, 32, 64, 128))
    db, _study, _ = seed_database(tmp_path / "flat.db", study, values=flat)
    window, page = open_scaling(qtbot, db, settings)
    page.fit.setChecked(True)
    assert not any(drawn.fits for _plot, drawn in page.drawn.values())
    assert page.note.endswith(": flat within noise (the slope of the means over log n has p ≥ 0.05)")
    db.dispose()

"""The headless figures (what `hybridscale demo` writes), drawn with the GUI's own code."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtGui

from gui.figure_files import save_heatmap_figure, save_scaling_figure, scaling_figure
from gui.figures import draw_heatmap, heatmap_colour_map, write_heatmap
from results.plot_data import Heatmap
from storage.queries import tidy_metrics
from tests.gui.conftest import svg_text
from vocabulary.series import SeriesName


def distinct_colours(path) -> int:
    image = QtGui.QImage(str(path))
    return len({image.pixel(x, y) for x in range(0, image.width(), 5) for y in range(0, image.height(), 5)})


def test_scaling_figure_png_and_svg(qapp, seeded, tmp_path):
    rows = tidy_metrics(seeded[0])
    png = save_scaling_figure(rows, tmp_path / "scaling.png", eval_set="flores/test", setting="cross",
                              metric="nDCG@10", passage_language="en", query_languages=("sw", "yo"))
    image = QtGui.QImage(str(png))
    assert (image.width(), image.height()) == (1200, 500)
    assert distinct_colours(png) > 20
    svg = save_scaling_figure(rows, tmp_path / "scaling.svg", eval_set="flores/test", setting="cross",
                              metric="nDCG@10", passage_language="en").read_text()
    svg = svg_text(svg)
    for text in ("Swahili (sw) queries", "Yoruba (yo) queries", "hybrid α=0.5", "training size"):
        assert text in svg
    with pytest.raises(LookupError, match="no RR@10 values for flores/test cross"):
        save_scaling_figure(rows, tmp_path / "none.png", eval_set="flores/test", setting="cross", metric="RR@10")


def test_a_figures_range_leaves_out_a_distant_bm25_and_says_where_it_is(qapp, seeded):
    rows = tidy_metrics(seeded[0])
    bm25 = SeriesName("BM25", lexical=True)
    rows += [{**row, "run_id": "bm25-run", "series": bm25, "value": 0.01} for row in rows if row["strategy"] == "none"]
    widget = scaling_figure(rows, eval_set="flores/test", setting="cross", metric="nDCG@10", passage_language="en")
    plots = [item for item in widget.ci.items if isinstance(item, pg.PlotItem)]
    low, _high = plots[0].viewRange()[1]
    assert 0.01 < low < 0.20  # the untrained model (0.20 for yo) is shown, BM25 far below it is not
    texts = [item.text for item in widget.ci.items if isinstance(item, pg.LabelItem)]
    assert "BM25 (size 0) is off the axis: sw 0.0100, yo 0.0100" in texts
    widget.deleteLater()


def test_heatmap_figure_defaults_to_untrained_and_each_strategy_at_its_largest_size(qapp, seeded, tmp_path):
    rows = tidy_metrics(seeded[0])
    svg = svg_text(save_heatmap_figure(rows, tmp_path / "bias.svg", eval_set="flores/test").read_text())
    for title in ("untrained tiny: (size 0): MeanRank", "mono n=64: MeanRank", "cross n=64: MeanRank",
                  "hybrid α=0.5 n=64: MeanRank"):
        assert title in svg
    assert "mono n=16" not in svg
    png = save_heatmap_figure(rows, tmp_path / "bias.png", eval_set="flores/test", strategies=[("cross", 16)])
    assert distinct_colours(png) > 10
    with pytest.raises(LookupError, match="no MeanRank cells on xquad-r/eval"):
        save_heatmap_figure(rows, tmp_path / "x.png", eval_set="xquad-r/eval")


def test_bright_means_good_for_every_metric_however_often_maps_are_made(qapp):
    def brightness(colour_map, share: float) -> float:
        return colour_map.mapToQColor(share).lightnessF()

    for _ in range(3):  # a shared map reversed in place would flip at every call
        rank = heatmap_colour_map("MeanRank")
        assert brightness(rank, 0.0) > brightness(rank, 1.0)  # low rank (good) is bright
        ndcg = heatmap_colour_map("nDCG@10")
        assert brightness(ndcg, 1.0) > brightness(ndcg, 0.0)  # high nDCG (good) is bright


def test_a_drawn_heatmap_is_rewritten_only_with_the_same_languages(qapp):
    def matrix(values, languages=("sw", "yo")) -> Heatmap:
        return Heatmap("t", "nDCG@10", languages, languages, np.array(values, dtype=float), ())

    colours = heatmap_colour_map("nDCG@10")
    drawn = draw_heatmap(pg.PlotItem(), matrix([[0.5, np.nan], [0.25, 1.0]]), (0.0, 1.0), colours)
    assert [drawn.cells[i, j].toPlainText() for i in (0, 1) for j in (0, 1)] == ["0.500", "—", "0.250", "1.000"]
    write_heatmap(drawn, matrix([[np.nan, 0.125], [0.75, 0.0]]), (0.0, 1.0), colours)
    assert [drawn.cells[i, j].toPlainText() for i in (0, 1) for j in (0, 1)] == ["—", "0.125", "0.750", "0.000"]
    # Black text on the bright (high) end of viridis, white on the dark end.
    assert drawn.cells[1, 0].color.name() == "#000000" and drawn.cells[1, 1].color.name() == "#ffffff"
    with pytest.raises(ValueError, match="draw it anew"):
        write_heatmap(drawn, matrix([[1.0]], languages=("sw",)), (0.0, 1.0), colours)


def test_a_pool_of_one_passage_language_gets_no_pool_figure_and_no_bias_map(qapp, seeded, tmp_path):
    from hybridscale.report import write_figures

    rows = tidy_metrics(seeded[0])
    english_only = [{**row, "eval_set": "afriqa/test (gold passages only)"} for row in rows
                    if row["passage_language"] in ("en", "all")]
    assert {r["setting"] for r in english_only} >= {"cross", "multi"}
    flores_alone = {p.name for p in write_figures(rows, tmp_path / "flores", {})}
    assert "bias_flores.png" in flores_alone  # FLORES' pool has three passage languages
    images = write_figures(rows + english_only, tmp_path / "both", {})
    assert {p.name for p in images} == flores_alone | {"scaling_afriqa_cross.png"}

"""The plot data (results.plot_data): statistics over seeds, baselines and heatmap cells, by hand."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from results.plot_data import (
    HeatmapChoice,
    MetricTable,
    heatmap,
    heatmap_choices,
    heatmap_table,
    off_axis_note,
    run_choices,
    scaling_panels,
    series_table,
    value_extent,
)
from storage.queries import tidy_metrics
from tests.gui.seed import LANGUAGES, SEEDS, SIZES, mean_rank, ndcg
from vocabulary.series import SeriesName


@pytest.fixture()
def rows(seeded):
    return tidy_metrics(seeded[0])


def test_scaling_points_are_mean_min_max_sd_over_seeds(rows, seeded):
    _db, study, _ = seeded
    panels = scaling_panels(rows, eval_set="flores/test", setting="cross", metric="nDCG@10", passage_language="en")
    assert [p.query_language for p in panels] == ["sw", "yo"]  # targets first
    sw = panels[0]
    assert [s.label for s in sw.series] == ["mono", "cross", "hybrid α=0.5"]
    runs = {(r.strategy, r.train_size, r.seed): r for r in study.expand() if r.is_training}
    for series, strategy in zip(sw.series, ("mono", "cross", "hybrid")):
        assert series.sizes == list(SIZES)
        for point in series.points:
            values = [ndcg(runs[(strategy, point.size, seed)], "sw") for seed in SEEDS]
            assert point.mean == pytest.approx(statistics.mean(values))
            assert (point.minimum, point.maximum) == pytest.approx((min(values), max(values)))
            assert point.sd == pytest.approx(statistics.stdev(values))
            assert point.run_ids == tuple(sorted(runs[(strategy, point.size, s)].run_id for s in SEEDS))
    (baseline,) = sw.baselines
    assert baseline.label == "untrained tiny:" and baseline.value == pytest.approx(0.30)


def test_a_single_seed_has_zero_sd_and_a_flat_band(rows):
    one_seed = [r for r in rows if r["seed"] == 0 or r["strategy"] == "none"]
    panels = scaling_panels(one_seed, eval_set="flores/test", setting="cross", metric="nDCG@10", passage_language="en")
    point = panels[0].series[0].points[0]
    assert point.sd == 0.0 and point.minimum == point.maximum == point.mean


def test_value_extent_covers_bands_and_baselines(rows):
    panels = scaling_panels(rows, eval_set="flores/test", setting="cross", metric="nDCG@10", passage_language="en")
    low, high = value_extent(panels)
    assert low == pytest.approx(0.20)  # the yo baseline is the lowest value drawn
    # highest: hybrid n=64 sw, mean + sd over seeds 0.02 apart (sd = 0.02 / sqrt 2)
    top = 0.50 + 0.064 + 0.05 + 0.01
    assert high == pytest.approx(top + 0.02 / math.sqrt(2))
    assert value_extent([]) is None


def test_heatmap_cells_equal_the_stored_values_averaged_over_seeds(rows, seeded):
    _db, study, _ = seeded
    runs = [r for r in study.expand() if r.strategy == "hybrid" and r.train_size == 64]
    data = heatmap(rows, HeatmapChoice("hybrid α=0.5", 64), eval_set="flores/test")
    assert data.query_languages == ("sw", "yo", "en") and data.passage_languages == ("sw", "yo", "en")
    for i, x in enumerate(data.query_languages):
        for j, y in enumerate(data.passage_languages):
            if x == y:
                assert math.isnan(data.values[i, j])  # bitext: the own-language copy is the query itself
            else:
                assert data.values[i, j] == pytest.approx(np.mean([mean_rank(r, x, y) for r in runs]))
    assert set(data.run_ids) == {r.run_id for r in runs}


def test_heatmap_of_one_run_and_the_choice_lists(rows, seeded):
    _db, study, _ = seeded
    run = next(r for r in study.expand() if r.strategy == "cross" and r.train_size == 16 and r.seed == 1)
    data = heatmap(rows, HeatmapChoice("cross", 16, run.run_id), eval_set="flores/test")
    assert data.values[2, 0] == pytest.approx(mean_rank(run, "en", "sw"))
    averaged = heatmap_choices(rows, eval_set="flores/test")
    assert averaged[0] == HeatmapChoice("untrained tiny:", 0)
    assert len(averaged) == 1 + 3 * len(SIZES)
    assert len(run_choices(rows, eval_set="flores/test")) == 1 + 3 * len(SIZES) * len(SEEDS)
    table = MetricTable(rows)
    assert table.cell_metrics("flores/test") == ["MeanRank", "nDCG@10"] and table.cell_eval_sets() == ["flores/test"]
    assert len(table.cells("flores/test", "MeanRank")) == 13 * 6
    with pytest.raises(LookupError, match="no MeanRank cells for mono n=999"):
        heatmap(rows, HeatmapChoice("mono", 999), eval_set="flores/test")


def test_tables_hold_the_plotted_numbers(rows):
    panels = scaling_panels(rows, eval_set="flores/test", setting="cross", metric="nDCG@10", passage_language="en")
    table = series_table(panels, "nDCG@10")
    assert table[0][:4] == ["query_language", "strategy", "train_size", "nDCG@10 mean"]
    assert len(table) == 1 + 2 * (1 + 3 * len(SIZES))  # per language: baseline + strategies x sizes
    assert ["sw", "untrained tiny:", "0", "0.3000"] == table[1][:4]
    data = heatmap(rows, HeatmapChoice("untrained tiny:", 0), eval_set="flores/test")
    matrix = heatmap_table(data)
    assert matrix[0][1:] == list(LANGUAGES[1:]) + ["en"]
    assert matrix[3] == ["en", "2.0000", "3.0000", ""]


def test_metric_table_offers_each_pick_list_given_the_choices_before_it(rows):
    table = MetricTable(rows)
    assert table.choices() == ["flores/test"]
    assert table.choices("flores/test") == ["cross", "multi"]
    assert table.choices("flores/test", "multi") == ["en", "sw", "yo"]
    assert table.choices("flores/test", "cross", "en") == ["nDCG@10"]
    view = table.view("flores/test", "cross", "en", "nDCG@10")
    assert len(view) == 13 * 2 and {r["query_language"] for r in view} == {"sw", "yo"}
    assert table.view("flores/test", "cross", "en", "AP") == []
    assert len(table) == len(rows) and not len(MetricTable())


def _with_bm25(rows: list[dict], value: float) -> list[dict]:
    """``rows`` plus a lexical reference: the untrained model's rows copied under a BM25 series at ``value``."""
    bm25 = SeriesName("BM25", lexical=True)
    return rows + [{**row, "run_id": "bm25-run", "series": bm25, "value": value}
                   for row in rows if row["strategy"] == "none"]


def test_a_distant_lexical_reference_is_left_out_of_the_range_only_when_asked_and_named_off_axis(rows):
    panels = scaling_panels(_with_bm25(rows, 0.01), eval_set="flores/test", setting="cross", metric="nDCG@10",
                            passage_language="en")
    assert value_extent(panels)[0] == pytest.approx(0.01)  # every line by default
    low, high = value_extent(panels, lexical=False)
    assert low == pytest.approx(0.20)  # the untrained yo baseline, as without BM25
    assert off_axis_note(panels, low, high) == "BM25 (size 0) is off the axis: sw 0.0100, yo 0.0100"
    assert off_axis_note(panels, 0.0, 1.0) == ""

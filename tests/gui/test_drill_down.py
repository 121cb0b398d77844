"""Clicking a point on the scaling page opens its per-query panel: the sorted differences to another series,
and for a chosen query its text, relevant passage and both series' top 5 with relevance marks."""

from __future__ import annotations

import math
from types import SimpleNamespace

from gui.drill_down import RELEVANT_MARK
from results.per_query import read_top
from tests.gui.conftest import grab, make_window
from tests.gui.per_query_seed import passage_id, passage_text, per_query_study, query_text, relevant_rank


def test_a_clicked_point_shows_its_queries_against_another_series_and_their_top_5(qtbot, tmp_path, settings):
    db, study_id = per_query_study(tmp_path / "study.db", gain=True)
    window = make_window(qtbot, db, settings)
    try:
        page = window.scaling
        window.tabs.setCurrentWidget(page)
        qtbot.waitUntil(lambda: page.has_plot and "yo" in page.drawn and "hybrid α=0.5" in page.drawn["yo"][1].points,
                        timeout=10_000)
        points = page.drawn["yo"][1].points["hybrid α=0.5"]
        first = points.points()[0]  # n = 16
        points.sigClicked.emit(points, [first], None)  # what a mouse click on the marker emits
        panel = page.drill_down
        qtbot.waitUntil(lambda: len(panel.shown) == 24, timeout=10_000)
        assert panel.isVisible()
        assert panel.other.currentText() == "cross (n=16)"
        assert [panel.other.itemText(i) for i in range(panel.other.count())] == ["cross (n=16)", "untrained tiny: (reference)"]
        gaps = [d.difference for d in panel.shown]
        assert gaps == sorted(gaps)
        # Each side's value of query i is the mean over seeds 0 and 1 of 1 / log2(1 + the rank its passage has).
        def expected(strategy: str, i: int) -> float:
            ranks = [relevant_rank(SimpleNamespace(is_training=True, strategy=strategy, seed=seed), i, True)
                     for seed in (0, 1)]
            return sum(1 / math.log2(1 + rank) for rank in ranks) / 2

        by_query = {d.query_id: d for d in panel.shown}
        for i in range(24):
            shown = by_query[f"yo:{i:02d}"]
            assert abs(shown.a - expected("hybrid", i)) < 1e-12 and abs(shown.b - expected("cross", i)) < 1e-12
        wins = sum(expected("hybrid", i) > expected("cross", i) + 1e-12 for i in range(24))
        losses = sum(expected("hybrid", i) < expected("cross", i) - 1e-12 for i in range(24))
        assert f"A higher on {wins}, lower on {losses}, equal on {24 - wins - losses}" in panel.heading.text()
        assert panel.table.rowCount() == 24

        panel.select_query("yo:03")
        qtbot.waitUntil(lambda: panel.query is not None and panel.query.query_id == "yo:03", timeout=10_000)
        detail = panel.detail.toPlainText()
        assert query_text("yo", 3) in detail
        assert f"{passage_id(3)} (relevance 1): {passage_text(3)}" in detail
        (caption_a, top_a), (caption_b, top_b) = panel.query.tops
        assert caption_a.startswith("A: hybrid α=0.5 (n=16), run ") and "seed 0" in caption_a
        assert caption_b.startswith("B: cross (n=16), run ")
        # yo:03 is odd: hybrid seed 0 ranks it at 1 + (3 + 0 + 1) % 4 = 1, cross seed 0 at 1 + 3 % 4 = 4.
        assert [r.passage_id for r in top_a].index(passage_id(3)) == 0
        assert [r.passage_id for r in top_b].index(passage_id(3)) == 3
        assert [r.relevance for r in top_b] == [None, None, None, 1, None]  # only the judged passage is marked
        assert detail.count(RELEVANT_MARK) == 2 and len(top_a) == len(top_b) == 5
        assert all(r.text == passage_text(int(r.passage_id[3:])) for r in top_a)
        grab(window, tmp_path / "drill_down.png")
    finally:
        window.queue.workers.stop_all()
        db.dispose()


def test_the_top_5_reader_reads_the_engines_run_files(tmp_path):
    from engine.trec import write_run

    run = {"q1": {f"p{i}": 1.0 - i / 10 for i in range(8)}, "q2": {"a": 0.5, "b": 0.5}}
    write_run(tmp_path / "x.run.gz", run, "tag")
    assert read_top(tmp_path / "x.run.gz", "q1") == [(f"p{i}", 1.0 - i / 10) for i in range(5)]
    assert read_top(tmp_path / "x.run.gz", "q2") == [("b", 0.5), ("a", 0.5)]  # trec_eval's tie order, as written
    assert read_top(tmp_path / "x.run.gz", "q3") == []

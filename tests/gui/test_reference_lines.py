"""Every evaluation-only reference (the untrained model, BM25) is its own dashed line with its own legend entry."""

from __future__ import annotations

import dataclasses

from gui.figures import REFERENCE_DASHES
from storage import queue
from tests.gui.conftest import grab, make_window
from tests.gui.seed import ndcg, seed_database, seeded_study, values_of
from vocabulary.records import MetricRow


def bm25_values(config):
    """The second reference scores 0.25 (sw) and 0.15 (yo), below the untrained model's 0.30 and 0.20."""
    return [MetricRow(r.eval_set, r.setting, r.query_language, r.passage_language, r.metric, r.value - 0.05, r.num_queries)
            if r.metric == "nDCG@10" else r for r in values_of(config)]


def test_two_evaluation_only_runs_of_different_models_draw_two_dashed_lines(qtbot, tmp_path, settings):
    db, study, _ = seed_database(tmp_path / "refs.db")
    # A study needs a strategy: its one training run is failed, so only the BM25 reference is measured.
    second = dataclasses.replace(seeded_study("second reference"), strategies=("hybrid",), train_sizes=(16,),
                                 seeds=(0,), include_baseline=False, include_bm25=True, template=study.template)
    queue.submit_study(db, second)
    while (claimed := queue.claim_next(db, "seed-worker")) is not None:
        if claimed.config.is_training:
            queue.fail(db, claimed.id, claimed.worker_id, "not part of this test")
        else:
            queue.complete(db, claimed.id, claimed.worker_id, bm25_values(claimed.config))
    try:
        window = make_window(qtbot, db, settings)
        window.tabs.setCurrentWidget(window.scaling)
        page = window.scaling

        def both_drawn() -> bool:
            return page.has_plot and all(x in page.drawn and len(page.drawn[x][1].baselines) == 2 for x in ("sw", "yo"))

        qtbot.waitUntil(both_drawn, timeout=10_000)
        qtbot.wait(100)  # the legend is filled by the drawing's last step
        for language in ("sw", "yo"):
            lines = window.scaling.drawn[language][1].baselines
            assert set(lines) == {"BM25", "untrained tiny:"}
            untrained = ndcg(dataclasses.replace(study.template, strategy="none"), language)
            assert lines["untrained tiny:"].value() == untrained
            assert abs(lines["BM25"].value() - (untrained - 0.05)) < 1e-12
            styles = {label: line.pen.style() for label, line in lines.items()}
            assert styles == {"BM25": REFERENCE_DASHES[0], "untrained tiny:": REFERENCE_DASHES[1]}
        legend = {label.text: sample.item.opts["pen"].style() for sample, label in window.scaling._legend.items}
        assert legend["BM25 (size 0)"] == REFERENCE_DASHES[0]
        assert legend["untrained tiny: (size 0)"] == REFERENCE_DASHES[1]
        grab(window, tmp_path / "scaling_two_references.png")
    finally:
        window.queue.workers.stop_all()
        db.dispose()

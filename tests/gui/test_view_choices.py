"""The pick lists shared by the scaling and Findings pages open where summary.md's answer is."""

from __future__ import annotations

from gui.view_choices import ViewChoices, answer_first
from results.plot_data import MetricTable
from vocabulary.series import SeriesName


def _rows() -> list[dict]:
    row = {"setting": "cross", "passage_language": "en", "metric": "nDCG@10", "query_language": "sw",
           "strategy": "none", "series": SeriesName("untrained m"), "run_id": "r", "train_size": 0, "value": 0.5}
    return [{**row, "eval_set": "flores/test"}, {**row, "eval_set": "miracl/dev", "setting": "mono"},
            {**row, "eval_set": "afriqa/test (gold passages only)"},
            {**row, "eval_set": "ciral/test-b", "setting": "mono", "metric": "nDCG@20"},
            {**row, "eval_set": "ciral/test-b", "setting": "mono", "metric": "nDCG@10"}]


def test_eval_sets_are_offered_answer_first():
    assert answer_first(MetricTable(_rows())) == ["afriqa/test (gold passages only)", "flores/test", "ciral/test-b",
                                                  "miracl/dev"]


def test_the_first_view_is_the_answers_and_ciral_opens_in_its_headline_measure(qapp):
    choices = ViewChoices("metric", "languages")
    choices.refill(MetricTable(_rows()))
    assert choices.chosen() == ("afriqa/test (gold passages only)", "cross", "en", "nDCG@10")
    ciral = ViewChoices("metric", "languages")  # a study of CIRAL alone opens in nDCG@20, as pyserini reports it
    ciral.refill(MetricTable([row for row in _rows() if row["eval_set"] == "ciral/test-b"]))
    assert ciral.chosen() == ("ciral/test-b", "mono", "en", "nDCG@20")

"""What a study's answer is about: the cross setting first, then the eval set built for the question."""

from __future__ import annotations

from vocabulary.answer_choice import answer_rank, dataset_of, headline_metric


def test_each_eval_set_is_read_in_its_benchmarks_headline_measure():
    assert headline_metric("ciral/test-b") == "nDCG@20"  # pyserini's 2CR reports CIRAL in nDCG@20
    assert headline_metric("afriqa/test (gold passages only)") == "nDCG@10"
    assert headline_metric("my-own-set/dev") == "nDCG@10"  # unknown to the registry: the default measure
    assert dataset_of("xquad-r/eval (held-out articles, own sentence splitter)") == "xquad-r"


def test_cross_lingual_comes_first_then_the_eval_set_built_for_the_question():
    measured = [("flores/test", "cross"), ("miracl/dev", "mono"), ("afriqa/test (gold passages only)", "cross"),
                ("ciral/test-b", "mono"), ("ciral/test-b", "cross"), ("flores/test", "multi")]
    ordered = sorted(measured, key=lambda pair: answer_rank(*pair))
    assert ordered == [("ciral/test-b", "cross"), ("afriqa/test (gold passages only)", "cross"),
                       ("flores/test", "cross"), ("flores/test", "multi"), ("ciral/test-b", "mono"),
                       ("miracl/dev", "mono")]

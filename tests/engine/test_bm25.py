"""BM25 through bm25s: Lucene scores and nDCG@10 through the evaluator checked by hand, tone marks kept,
trec_eval tie order."""

from __future__ import annotations

import math
import unicodedata

import pytest

from engine.bm25 import BM25Pool, tokenize
from engine.evaluate import evaluate_lexical
from engine.metrics import compute
from engine.trec import read_run
from vocabulary.records import EvalSet, Passage, Query

CORPUS = {"d1": "Mvua ilinyesha usiku.", "d2": "mvua, mvua kubwa!", "d3": "jua kali leo asubuhi"}


def lucene(tf: int, df: int, dl: int, n: int = 3, avgdl: float = 10 / 3, k1: float = 0.9, b: float = 0.4) -> float:
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))


def test_scores_equal_a_hand_computation():
    pool = BM25Pool.build(list(CORPUS), list(CORPUS.values()))
    expected = [lucene(1, 2, 3), lucene(2, 2, 3) + lucene(1, 1, 3), 0.0]
    assert pool.score("Mvua kubwa").tolist() == pytest.approx(expected, rel=1e-5)  # bm25s stores float32
    block = pool.scores(["Mvua kubwa"])
    assert block[0, :2].tolist() == pytest.approx(expected[:2], rel=1e-5)
    assert block[0, 2] == -math.inf  # d3 shares no word: not retrieved


def _eval_set(qrels: dict, queries: dict, bitext: bool = False) -> EvalSet:
    return EvalSet("hand", tuple(Query(q, text, "sw") for q, text in queries.items()),
                   tuple(Passage(pid, text, "sw") for pid, text in CORPUS.items()), qrels, bitext=bitext)


def test_ndcg_at_10_through_the_evaluator_equals_a_hand_computation(tmp_path):
    """q1 ranks d2, d1 (d3 not retrieved), d1 relevant at rank 2: nDCG@10 = (1 / log2 3) / 1.
    q2 ("jua") retrieves only d3, its relevant passage: 1. q3 shares no word with any passage: 0."""
    eval_set = _eval_set({"q1": {"d1": 1}, "q2": {"d3": 1}, "q3": {"d2": 1}},
                         {"q1": "Mvua kubwa", "q2": "jua", "q3": "ndege"})
    pool = BM25Pool.build(list(CORPUS), list(CORPUS.values()))
    result = evaluate_lexical(pool, eval_set, "hand", measures=("nDCG@10", "RR@10"), top_k=10, settings=("mono",),
                              run_dir=tmp_path)
    (cell,) = [c for c in result.per_query if c.metric == "nDCG@10"]
    assert dict(zip(cell.query_ids, cell.values)) == pytest.approx({"q1": 1 / math.log2(3), "q2": 1.0, "q3": 0.0})
    (row,) = [r for r in result.rows if (r.metric, r.query_language) == ("nDCG@10", "sw")]
    assert row.value == pytest.approx((1 / math.log2(3) + 1.0) / 3)
    run = read_run(tmp_path / "mono.sw-sw.run.gz")
    assert list(run["q1"]) == ["d2", "d1"] and list(run["q2"]) == ["d3"] and run.get("q3", {}) == {}
    # The run file scores the same with trec_eval's code (q3 retrieved nothing, so the file has no line of it).
    assert compute(eval_set.qrels, run, ["nDCG@10"])["nDCG@10"] == pytest.approx((1 / math.log2(3) + 1.0) / 2)


def test_yoruba_tone_marks_stay_inside_words_and_forms_agree():
    text = "Ọ̀rọ̀ àgbà, ọmọ!"
    assert tokenize(text) == ["ọ̀rọ̀", "àgbà", "ọmọ"]
    assert tokenize(unicodedata.normalize("NFD", text)) == tokenize(text)
    assert tokenize("orọ") != tokenize("ọrọ")  # the dot below is part of the word


def test_ties_break_by_id_descending_and_the_own_id_is_never_returned(tmp_path):
    corpus = {"a": "ndege", "b": "ndege", "c": "samaki"}
    eval_set = EvalSet("ties", (Query("x", "ndege", "sw"), Query("b", "ndege", "sw")),
                       tuple(Passage(pid, text, "sw") for pid, text in corpus.items()),
                       {"x": {"a": 1}, "b": {"a": 1}}, bitext=True)
    pool = BM25Pool.build(list(corpus), list(corpus.values()))
    evaluate_lexical(pool, eval_set, "ties", measures=("nDCG@10",), top_k=10, settings=("mono",), run_dir=tmp_path)
    run = read_run(tmp_path / "mono.sw-sw.run.gz")
    assert list(run["x"]) == ["b", "a"]
    assert list(run["b"]) == ["a"]  # a bitext query never retrieves itself


def test_scipy_builds_the_same_index_as_bm25s_default_backend():
    """The pool builds its matrix with scipy (less memory); the scores are bm25s' default ones, bit for bit."""
    import bm25s
    import numpy as np

    from engine.bm25 import token_ids

    rng = np.random.default_rng(2)
    words = ["mvua", "ilinyesha", "usiku", "kucha", "ọ̀rọ̀", "ilé", "ẹ̀kọ́", "soko", "jiji", "habari", "Ọjà"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 25))) for _ in range(300)]
    ours = BM25Pool.build([str(i) for i in range(300)], texts).retriever
    default = bm25s.BM25(k1=ours.k1, b=ours.b, method="lucene")
    default.index(token_ids(texts), show_progress=False)
    assert ours.csc_backend == "scipy" and default.csc_backend != "scipy"
    for name in ("data", "indices", "indptr"):
        assert np.array_equal(np.asarray(ours.scores[name]), np.asarray(default.scores[name]))
    for query in ("mvua usiku", "ọ̀rọ̀ ilé soko", "habari"):
        assert np.array_equal(ours.get_scores(tokenize(query)), default.get_scores(tokenize(query)))

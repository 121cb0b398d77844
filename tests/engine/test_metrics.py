"""IR measures against hand arithmetic and against ir_measures; rank helpers of the bias measures."""

from __future__ import annotations

import math

import ir_measures
import numpy as np
import pytest

from engine.metrics import (
    Measure,
    NoJudgedQueriesError,
    UnknownMeasureError,
    best_rank_per_language,
    compute,
    compute_per_query,
    exact_ranks,
    parse_measure,
    rank_distance,
)

LOG2_3 = math.log2(3)

# q1: b and c tie at 0.5; trec order puts the higher id first, so the ranking is a, c, b, e.
#     Relevant: a (1), c (2), d (1, judged but never retrieved); b is judged 0.
# q2: x and y tie at 0.7, so y comes first and the relevant x is at rank 2.
# q3: only a judgement of 0 -> no relevant document -> left out of every mean.
# q4: judged relevant n, but the run has no ranking for q4 -> 0 on every measure.
# q5: ranked but not judged -> ignored.
QRELS = {
    "q1": {"a": 1, "b": 0, "c": 2, "d": 1},
    "q2": {"x": 1},
    "q3": {"m": 0},
    "q4": {"n": 1},
}
RUN = {
    "q1": {"a": 0.9, "b": 0.5, "c": 0.5, "e": 0.2},
    "q2": {"x": 0.7, "y": 0.7, "z": 0.1},
    "q3": {"m": 0.3},
    "q5": {"a": 1.0},
}


def test_hand_computed_per_query_values():
    got = compute_per_query(QRELS, RUN, ["P@2", "R@2", "RR@10", "RR", "AP", "nDCG@3", "Success@1"])
    assert sorted(got) == ["q1", "q2", "q4"]
    q1, q2, q4 = got["q1"], got["q2"], got["q4"]
    # q1 gains in rank order: a=1, c=2, b=0, e=0; three relevant documents (a, c, d).
    assert q1["P@2"] == pytest.approx(2 / 2)  # an ascending tiebreak (a, b, c) would give 1/2
    assert q1["R@2"] == pytest.approx(2 / 3)
    assert q1["RR@10"] == pytest.approx(1.0)
    assert q1["AP"] == pytest.approx((1 / 1 + 2 / 2) / 3)  # ascending tiebreak: (1 + 2/3) / 3
    # DCG@3 = 1/log2(2) + 2/log2(3) + 0; ideal gains 2, 1, 1: 2/log2(2) + 1/log2(3) + 1/log2(4).
    assert q1["nDCG@3"] == pytest.approx((1 + 2 / LOG2_3) / (2 + 1 / LOG2_3 + 1 / 2))
    assert q1["Success@1"] == 1.0
    # q2 ranking y, x, z: the relevant x is second.
    assert q2["RR"] == pytest.approx(1 / 2)  # an ascending tiebreak would put x first: 1.0
    assert q2["P@2"] == pytest.approx(1 / 2)
    assert q2["AP"] == pytest.approx(1 / 2)
    assert q2["nDCG@3"] == pytest.approx((1 / LOG2_3) / 1)
    assert q2["Success@1"] == 0.0
    assert all(value == 0.0 for value in q4.values())


def test_means_average_the_judged_queries_only():
    got = compute(QRELS, RUN, ["RR", "AP", "P@2", "nDCG@3"])
    # Mean over q1, q2, q4 (q3 has no relevant document, q5 no judgement).
    assert got["RR"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert got["AP"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert got["P@2"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    nd_q1 = (1 + 2 / LOG2_3) / (2 + 1 / LOG2_3 + 1 / 2)
    assert got["nDCG@3"] == pytest.approx((nd_q1 + 1 / LOG2_3 + 0) / 3)


def test_graded_ndcg_uses_relevance_as_gain_and_ignores_negative_judgements():
    qrels = {"q": {"a": 3, "b": 1, "c": -2, "d": 0}}
    run = {"q": {"c": 0.9, "b": 0.8, "a": 0.7}}
    # Ranking c (gain 0: negative counts as 0), b (1), a (3).
    # DCG = 0 + 1/log2(3) + 3/log2(4); ideal 3, 1: 3 + 1/log2(3).
    want = (1 / LOG2_3 + 3 / 2) / (3 + 1 / LOG2_3)
    assert compute(qrels, run, ["nDCG"])["nDCG"] == pytest.approx(want)
    assert compute(qrels, run, ["nDCG@2"])["nDCG@2"] == pytest.approx((1 / LOG2_3) / (3 + 1 / LOG2_3))


def test_ir_measures_counts_an_unanswerable_query_where_we_leave_it_out():
    # Documents the one intended difference: ir_measures averages q3 (all judgements 0) in as 0.
    theirs = ir_measures.calc_aggregate([ir_measures.AP], QRELS, RUN)[ir_measures.AP]
    assert theirs == pytest.approx((2 / 3 + 1 / 2 + 0 + 0) / 4)
    assert compute(QRELS, RUN, ["AP"])["AP"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)


MEASURES = [
    "nDCG@1", "nDCG@3", "nDCG@5", "nDCG@10", "nDCG", "R@1", "R@3", "R@10", "RR", "AP", "AP@3",
    "AP@5", "P@1", "P@3", "P@5", "P@10", "Success@1", "Success@3", "Success@5",
]


def _random_case(rng: np.random.Generator) -> tuple[dict, dict]:
    docs = [f"d{i:02d}" for i in range(14)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(int(rng.integers(1, 7))):
        qid = f"q{q}"
        judged = rng.choice(docs, size=int(rng.integers(1, 8)), replace=False)
        qrels[qid] = {str(d): int(rng.choice([-1, 0, 0, 1, 1, 2, 3])) for d in judged}
        if rng.random() < 0.85:  # some judged queries are missing from the run
            ranked = rng.choice(docs, size=int(rng.integers(1, len(docs) + 1)), replace=False)
            # Scores on a coarse grid so ties are frequent.
            run[qid] = {str(d): float(rng.integers(0, 6)) / 4 for d in ranked}
    if rng.random() < 0.3:
        run["unjudged"] = {"d00": 1.0}
    return qrels, run


def test_agrees_with_ir_measures_on_random_runs_with_ties():
    rng = np.random.default_rng(20261125)
    reference = [ir_measures.parse_measure(m) for m in MEASURES + ["RR"]]
    cases = ties = unanswerable = 0
    for _ in range(400):
        qrels, run = _random_case(rng)
        answerable = {q: j for q, j in qrels.items() if any(r > 0 for r in j.values())}
        unanswerable += len(qrels) - len(answerable)
        ties += sum(len(set(r.values())) < len(r) for r in run.values())
        if not answerable:
            with pytest.raises(NoJudgedQueriesError):
                compute(qrels, run, MEASURES)
            continue
        cases += 1
        ours = compute(qrels, run, MEASURES)
        theirs = ir_measures.calc_aggregate(reference, answerable, run)
        for name in MEASURES:
            assert ours[name] == pytest.approx(theirs[ir_measures.parse_measure(name)], abs=1e-9), name
        per_query = compute_per_query(qrels, run, MEASURES)
        assert set(per_query) == set(answerable)
        for metric in ir_measures.iter_calc(reference, answerable, run):
            assert per_query[metric.query_id][str(metric.measure)] == pytest.approx(metric.value, abs=1e-9)
    assert cases > 300 and ties > 300 and unanswerable > 50  # the properties were really exercised


def test_rr_at_k_is_rr_cut_at_k_in_trec_order():
    # ir_measures' RR@k (msmarco provider) breaks ties by ascending id, so derive RR@k from its RR instead.
    rng = np.random.default_rng(7)
    for _ in range(200):
        qrels, run = _random_case(rng)
        answerable = {q: j for q, j in qrels.items() if any(r > 0 for r in j.values())}
        if not answerable:
            continue
        ours = compute_per_query(qrels, run, ["RR@1", "RR@3"])
        for metric in ir_measures.iter_calc([ir_measures.RR], answerable, run):
            rr = metric.value
            for k in (1, 3):
                want = rr if rr > 0 and 1 / rr <= k + 1e-9 else 0.0
                assert ours[metric.query_id][f"RR@{k}"] == pytest.approx(want, abs=1e-12)


def test_parse_measure():
    assert parse_measure("nDCG@10") == Measure("nDCG", 10)
    assert parse_measure("ndcg@10").name == "nDCG@10"
    assert parse_measure("AP") == Measure("AP")
    assert parse_measure(" success@5 ").name == "Success@5"
    with pytest.raises(UnknownMeasureError, match=r"unknown measure 'MRR@10': supported are nDCG, .*Success@k"):
        parse_measure("MRR@10")
    with pytest.raises(UnknownMeasureError, match="needs a cutoff, e.g. P@10"):
        parse_measure("P")
    with pytest.raises(UnknownMeasureError, match="whole number >= 1"):
        parse_measure("nDCG@0")
    with pytest.raises(UnknownMeasureError, match="whole number"):
        parse_measure("R@ten")


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"query 'q1', document 'a': the score is NaN"):
        compute({"q1": {"a": 1}}, {"q1": {"a": float("nan")}}, ["AP"])
    with pytest.raises(NoJudgedQueriesError, match="no query in the qrels has a relevant document"):
        compute({"q1": {"a": 0}}, {"q1": {"a": 1.0}}, ["AP"])
    with pytest.raises(ValueError, match="no measures"):
        compute(QRELS, RUN, [])


def test_exact_ranks_follow_trec_order_over_the_whole_pool():
    ids = np.array(["p0", "p1", "p2", "p3", "p4", "p5"])
    scores = np.array([0.2, 0.9, 0.5, 0.5, -np.inf, 0.1])  # p4 masked (the query itself)
    id_order = np.argsort(np.argsort(ids))
    # Full order: p1 (0.9), p3 (0.5, higher id wins the tie), p2 (0.5), p0, p5, p4 (masked, last).
    ranks = exact_ranks(scores, id_order, np.array([2, 3, 5, 1]))
    assert ranks.tolist() == [3, 2, 5, 1]
    # The same ranks from a plain sort of (score, id) descending.
    order = sorted(range(6), key=lambda i: (scores[i], ids[i]), reverse=True)
    assert [order.index(i) + 1 for i in (2, 3, 5, 1)] == ranks.tolist()


def test_rank_distance_uses_each_languages_best_relevant_passage():
    best = best_rank_per_language([7, 2, 40, 5], ["en", "sw", "yo", "sw"])
    assert best == {"en": 7, "sw": 2, "yo": 40}
    assert rank_distance(best) == 40 - 2
    assert rank_distance({"en": 3}) is None  # one language: no bias to measure

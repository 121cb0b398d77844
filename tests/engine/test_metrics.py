"""IR measures against hand arithmetic and trec_eval's own code (pytrec_eval); full depth; the bias rank helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval

from engine.metrics import (
    Measure,
    NoJudgedQueriesError,
    UnknownMeasureError,
    best_rank_per_language,
    complete_run,
    compute,
    compute_per_query,
    cut_like_trec_eval,
    exact_ranks,
    full_depth_values,
    parse_measure,
    rank_distance,
    trec_order,
)

LOG2_3 = math.log2(3)

# q1: b and c tie at 0.5; trec order puts the higher id first, so the ranking is a, c, b, e.
#     Relevant: a (1), c (2), d (1, judged but never retrieved); b is judged 0.
# q2: x and y tie at 0.7, so y comes first and the relevant x is at rank 2.
# q3: only a judgement of 0 -> nothing relevant -> 0 on every measure, and it counts in the mean.
# q4: judged relevant n, but the run has no ranking for q4 -> skipped (trec_eval without -c).
# q5: ranked but not judged -> skipped.
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


def test_the_issue_example_scores_a_query_judged_with_nothing_relevant_as_zero():
    # trec_eval: q1 ranks its relevant d1 first (1.0), q2 is judged with nothing relevant (0.0): mean 0.5.
    qrels = {"q1": {"d1": 1}, "q2": {"d5": 0}}
    for q2_ranking in ({"d5": 0.3, "d9": 0.2}, {}):
        run = {"q1": {"d1": 0.9, "d2": 0.1}, "q2": q2_ranking}
        assert compute(qrels, run, ["nDCG@10"]) == {"nDCG@10": 0.5}
    assert compute_per_query(qrels, {"q1": {"d1": 0.9}, "q2": {}}, ["nDCG@10"]) == {
        "q1": {"nDCG@10": 1.0}, "q2": {"nDCG@10": 0.0}}


def test_hand_computed_per_query_values():
    got = compute_per_query(QRELS, RUN, ["P@2", "R@2", "RR@10", "RR", "AP", "nDCG@3", "Success@1"])
    assert list(got) == ["q1", "q2", "q3"]  # qrels order; q4 not in the run, q5 not judged
    q1, q2, q3 = got["q1"], got["q2"], got["q3"]
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
    assert all(value == 0.0 for value in q3.values())
    assert list(q1) == ["P@2", "R@2", "RR@10", "RR", "AP", "nDCG@3", "Success@1"]  # the order asked for


def test_means_average_every_query_in_both_qrels_and_run_and_complete_adds_the_rest():
    got = compute(QRELS, RUN, ["RR", "AP"])
    assert got["RR"] == pytest.approx((1 + 1 / 2 + 0) / 3)  # q1, q2 and the unanswerable q3
    assert got["AP"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    completed = complete_run(QRELS, RUN)  # trec_eval -c: the judged q4, missing from the run, scores 0
    assert completed["q4"] == {} and completed["q5"] == RUN["q5"]
    assert compute(QRELS, completed, ["RR"])["RR"] == pytest.approx((1 + 1 / 2 + 0 + 0) / 4)


def test_graded_ndcg_uses_relevance_as_gain_and_ignores_negative_judgements():
    qrels = {"q": {"a": 3, "b": 1, "c": -2, "d": 0}}
    run = {"q": {"c": 0.9, "b": 0.8, "a": 0.7}}
    # Ranking c (gain 0: negative counts as 0), b (1), a (3).
    # DCG = 0 + 1/log2(3) + 3/log2(4); ideal 3, 1: 3 + 1/log2(3).
    want = (1 / LOG2_3 + 3 / 2) / (3 + 1 / LOG2_3)
    assert compute(qrels, run, ["nDCG"])["nDCG"] == pytest.approx(want)
    assert compute(qrels, run, ["nDCG@2"])["nDCG@2"] == pytest.approx((1 / LOG2_3) / (3 + 1 / LOG2_3))


MEASURES = [
    "nDCG@1", "nDCG@3", "nDCG@5", "nDCG@10", "nDCG", "R@1", "R@3", "R@10", "RR", "AP", "AP@3",
    "AP@5", "P@1", "P@3", "P@5", "P@10", "Success@1", "Success@3", "Success@5",
]
#: Our name -> trec_eval's measure (and its output key with "." -> "_").
TREC_NAMES = {
    "nDCG": "ndcg", "RR": "recip_rank", "AP": "map", **{f"nDCG@{k}": f"ndcg_cut.{k}" for k in (1, 3, 5, 10)},
    **{f"R@{k}": f"recall.{k}" for k in (1, 3, 10)}, **{f"AP@{k}": f"map_cut.{k}" for k in (3, 5)},
    **{f"P@{k}": f"P.{k}" for k in (1, 3, 5, 10)}, **{f"Success@{k}": f"success.{k}" for k in (1, 3, 5)},
}


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


def test_agrees_with_trec_eval_on_random_graded_runs_with_ties_and_unanswerable_queries():
    rng = np.random.default_rng(20261125)
    reference_measures = set(TREC_NAMES.values())
    cases = ties = unanswerable = qrels_only = run_only = 0
    for _ in range(400):
        qrels, run = _random_case(rng)
        common = set(qrels) & set(run)
        unanswerable += sum(not any(r > 0 for r in qrels[q].values()) for q in common)
        ties += sum(len(set(r.values())) < len(r) for r in run.values())
        qrels_only += len(set(qrels) - set(run))
        run_only += len(set(run) - set(qrels))
        if not common:
            with pytest.raises(NoJudgedQueriesError):
                compute(qrels, run, MEASURES)
            continue
        cases += 1
        # trec_eval reads outside its tables on negative judgements (engine.metrics): give it 0, which it
        # treats alike in every measure, and our answer must be the same from the raw qrels.
        clamped = {q: {d: max(r, 0) for d, r in docs.items()} for q, docs in qrels.items()}
        theirs = pytrec_eval.RelevanceEvaluator(clamped, reference_measures).evaluate(run)
        ours = compute_per_query(qrels, run, MEASURES)
        assert set(ours) == set(theirs) == common
        for qid, values in ours.items():
            for name in MEASURES:
                assert values[name] == theirs[qid][TREC_NAMES[name].replace(".", "_")], (qid, name)
        means = compute(qrels, run, MEASURES)
        for name in MEASURES:
            assert means[name] == pytest.approx(np.mean([theirs[q][TREC_NAMES[name].replace(".", "_")] for q in theirs]))
    assert cases > 300 and ties > 300 and unanswerable > 50 and qrels_only > 50 and run_only > 50


def test_rr_at_k_is_rr_cut_at_k_in_trec_order():
    rng = np.random.default_rng(7)
    for _ in range(200):
        qrels, run = _random_case(rng)
        if not set(qrels) & set(run):
            continue
        ours = compute_per_query(qrels, run, ["RR@1", "RR@3", "RR"])
        for qid, values in ours.items():
            rr = values["RR"]
            for k in (1, 3):
                want = rr if rr > 0 and 1 / rr <= k + 1e-9 else 0.0
                assert values[f"RR@{k}"] == pytest.approx(want, abs=1e-12)


def test_a_cut_keeps_trec_eval_order_among_ties():
    # Nine documents above, then a and z tied at ranks 10/11: trec_eval puts z 10th, so a relevant a is not in the top 10.
    ranking = {f"h{i}": 2.0 - i / 10 for i in range(9)} | {"a": 0.5, "z": 0.5}
    assert [doc for doc, _ in trec_order(ranking)][9:] == ["z", "a"]
    assert list(cut_like_trec_eval({"q": ranking}, 10)["q"])[-1] == "z"
    values = compute_per_query({"q": {"a": 1}}, {"q": ranking}, ["RR@10", "nDCG@10", "RR"])["q"]
    assert values == {"RR@10": 0.0, "nDCG@10": 0.0, "RR": pytest.approx(1 / 11)}


def test_full_depth_values_equal_trec_eval_on_the_complete_ranking():
    rng = np.random.default_rng(11)
    measures = [parse_measure(m) for m in ("AP", "RR", "nDCG")]
    checked = missing = 0
    for _ in range(300):
        pool = [f"p{i:03d}" for i in range(int(rng.integers(5, 60)))]
        scores = {p: float(rng.integers(0, 8)) / 8 for p in pool}  # heavy ties
        judged = {str(p): int(rng.choice([-1, 0, 1, 1, 2, 3])) for p in rng.choice(pool, size=min(6, len(pool)), replace=False)}
        if rng.random() < 0.4:  # a relevant passage the pool lacks: never retrieved
            judged["absent"] = 2
            missing += 1
        order = [doc for doc, _ in trec_order(scores)]
        ranks = {doc: order.index(doc) + 1 for doc, rel in judged.items() if rel > 0 and doc in scores}
        ours = full_depth_values(judged, ranks, measures)
        clamped = {"q": {doc: max(rel, 0) for doc, rel in judged.items()}}
        theirs = pytrec_eval.RelevanceEvaluator(clamped, {"map", "recip_rank", "ndcg"}).evaluate({"q": scores})["q"]
        assert ours["AP"] == pytest.approx(theirs["map"], abs=1e-12)
        assert ours["RR"] == pytest.approx(theirs["recip_rank"], abs=1e-12)
        assert ours["nDCG"] == pytest.approx(theirs["ndcg"], abs=1e-12)
        checked += 1
    assert checked == 300 and missing > 80
    with pytest.raises(ValueError, match="AP@10 has a cutoff"):
        full_depth_values({"a": 1}, {"a": 1}, [parse_measure("AP@10")])


def test_negative_judgements_count_as_non_relevant_without_upsetting_trec_eval():
    # The sequence that made pytrec_eval's nDCG hang on raw negative judgements (two of the random cases).
    first = ({"q0": {"d13": 1}, "q1": {"d04": -1, "d06": 3, "d10": 3, "d03": 1}},
             {"q0": {"d01": 0.0, "d13": 0.25}, "q1": {"d06": 0.75, "d04": 0.0, "d10": 1.0}})
    second = ({"q0": {"d13": -1}, "q1": {"d13": 3}}, {"q0": {"d08": 0.0, "d11": 1.0}, "q1": {"d11": 0.0, "d13": 1.25}})
    for _ in range(20):
        compute_per_query(*first, ["nDCG", "AP"])
        assert compute_per_query(*second, ["nDCG", "AP"]) == {"q0": {"nDCG": 0.0, "AP": 0.0},
                                                              "q1": {"nDCG": 1.0, "AP": 1.0}}


def test_parse_measure():
    assert parse_measure("nDCG@10") == Measure("nDCG", 10)
    assert parse_measure("ndcg@10").name == "nDCG@10"
    assert parse_measure("AP") == Measure("AP")
    assert parse_measure(" success@5 ").name == "Success@5"
    assert (parse_measure("AP@100").trec_measure, parse_measure("RR@10").trec_measure) == ("map_cut.100", "recip_rank")
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
    with pytest.raises(NoJudgedQueriesError, match="no query is both judged in the qrels and ranked in the run"):
        compute({"q1": {"a": 1}}, {"q2": {"a": 1.0}}, ["AP"])
    with pytest.raises(ValueError, match="no measures"):
        compute(QRELS, RUN, [])
    # numpy scalars (float32 scores, int64 judgements) are what the evaluator holds; pytrec_eval refuses them raw.
    assert compute({"q": {"a": np.int64(1)}}, {"q": {"a": np.float32(0.5)}}, ["AP"]) == {"AP": 1.0}


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


def test_a_non_finite_score_is_never_rewarded_with_a_rank():
    """Comparisons with NaN are false: a relevant passage scored NaN (or +inf) must rank last, not first."""
    ids = np.array(["p0", "p1", "p2", "p3"])
    id_order = np.argsort(np.argsort(ids))
    scores = np.array([np.nan, 0.9, 0.5, np.inf])
    assert exact_ranks(scores, id_order, np.array([0, 1, 2, 3])).tolist() == [4, 1, 2, 3]

"""The evaluator: full-corpus search, self-match masking, bias ranks, caching, errors, row structure.

Tests that need a ranking known in advance use ``HandEncoder``, which maps each
text to a vector written in the test (one axis per passage, so a query's score
for every passage is set by hand). The model-dependent paths run on the real
``tiny_encoder``.
"""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest
import pytrec_eval

from engine.evaluate import EmbeddingCache, EvalSetError, approximate_recall, build_index, evaluate, search
from engine.metrics import trec_order
from engine.state import TaskState
from engine.trec import as_json, read_qrels, read_run, score_files
from vocabulary.records import EvalSet, Passage, Query


class HandEncoder:
    """Text -> the vector a test wrote for it (normalised); other texts (cache probes) -> a fixed vector."""

    def __init__(self, dim: int, query_vectors: dict[str, list[float]], passage_vectors: dict[str, list[float]]):
        self.dim = dim
        self.vectors = {"query": query_vectors, "passage": passage_vectors}

    def encode(self, texts, kind, batch_size=64, progress=None, max_length=None):
        rows = np.array([self.vectors[kind].get(t, [1.0] + [0.0] * (self.dim - 1)) for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def one_hot_encoder(passage_ids: list[str], query_weights: dict[str, dict[str, float]]) -> HandEncoder:
    """Passage i is axis i; a query's weights are its (unnormalised) scores for the passages."""
    axis = {pid: i for i, pid in enumerate(passage_ids)}
    passages = {pid: [1.0 if j == axis[pid] else 0.0 for j in range(len(passage_ids))] for pid in passage_ids}
    queries = {}
    for qid, weights in query_weights.items():
        vector = [0.0] * len(passage_ids)
        for pid, weight in weights.items():
            vector[axis[pid]] = weight
        queries[qid] = vector
    return HandEncoder(len(passage_ids), queries, passages)


def test_an_unjudged_distractor_counts_against_the_judged_passage():
    # The distractor scores 0.9 against the relevant passage's 0.5. Ranking only the judged passages
    # (rel, non) would put rel first: RR 1.0, nDCG@10 1.0. The full corpus puts it second.
    passages = ["rel", "dist", "non"]
    encoder = one_hot_encoder(passages, {"q": {"rel": 0.5, "dist": 0.9, "non": 0.1}})
    eval_set = EvalSet(
        "distractor",
        (Query("q", "q", "en"),),
        tuple(Passage(p, p, "en") for p in passages),
        {"q": {"rel": 1, "non": 0}},
    )
    rows = evaluate(encoder, eval_set, "toy/test", measures=["RR@10", "nDCG@10"], top_k=10, settings=["mono"]).rows
    values = {(r.query_language, r.metric): r.value for r in rows}
    assert values[("en", "RR@10")] == pytest.approx(1 / 2)
    assert values[("en", "nDCG@10")] == pytest.approx(1 / np.log2(3))  # gain 1 at rank 2, ideal 1 at rank 1


# Bitext (FLORES-style): a sentence has the same id as query and as passage. Scores are set per
# query; "self" weights would win if the query's own passage were not masked.
BITEXT_PASSAGES = ["en:1", "en:2", "en:9", "sw:1", "sw:2", "yo:1", "yo:2"]
BITEXT_WEIGHTS = {
    # en:1 -> sw:1 (1), en:9 (2), yo:2 (3), yo:1 (4), then the zero scores by id descending: sw:2, en:2.
    "en:1": {"en:1": 10, "sw:1": 9, "en:9": 8, "yo:2": 7, "yo:1": 6},
    # sw:1 -> en:1 and yo:1 tie; the higher id wins: yo:1 (1), en:1 (2).
    "sw:1": {"sw:1": 10, "en:1": 5, "yo:1": 5},
    # yo:1 -> en:2 (1), sw:2 (2), en:9 (3), then zeros by id descending: yo:2 (4), sw:1 (5), en:1 (6).
    "yo:1": {"yo:1": 10, "en:2": 9, "sw:2": 8, "en:9": 7},
}


def bitext_set() -> EvalSet:
    queries = tuple(Query(q, q, q[:2]) for q in BITEXT_WEIGHTS)
    qrels = {q: {other: 1 for other in BITEXT_WEIGHTS if other != q} for q in BITEXT_WEIGHTS}
    return EvalSet("bitext", queries, tuple(Passage(p, p, p[:2]) for p in BITEXT_PASSAGES), qrels, bitext=True)


def test_bias_measures_use_exact_ranks_beyond_top_k_and_mask_the_query_itself(tmp_path):
    encoder = one_hot_encoder(BITEXT_PASSAGES, BITEXT_WEIGHTS)
    rows = evaluate(encoder, bitext_set(), "bitext/test", measures=["RR@2"], top_k=2, run_dir=tmp_path).rows
    multi = {(r.query_language, r.passage_language, r.metric): r.value for r in rows if r.setting == "multi"}
    # Best rank of each language's relevant passage (computed in BITEXT_WEIGHTS' comments):
    # en:1 -> sw 1, yo 4 (beyond top_k=2, still exact);  sw:1 -> en 2, yo 1;  yo:1 -> en 6, sw 5.
    assert multi[("en", "sw", "MeanRank")] == 1 and multi[("en", "yo", "MeanRank")] == 4
    assert multi[("sw", "en", "MeanRank")] == 2 and multi[("sw", "yo", "MeanRank")] == 1
    assert multi[("yo", "en", "MeanRank")] == 6 and multi[("yo", "sw", "MeanRank")] == 5
    assert multi[("all", "en", "MeanRank")] == (2 + 6) / 2
    assert multi[("all", "yo", "MeanRank")] == (4 + 1) / 2
    # Rank distance (worst - best language): en:1 4-1=3, sw:1 2-1=1, yo:1 6-5=1.
    assert multi[("en", "all", "LangBias")] == 3
    assert multi[("all", "all", "LangBias")] == pytest.approx((3 + 1 + 1) / 3)
    # RR@2 in the pool: en:1 finds sw:1 first (1), sw:1 finds yo:1 first (1), yo:1 nothing in its top 2 (0).
    assert multi[("all", "all", "RR@2")] == pytest.approx(2 / 3)
    # Masking: no query's ranking holds its own id, and the own-language passage never counts.
    assert sorted(p.name for p in tmp_path.glob("*.run.gz")) == [
        "cross.en-sw.run.gz", "cross.en-yo.run.gz", "cross.sw-en.run.gz", "cross.sw-yo.run.gz",
        "cross.yo-en.run.gz", "cross.yo-sw.run.gz", "multi.en-all.run.gz", "multi.sw-all.run.gz", "multi.yo-all.run.gz"]
    assert sorted(p.name for p in tmp_path.glob("qrels.*")) == ["qrels.all.txt", "qrels.en.txt", "qrels.sw.txt",
                                                                 "qrels.yo.txt"]
    for path in tmp_path.glob("*.run.gz"):
        for qid, ranking in read_run(path).items():
            assert qid not in ranking
    assert not [r for r in rows if r.setting == "mono"]  # nothing in a query's own language is relevant
    assert ("en", "en", "MeanRank") not in multi


def test_outside_bitext_sets_a_query_may_retrieve_the_passage_that_shares_its_id():
    # MIRACL yo: query "yo:10020#0" and passage "yo:10020#0" are different texts; 32 yo dev positives are like that.
    passages = ["yo:10020#0", "yo:10020#1"]
    encoder = one_hot_encoder(passages, {"yo:10020#0": {"yo:10020#0": 0.9, "yo:10020#1": 0.1}})
    eval_set = toy_set({"yo:10020#0": {"yo:10020#0": 1}}, {p: "yo" for p in passages}, passages)
    result = evaluate(encoder, eval_set, "miracl/dev", measures=["RR@10"], top_k=10, settings=["mono"])
    assert [r.value for r in result.rows if r.query_language == "yo"] == [1.0]


def test_cross_cells_search_one_language_and_skip_cells_without_judgements():
    encoder = one_hot_encoder(BITEXT_PASSAGES, BITEXT_WEIGHTS)
    rows = evaluate(encoder, bitext_set(), "bitext/test", measures=["RR@2"], top_k=2, settings=["cross"]).rows
    cross = {(r.query_language, r.passage_language): (r.value, r.num_queries) for r in rows if r.metric == "RR@2"}
    # yo:1 against the sw passages only: sw:2 (8) then sw:1 (0) -> RR@2 = 1/2.
    # yo:1 against en only: en:2, en:9, en:1 -> rank 3 -> 0.  en:1 against yo only: yo:2, yo:1 -> 1/2.
    assert cross[("yo", "sw")] == (0.5, 1)
    assert cross[("yo", "en")] == (0.0, 1)
    assert cross[("en", "yo")] == (0.5, 1)
    assert cross[("en", "sw")] == (1.0, 1) and cross[("sw", "en")] == (1.0, 1) and cross[("sw", "yo")] == (1.0, 1)
    assert cross[("all", "all")] == (pytest.approx((0.5 + 0 + 0.5 + 1 + 1 + 1) / 6), 6)
    assert len(cross) == 7  # six ordered pairs + the all row; no (X, X) cell, no NaN rows
    assert len(rows) == 8  # and the micro all row (equal here: one query per cell)


def test_flat_search_equals_numpy_brute_force_top_k():
    rng = np.random.default_rng(3)
    passages = rng.normal(size=(500, 24)).astype(np.float32)
    queries = rng.normal(size=(40, 24)).astype(np.float32)
    ids = [f"p{i:03d}" for i in range(500)]
    run = search(build_index(passages, "flat"), queries, [f"q{i}" for i in range(40)], ids, 10)
    brute = queries @ passages.T
    for i in range(40):
        top = np.argsort(-brute[i])[:10]
        assert list(run[f"q{i}"]) == [ids[j] for j in top]
        assert list(run[f"q{i}"].values()) == pytest.approx(brute[i, top].tolist(), abs=1e-5)


def test_approximate_indexes_report_their_recall_against_exact_search():
    rng = np.random.default_rng(5)
    passages = rng.normal(size=(3000, 16)).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    assert approximate_recall(queries, passages, "flat", 10) == 1.0
    assert 0.8 <= approximate_recall(queries, passages, "hnsw", 10) <= 1.0
    assert 0.3 <= approximate_recall(queries, passages, "ivf", 10) <= 1.0


def test_clear_errors_name_the_eval_set():
    encoder = HandEncoder(2, {}, {})
    passages = (Passage("p", "p", "en"),)
    with pytest.raises(EvalSetError, match="flores/test: the eval set has no queries"):
        evaluate(encoder, EvalSet("x", (), passages, {}), "flores/test")
    no_relevant = EvalSet("x", (Query("q", "q", "en"),), passages, {"q": {"p": 0}, "other": {"p": 1}})
    with pytest.raises(EvalSetError, match="flores/test: no query has a relevant passage"):
        evaluate(encoder, no_relevant, "flores/test")
    with pytest.raises(ValueError, match="flores/test: no measures"):
        evaluate(encoder, EvalSet("x", (Query("q", "q", "en"),), passages, {"q": {"p": 1}}), "flores/test", measures=[])
    twice = EvalSet("x", (Query("q", "q", "en"), Query("q", "r", "en")), passages, {"q": {"p": 1}})
    with pytest.raises(EvalSetError, match="query id 'q' appears more than once"):
        evaluate(encoder, twice, "flores/test")
    ok = EvalSet("x", (Query("q", "q", "en"),), passages, {"q": {"p": 1}})
    with pytest.raises(ValueError, match="R@100 needs a ranking of depth 100, but top_k is 10"):
        evaluate(encoder, ok, "flores/test", top_k=10)
    with pytest.raises(ValueError, match="unknown setting 'bilingual'"):
        evaluate(encoder, ok, "flores/test", settings=["bilingual"])


# ---- with the real tiny encoder -----------------------------------------------

SENTENCES = {
    "en": ["The river floods every spring.", "She sold the old car.", "Rain fell all night.", "The market opens early."],
    "sw": ["Mto hufurika kila masika.", "Aliuza gari la zamani.", "Mvua ilinyesha usiku kucha.", "Soko hufunguliwa mapema."],
    "yo": ["Odò náà máa ń kún ní gbogbo ìgbà ìrúwé.", "Ó ta ọkọ̀ àtijọ́ náà.", "Òjò rọ̀ ní gbogbo òru.", "Ọjà ṣí ní kùtùkùtù."],
}


def parallel_set() -> EvalSet:
    """FLORES-style: 4 sentences in 3 languages, ids '<lang>:<n>', each query's translations relevant."""
    items = [(f"{lang}:{n}", text, lang) for lang, texts in SENTENCES.items() for n, text in enumerate(texts)]
    qrels = {
        qid: {pid: 1 for pid, _, plang in items if pid.split(":")[1] == qid.split(":")[1] and plang != lang}
        for qid, _, lang in items
    }
    return EvalSet(
        "parallel",
        tuple(Query(i, t, lang) for i, t, lang in items),
        tuple(Passage(i, t, lang) for i, t, lang in items) + (Passage("en:x", "An unrelated distractor.", "en"),),
        qrels,
        bitext=True,
    )


class CountingEncoder:
    """The real encoder, counting how many corpus passages it was asked to encode."""

    def __init__(self, encoder, corpus: set[str]):
        self.encoder = encoder
        self.corpus = corpus
        self.passages_encoded = 0

    def encode(self, texts, kind, batch_size=64, progress=None, max_length=None):
        if kind == "passage":
            self.passages_encoded += sum(t in self.corpus for t in texts)
        return self.encoder.encode(texts, kind, batch_size=batch_size, progress=progress, max_length=max_length)


def test_end_to_end_rows_with_the_tiny_encoder(tiny_encoder, tmp_path):
    stages = []
    result = evaluate(
        tiny_encoder, parallel_set(), "parallel/test", measures=["nDCG@10", "RR@10", "AP"], top_k=10,
        run_dir=tmp_path, state=TaskState(lambda progress: stages.append(progress.phase)),
    )
    rows = result.rows
    assert {"encoding queries", "encoding passages", "searching"} <= set(stages)
    keys = {(r.setting, r.query_language, r.passage_language, r.metric): r for r in rows}
    languages = ("en", "sw", "yo")
    for metric in ("nDCG@10", "RR@10"):
        for x in languages:
            assert ("multi", x, "all", metric) in keys
            for y in languages:
                assert (("cross", x, y, metric) in keys) == (x != y)
        assert keys[("cross", "all", "all", metric)].num_queries == 6 * 4
        assert keys[("multi", "all", "all", metric)].num_queries == 12
    assert not [r for r in rows if r.setting == "mono"]  # own-language copies are not relevant
    assert keys[("multi", "all", "all", "LangBias")].num_queries == 12
    assert all(0.0 <= r.value <= 1.0 for r in rows if r.metric in ("nDCG@10", "RR@10"))
    assert all(1 <= r.value <= 12 for r in rows if r.metric == "MeanRank")  # 13 passages minus the query itself
    # The written run and qrels reproduce the cells' measures with a cutoff through the metrics command, exactly.
    cutoff_cells = [key for key in keys if key[1] != "all" and key[3] in ("nDCG@10", "RR@10")]
    assert len(cutoff_cells) == (6 + 3) * 2
    for setting, x, y, metric in cutoff_cells:
        got = score_files(tmp_path / f"qrels.{y}.txt", tmp_path / f"{setting}.{x}-{y}.run.gz", [metric])
        assert as_json(got, by_query=False)[metric] == keys[(setting, x, y, metric)].value
    # Every cell's per-query values average to its row.
    cells = {(c.setting, c.query_language, c.passage_language, c.metric): c for c in result.per_query}
    assert set(cells) == {key for key in keys if key[1] != "all"}
    for key, cell in cells.items():
        assert len(cell.query_ids) == len(cell.values) == keys[key].num_queries
        assert math.fsum(cell.values) / len(cell.values) == pytest.approx(keys[key].value, abs=1e-15)


def test_passages_are_encoded_once_across_settings_and_calls(tiny_encoder, tmp_path):
    eval_set = parallel_set()
    counting = CountingEncoder(tiny_encoder, {p.text for p in eval_set.passages})
    cache = EmbeddingCache(tmp_path / "cache")
    first = evaluate(counting, eval_set, "parallel/test", measures=["RR@10"], top_k=10, cache=cache)
    assert counting.passages_encoded == len(eval_set.passages)  # three settings, one encoding
    evaluate(counting, eval_set, "parallel/test", measures=["RR@10"], top_k=10, cache=cache)
    assert counting.passages_encoded == len(eval_set.passages)
    # A new process (a fresh cache on the same folder) reads the .npy files instead of encoding.
    fresh = CountingEncoder(tiny_encoder, counting.corpus)
    again = evaluate(fresh, eval_set, "parallel/test", measures=["RR@10"], top_k=10, cache=EmbeddingCache(tmp_path / "cache"))
    assert fresh.passages_encoded == 0
    assert again == first
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    # Another passage length is another encoding, cached apart.
    evaluate(fresh, eval_set, "parallel/test", measures=["RR@10"], top_k=10, cache=EmbeddingCache(tmp_path / "cache"),
             passage_max_length=16)
    assert fresh.passages_encoded == len(eval_set.passages)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


# ---- trec_eval semantics in cells, partial corpora, full depth, averages --------------------------------------


def toy_set(qrels: dict, languages: dict[str, str] | None = None, passages: list[str] | None = None) -> EvalSet:
    """Queries and passages whose ids are their texts; languages from ``languages`` (default English)."""
    languages = languages or {}
    query_ids = sorted(qrels)
    passage_ids = passages or sorted({p for judged in qrels.values() for p in judged})
    return EvalSet(
        "toy",
        tuple(Query(q, q, languages.get(q, "en")) for q in query_ids),
        tuple(Passage(p, p, languages.get(p, "en")) for p in passage_ids),
        qrels,
    )


def test_a_query_judged_with_nothing_relevant_scores_zero_and_counts():
    # The example: q1 finds its relevant p1 first, q2 is judged (p2: 0) with nothing relevant.
    eval_set = toy_set({"q1": {"p1": 1}, "q2": {"p2": 0}})
    encoder = one_hot_encoder(["p1", "p2"], {"q1": {"p1": 0.9, "p2": 0.1}, "q2": {"p2": 0.9, "p1": 0.1}})
    result = evaluate(encoder, eval_set, "toy/test", measures=["nDCG@10", "AP"], top_k=10, settings=["mono"])
    cell = {(r.query_language, r.metric): (r.value, r.num_queries) for r in result.rows}
    assert cell[("en", "nDCG@10")] == (0.5, 2) and cell[("en", "AP")] == (0.5, 2)
    (ndcg,) = [c for c in result.per_query if c.metric == "nDCG@10"]
    assert (ndcg.query_ids, ndcg.values) == (("q1", "q2"), (1.0, 0.0))


def test_relevant_passages_missing_from_the_corpus_count_as_never_retrieved_with_a_warning():
    eval_set = toy_set({"q1": {"p1": 1, "gone": 1}, "q2": {"p2": 1}}, passages=["p1", "p2"])
    encoder = one_hot_encoder(["p1", "p2"], {"q1": {"p1": 0.9}, "q2": {"p2": 0.9}})
    result = evaluate(encoder, eval_set, "toy/test", measures=["nDCG@10", "R@10", "AP"], top_k=10, settings=["mono"])
    q1 = {c.metric: dict(zip(c.query_ids, c.values))["q1"] for c in result.per_query}
    assert q1["R@10"] == 0.5 and q1["AP"] == 0.5
    assert q1["nDCG@10"] == pytest.approx(1 / (1 + 1 / math.log2(3)))  # found at rank 1; ideal holds both
    assert result.warnings == [
        "toy/test: 1 of 3 relevant judgements name passages missing from the corpus; they count as relevant and "
        "never retrieved, so every score is a lower bound: give the whole corpus"]


def test_ap_rr_and_ndcg_without_cutoff_are_at_full_depth_and_equal_trec_eval_on_the_complete_ranking(tmp_path):
    # 30 passages in two languages; q's relevant passages sit at ranks 3, 15 and 27 of the pool, top_k is 10.
    pool = [f"{lang}:{i:02d}" for lang in ("en", "sw") for i in range(15)]
    scores = {pid: 1.0 - n / 40 for n, pid in enumerate(sorted(pool, key=lambda p: (int(p[3:]), p)))}
    order = [pid for pid, _ in trec_order(scores)]
    relevant = {order[2]: 1, order[14]: 2, order[26]: 1}
    qrels = {"q": relevant | {order[0]: 0}}
    eval_set = EvalSet("deep", (Query("q", "q", "en"),), tuple(Passage(p, p, p[:2]) for p in pool), qrels)
    encoder = one_hot_encoder(pool, {"q": scores})
    result = evaluate(encoder, eval_set, "deep/test", measures=["AP", "AP@10", "RR", "nDCG", "nDCG@10"], top_k=10,
                      settings=["multi"], run_dir=tmp_path)
    got = {r.metric: r.value for r in result.rows if r.query_language == "en"}
    assert got["AP"] == pytest.approx((1 / 3 + 2 / 15 + 3 / 27) / 3)
    assert got["AP@10"] == pytest.approx((1 / 3) / 3)
    complete = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recip_rank", "ndcg", "map_cut.10", "ndcg_cut.10"})
    theirs = complete.evaluate({"q": scores})["q"]
    assert got["AP"] == pytest.approx(theirs["map"], abs=1e-12)
    assert got["RR"] == pytest.approx(theirs["recip_rank"], abs=1e-12) and got["RR"] == pytest.approx(1 / 3)
    assert got["nDCG"] == pytest.approx(theirs["ndcg"], abs=1e-12)
    assert got["AP@10"] == pytest.approx(theirs["map_cut_10"], abs=1e-12)
    assert got["nDCG@10"] == pytest.approx(theirs["ndcg_cut_10"], abs=1e-12)
    # The stored top 10 is the complete ranking's top 10, and it reproduces AP@10 (not AP, which needs depth 27).
    stored = read_run(tmp_path / "multi.en-all.run.gz")["q"]
    assert list(stored) == order[:10]
    from_file = as_json(score_files(tmp_path / "qrels.all.txt", tmp_path / "multi.en-all.run.gz", ["AP@10", "AP"]), False)
    assert from_file["AP@10"] == pytest.approx(got["AP@10"]) and from_file["AP"] < got["AP"]
    assert read_qrels(tmp_path / "qrels.all.txt") == qrels


def test_ties_are_cut_in_trec_order(tmp_path):
    # Every passage scores the same: trec_eval ranks by id descending, and so must the top_k that is kept.
    pool = [f"p{i}" for i in range(12)]
    encoder = one_hot_encoder(pool, {"q": {p: 1.0 for p in pool}})
    eval_set = toy_set({"q": {"p0": 1, "p5": 1}}, passages=pool)
    result = evaluate(encoder, eval_set, "ties/test", measures=["RR@10", "R@5", "R@10", "AP"], top_k=10,
                      settings=["mono"], run_dir=tmp_path)
    got = {r.metric: r.value for r in result.rows if r.query_language == "en"}
    order = sorted(pool, reverse=True)  # p9, p8, p7, p6, p5, p4, p3, p2, p11, p10, p1, p0 (string order)
    assert list(read_run(tmp_path / "mono.en-en.run.gz")["q"]) == order[:10]
    assert got["R@5"] == 0.5 and got["R@10"] == 0.5 and got["RR@10"] == 1 / 5  # p5 5th, p0 12th: beyond the cut
    assert got["AP"] == pytest.approx((1 / 5 + 2 / 12) / 2)


def test_all_rows_are_macro_over_language_pairs_and_micro_over_queries():
    # Cross cells (en, yo) with three queries (RR@1: 1, 0, 0) and (sw, yo) with one (RR@1: 1).
    qrels = {"en:a": {"yo:a": 1}, "en:b": {"yo:b": 1}, "en:c": {"yo:c": 1}, "sw:a": {"yo:a": 1}}
    passages = ["yo:a", "yo:b", "yo:c"]
    languages = {pid: pid[:2] for pid in list(qrels) + passages}
    weights = {"en:a": {"yo:a": 1.0}, "en:b": {"yo:a": 1.0}, "en:c": {"yo:a": 1.0}, "sw:a": {"yo:a": 1.0}}
    result = evaluate(one_hot_encoder(passages, weights), toy_set(qrels, languages, passages), "pairs/test",
                      measures=["RR@1"], top_k=1, settings=["cross"])
    rows = {(r.query_language, r.passage_language, r.metric): (r.value, r.num_queries) for r in result.rows}
    assert rows[("en", "yo", "RR@1")] == (pytest.approx(1 / 3), 3) and rows[("sw", "yo", "RR@1")] == (1.0, 1)
    assert rows[("all", "all", "RR@1")] == (pytest.approx((1 / 3 + 1) / 2), 4)  # the paper's macro average
    assert rows[("all", "all", "RR@1 (micro)")] == (pytest.approx(2 / 4), 4)


class RecordingEncoder(HandEncoder):
    """A HandEncoder that records the prefix kind and token length of every call."""

    def __init__(self, *args):
        super().__init__(*args)
        self.calls: list[tuple[str, int | None, int]] = []

    def encode(self, texts, kind, batch_size=64, progress=None, max_length=None):
        self.calls.append((kind, max_length, len(texts)))
        return super().encode(texts, kind if kind in self.vectors else "query", batch_size, progress, max_length)


@pytest.mark.parametrize(("symmetric", "queries", "passages"), [(False, ("query", None), ("passage", 512)),
                                                                 (True, ("query", 512), ("query", 512))])
def test_passages_are_encoded_at_their_own_length_and_bitext_symmetrically(symmetric, queries, passages):
    base = one_hot_encoder(["p1", "p2"], {"q": {"p1": 1.0}})
    encoder = RecordingEncoder(base.dim, base.vectors["query"], base.vectors["passage"])
    if symmetric:  # passages are encoded as queries: they need query vectors of their own
        encoder.vectors["query"].update(base.vectors["passage"])
    eval_set = toy_set({"q": {"p1": 1}}, passages=["p1", "p2"])
    evaluate(encoder, eval_set, "toy/test", measures=["RR@10"], top_k=10, settings=["mono"], passage_max_length=512,
             symmetric=symmetric)
    assert encoder.calls == [(*queries, 1), (*passages, 2)]


def test_the_encoder_truncates_at_the_length_it_is_given(tiny_encoder):
    long_text = "Mvua ilinyesha usiku kucha na mto ukafurika. " * 30  # far beyond the settings' 128 tokens
    default = tiny_encoder.encode([long_text], "passage")
    assert not np.allclose(tiny_encoder.encode([long_text], "passage", max_length=512), default)
    assert np.allclose(tiny_encoder.encode([long_text], "passage", max_length=tiny_encoder.settings.max_length), default)
    assert np.allclose(tiny_encoder.encode([long_text], "passage", max_length=10_000),
                       tiny_encoder.encode([long_text], "passage", max_length=512))  # capped at the model's 512


def test_a_symmetric_bitext_set_encodes_each_sentence_once(tiny_encoder):
    eval_set = parallel_set()
    calls = []

    class Recording:
        def encode(self, texts, kind, **options):
            calls.append((kind, options.get("max_length"), len(texts)))
            return tiny_encoder.encode(texts, kind, **options)

    symmetric = evaluate(Recording(), eval_set, "parallel/test", measures=["RR@10", "AP"], top_k=10, symmetric=True,
                         passage_max_length=64)
    assert calls == [("query", 64, 0), ("query", 64, len(eval_set.passages))]  # the 12 queries are 12 of the passages

    class BothSidesAsQueries:  # what symmetric encoding means, done the long way: every text encoded on its own
        def encode(self, texts, kind, **options):
            return tiny_encoder.encode(texts, "query", **{**options, "max_length": 64})

    apart = evaluate(BothSidesAsQueries(), eval_set, "parallel/test", measures=["RR@10", "AP"], top_k=10)
    assert [(r.setting, r.query_language, r.passage_language, r.metric) for r in symmetric.rows] == [
        (r.setting, r.query_language, r.passage_language, r.metric) for r in apart.rows]
    assert [r.value for r in symmetric.rows] == pytest.approx([r.value for r in apart.rows], abs=1e-6)


def test_the_texts_file_holds_every_query_and_the_relevant_and_top_5_passages_only(tmp_path):
    # q1's top 5 are p11..p7 and p0 is relevant to it; q2's top 5 are p0..p4. p5 and p6 are neither in a top 5
    # nor relevant (p6 is judged not relevant), so their texts are left out.
    pool = [f"p{i}" for i in range(12)]
    encoder = one_hot_encoder(pool, {"q1": {p: 0.05 * int(p[1:]) + 0.01 for p in pool},
                                     "q2": {p: 0.9 - 0.1 * int(p[1:]) for p in pool[:5]}})
    eval_set = toy_set({"q1": {"p0": 1}, "q2": {"p1": 1, "p6": 0}}, passages=pool)
    evaluate(encoder, eval_set, "toy/test", measures=["RR@10"], top_k=10, settings=["mono"], run_dir=tmp_path)
    with gzip.open(tmp_path / "texts.jsonl.gz", "rt", encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    queries = {line["query"]: line["text"] for line in lines if "query" in line}
    passages = {line["passage"]: line["text"] for line in lines if "passage" in line}
    assert queries == {"q1": "q1", "q2": "q2"}
    assert set(passages) == {"p11", "p10", "p9", "p8", "p7", "p0", "p1", "p2", "p3", "p4"}
    assert all(passages[p] == p for p in passages)  # toy passages' texts are their ids


def test_passages_encoded_in_shards_give_the_same_vectors_values_and_run_files(tiny_encoder, tmp_path, monkeypatch):
    """A corpus larger than a shard is tokenised and encoded a shard at a time (memory grows with the vectors
    only); the result is the one encoding it whole gives."""
    import engine.evaluate as evaluator

    rng = np.random.default_rng(3)
    words = ["mvua", "ilinyesha", "usiku", "kucha", "ọ̀rọ̀", "ilé", "ẹ̀kọ́", "soko", "jiji", "habari"]
    passages = tuple(Passage(f"p{i}", " ".join(rng.choice(words, size=rng.integers(3, 40))), "sw") for i in range(300))
    queries = tuple(Query(f"q{i}", " ".join(rng.choice(words, size=4)), "sw") for i in range(20))
    eval_set = EvalSet("shards", queries, passages, {f"q{i}": {f"p{7 * i}": 1, f"p{7 * i + 1}": 1} for i in range(20)})
    whole = evaluate(tiny_encoder, eval_set, "e", run_dir=tmp_path / "whole")
    monkeypatch.setattr(evaluator, "PASSAGE_SHARD", 64)
    sharded = evaluate(tiny_encoder, eval_set, "e", run_dir=tmp_path / "sharded")
    assert sharded.per_query == whole.per_query and sharded.rows == whole.rows
    for name in ("mono.sw-sw.run.gz", "multi.sw-all.run.gz"):
        ours, theirs = (read_run(tmp_path / side / name) for side in ("sharded", "whole"))
        # The same rankings; a score may differ in its last float32 bits, as with another batch size
        # (a batch's padded length changes the shapes the matrix products run at).
        assert {q: list(r) for q, r in ours.items()} == {q: list(r) for q, r in theirs.items()}
        assert all(ours[q][p] == pytest.approx(theirs[q][p], abs=1e-6) for q in ours for p in ours[q])


def test_non_finite_vectors_fail_the_evaluation_in_one_line_naming_model_eval_set_and_count():
    queries = (Query("q1", "one", "en"), Query("q2", "two", "en"))
    passages = (Passage("p1", "a", "en"), Passage("p2", "b", "en"))
    eval_set = EvalSet("toy", queries, passages, {"q1": {"p1": 1}, "q2": {"p2": 1}})
    encoder = HandEncoder(2, {"one": [1.0, 0.0], "two": [float("nan"), 0.0]}, {"a": [1.0, 0.0], "b": [0.0, 1.0]})
    encoder.spec = "hand:nan"
    with pytest.raises(ValueError) as failed:
        evaluate(encoder, eval_set, "toy/test", settings=("mono",))
    message = str(failed.value)
    assert "\n" not in message
    assert "hand:nan" in message and "toy/test" in message and "1 of 2 query vectors" in message


def test_a_sharded_corpus_counts_its_passages_across_shards_in_one_phase(tiny_encoder, monkeypatch):
    """The provenance record takes passages/s from one phase's ``items``: they must grow to the corpus size,
    not restart at each shard."""
    import engine.evaluate as evaluator
    from engine.evaluate import TextEncoding, encode_passages
    from engine.state import TaskState

    passages = tuple(Passage(f"p{i}", f"habari ya leo {i}", "sw") for i in range(150))
    monkeypatch.setattr(evaluator, "PASSAGE_SHARD", 64)
    heard = []
    encode_passages(tiny_encoder, passages, 16, TaskState(heard.append), TextEncoding(64, False))
    items = [p.items for p in heard if p.phase == "encoding passages" and p.items is not None]
    assert items[0] == 0 and items.count(0) == 1 and items == sorted(items) and items[-1] == len(passages)

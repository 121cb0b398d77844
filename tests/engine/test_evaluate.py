"""The evaluator: full-corpus search, self-match masking, bias ranks, caching, errors, row structure.

Tests that need a ranking known in advance use ``HandEncoder``, which maps each
text to a vector written in the test (one axis per passage, so a query's score
for every passage is set by hand). The model-dependent paths run on the real
``tiny_encoder``.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.evaluate import EmbeddingCache, EvalSetError, approximate_recall, build_index, evaluate, search
from engine.state import TaskState
from engine.trec import metrics_command, read_run
from vocabulary.records import EvalSet, Passage, Query


class HandEncoder:
    """Text -> the vector a test wrote for it (normalised); other texts (cache probes) -> a fixed vector."""

    def __init__(self, dim: int, query_vectors: dict[str, list[float]], passage_vectors: dict[str, list[float]]):
        self.dim = dim
        self.vectors = {"query": query_vectors, "passage": passage_vectors}

    def encode(self, texts, kind, batch_size=64, progress=None):
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
    rows = evaluate(encoder, eval_set, "toy/test", measures=["RR@10", "nDCG@10"], top_k=10, settings=["mono"])
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
    return EvalSet("bitext", queries, tuple(Passage(p, p, p[:2]) for p in BITEXT_PASSAGES), qrels)


def test_bias_measures_use_exact_ranks_beyond_top_k_and_mask_the_query_itself(tmp_path):
    encoder = one_hot_encoder(BITEXT_PASSAGES, BITEXT_WEIGHTS)
    rows = evaluate(encoder, bitext_set(), "bitext/test", measures=["RR@2"], top_k=2, run_dir=tmp_path)
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
    for path in tmp_path.glob("*.run"):
        for qid, ranking in read_run(path).items():
            assert qid not in ranking
    assert not [r for r in rows if r.setting == "mono"]  # nothing in a query's own language is relevant
    assert ("en", "en", "MeanRank") not in multi


def test_cross_cells_search_one_language_and_skip_cells_without_judgements():
    encoder = one_hot_encoder(BITEXT_PASSAGES, BITEXT_WEIGHTS)
    rows = evaluate(encoder, bitext_set(), "bitext/test", measures=["RR@2"], top_k=2, settings=["cross"])
    cross = {(r.query_language, r.passage_language): (r.value, r.num_queries) for r in rows}
    # yo:1 against the sw passages only: sw:2 (8) then sw:1 (0) -> RR@2 = 1/2.
    # yo:1 against en only: en:2, en:9, en:1 -> rank 3 -> 0.  en:1 against yo only: yo:2, yo:1 -> 1/2.
    assert cross[("yo", "sw")] == (0.5, 1)
    assert cross[("yo", "en")] == (0.0, 1)
    assert cross[("en", "yo")] == (0.5, 1)
    assert cross[("en", "sw")] == (1.0, 1) and cross[("sw", "en")] == (1.0, 1) and cross[("sw", "yo")] == (1.0, 1)
    assert cross[("all", "all")] == (pytest.approx((0.5 + 0 + 0.5 + 1 + 1 + 1) / 6), 6)
    assert len(cross) == 7  # six ordered pairs + the all row; no (X, X) cell, no NaN rows


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
    )


class CountingEncoder:
    """The real encoder, counting how many corpus passages it was asked to encode."""

    def __init__(self, encoder, corpus: set[str]):
        self.encoder = encoder
        self.corpus = corpus
        self.passages_encoded = 0

    def encode(self, texts, kind, batch_size=64, progress=None):
        if kind == "passage":
            self.passages_encoded += sum(t in self.corpus for t in texts)
        return self.encoder.encode(texts, kind, batch_size=batch_size, progress=progress)


def test_end_to_end_rows_with_the_tiny_encoder(tiny_encoder, tmp_path):
    stages = []
    rows = evaluate(
        tiny_encoder, parallel_set(), "parallel/test", measures=["nDCG@10", "RR@10"], top_k=10,
        run_dir=tmp_path, state=TaskState(lambda progress: stages.append(progress.phase)),
    )
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
    # The written run and qrels reproduce the rows through the metrics command.
    for (setting, x, y, metric), row in keys.items():
        if metric == "RR@10" and x != "all":
            got = metrics_command(tmp_path / f"{setting}.{x}-{y}.qrels", tmp_path / f"{setting}.{x}-{y}.run", ["RR@10"], False)
            assert got["RR@10"] == pytest.approx(row.value, abs=5e-5)


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

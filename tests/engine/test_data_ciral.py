"""CIRAL sw/yo: shipped topics + qrels, a corpus folder in the hub's layout written here, BM25 and a dense
model scored by the evaluator and checked against pytrec_eval on the run files it writes."""

from __future__ import annotations

import gzip
import json
import lzma
from collections import defaultdict

import pytest
import pytrec_eval

from engine.bm25 import BM25Pool
from engine.data import DataError, DataNotFoundError, ciral
from engine.data.files import DATA_ROOT
from engine.data.hub import DATA_DIR_ENV
from engine.evaluate import evaluate, evaluate_lexical, passage_text
from vocabulary.config import EvalSpec
from vocabulary.datasets import DATASETS


def _shipped(name: str) -> list[list[str]]:
    """Whitespace-split lines of a shipped CIRAL file, read independently of the loader."""
    folder = "qrels" if name.startswith("qrels") else "topics"
    text = lzma.decompress((DATA_ROOT / "ciral" / folder / f"{name}.xz").read_bytes()).decode("utf-8")
    return [line.split("\t") if folder == "topics" else line.split() for line in text.splitlines() if line.strip()]


def _write_repo(root, lang: str, skip: set[str] = frozenset()) -> dict[str, str]:
    """A copy of CIRAL/ciral-corpus holding every judged passage of ``lang`` test-a (the relevant ones carry
    their native question's words) and 50 distractors, at passages-v1.0/<name>_passages.jsonl."""
    native = {qid: text for qid, text in _shipped(f"topics.ciral-v1.0-{lang}-test-a-native.tsv")}
    texts = {}
    for qid, _, docid, relevance in _shipped(f"qrels.ciral-v1.0-{lang}-test-a.tsv"):
        words = native[qid] if relevance == "1" else "ìròyìn mìíràn"
        texts.setdefault(docid, f"{words} {docid}")
    texts.update({f"X#{i}#0": f"ọjà ìlú Èkó {i}" for i in range(50)})
    folder = root / "passages-v1.0"
    folder.mkdir(parents=True)
    lines = [json.dumps({"docid": d, "title": "Àkọlé", "text": t, "url": "https://example.org"}, ensure_ascii=False)
             for d, t in texts.items() if d not in skip]
    (folder / f"{ciral.NAMES[lang]}_passages.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return texts


@pytest.fixture(scope="module")
def yo_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("ciral-corpus")
    return root, _write_repo(root, "yo")


def test_yo_test_a_has_english_and_native_questions_over_the_local_hub_copy(yo_repo):
    root, texts = yo_repo
    eval_set = ciral.load_eval_set(EvalSpec("ciral", ("yo",), "test-a", path=str(root)))
    english = [q for q in eval_set.queries if q.language == "en"]
    native = [q for q in eval_set.queries if q.language == "yo"]
    assert (len(english), len(native), len(eval_set.passages)) == (100, 100, len(texts))
    assert english[0].id == "en:yo:24" and english[0].text == "What football club does Paul Pogba play football for ?"
    assert native[0].id == "yo:24"
    assert eval_set.qrels["en:yo:24"]["yo:BBC#3475#4"] == 1 == eval_set.qrels["yo:24"]["yo:BBC#3475#4"]
    judgements = [r for judged in eval_set.qrels.values() for r in judged.values()]
    assert (len(judgements), sum(judgements)) == (2 * 1921, 2 * 459)
    assert {p.title for p in eval_set.passages} == {"Àkọlé"}


def test_bm25_and_a_dense_model_on_yo_test_a_equal_trec_eval_on_their_run_files(yo_repo, tiny_encoder, tmp_path):
    root, _ = yo_repo
    eval_set = ciral.load_eval_set(EvalSpec("ciral", ("yo",), "test-a", path=str(root)))
    measures = DATASETS["ciral"].measures
    assert measures[:2] == ("nDCG@20", "R@100")
    bm25 = BM25Pool.build([p.id for p in eval_set.passages], [passage_text(p) for p in eval_set.passages])
    results = {
        "bm25": evaluate_lexical(bm25, eval_set, "bm25", measures=measures, run_dir=tmp_path / "bm25"),
        "dense": evaluate(tiny_encoder, eval_set, "dense", measures=measures, run_dir=tmp_path / "dense",
                          batch_size=256),
    }
    for name, evaluation in results.items():
        rows = {(r.setting, r.query_language, r.passage_language, r.metric): r for r in evaluation.rows}
        for setting, x in (("cross", "en"), ("mono", "yo")):
            qrels = _read_qrels(tmp_path / name / "qrels.yo.txt", prefix=f"{x}:" if x == "en" else "yo:")
            run = _read_run(tmp_path / name / f"{setting}.{x}-yo.run.gz")
            assert len(qrels) == 100
            # trec_eval -c: a judged query without a ranking scores 0 and still counts.
            expected = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.20", "recall.100"}).evaluate(run)
            for metric, trec in (("nDCG@20", "ndcg_cut_20"), ("R@100", "recall_100")):
                row = rows[(setting, x, "yo", metric)]
                assert row.num_queries == 100
                values = [expected.get(q, {}).get(trec, 0.0) for q in qrels]
                assert row.value == pytest.approx(sum(values) / 100, abs=1e-12), (name, setting, metric)
    bm25_rows = {(r.setting, r.metric): r.value for r in results["bm25"].rows if r.query_language != "all"}
    assert bm25_rows[("mono", "nDCG@20")] > 0.5  # native questions share their words with their passages


def test_a_passage_missing_from_the_corpus_counts_as_never_retrieved_with_a_warning(tmp_path, tiny_encoder):
    positive = "BBC#3475#4"
    _write_repo(tmp_path, "yo", skip={positive})
    eval_set = ciral.load_eval_set(EvalSpec("ciral", ("yo",), "test-a", path=str(tmp_path)))
    assert eval_set.absent_languages[f"yo:{positive}"] == "yo"
    bm25 = BM25Pool.build([p.id for p in eval_set.passages], [passage_text(p) for p in eval_set.passages])
    evaluation = evaluate_lexical(bm25, eval_set, "bm25", measures=("R@100",))
    assert any("missing from the corpus" in w for w in evaluation.warnings)


def test_one_jsonl_file_a_data_folder_and_the_errors(tmp_path, monkeypatch):
    texts = _write_repo(tmp_path / "CIRAL" / "ciral-corpus", "yo")
    file = tmp_path / "CIRAL" / "ciral-corpus" / "passages-v1.0" / "yoruba_passages.jsonl"
    assert len(ciral.load_eval_set(EvalSpec("ciral", ("yo",), "dev", path=str(file))).passages) == len(texts)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert len(ciral.load_eval_set(EvalSpec("ciral", ("yo",), "test-b")).passages) == len(texts)
    with pytest.raises(DataNotFoundError, match="not laid out like hub repo CIRAL/ciral-corpus"):
        ciral.load_eval_set(EvalSpec("ciral", ("yo",), "test-a", path=str(tmp_path)))
    with pytest.raises(DataError, match="one corpus file but 2 languages"):
        ciral.load_eval_set(EvalSpec("ciral", ("sw", "yo"), "test-a", path=str(file)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"docid": "A#1#0", "text": "ọ̀rọ̀"}\n{"docid": "A#1#1", "title": "t"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl line 2: missing field 'text'|bad.jsonl line 2: field 'text' is null"):
        ciral.load_eval_set(EvalSpec("ciral", ("yo",), "test-a", path=str(bad)))


def test_dev_has_native_questions_only_and_pools_use_test_a_questions(yo_repo):
    root, _ = yo_repo
    dev = ciral.load_eval_set(EvalSpec("ciral", ("yo",), "dev", path=str(root)))
    assert {q.language for q in dev.queries} == {"yo"} and len(dev.queries) == 10
    pools = ciral.load_eval_set(EvalSpec("ciral", ("yo",), "test-a-pools", path=str(root)))
    assert len(pools.queries) == 200
    assert sum(len(j) for j in pools.qrels.values()) == 2 * 8311


def _read_qrels(path, prefix: str) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, _, docid, relevance = line.split()
        if qid.startswith(prefix):
            qrels[qid][docid] = int(relevance)
    return dict(qrels)


def _read_run(path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = defaultdict(dict)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            qid, _, docid, _rank, score, _tag = line.split()
            run[qid][docid] = float(score)
    return dict(run)


def test_sw_test_b_upstream_flaws_are_logged_not_fatal(yo_repo, caplog):
    """sw test-b's qrels name 114 query ids, its English topics 113; its native topics repeat 237 (the English
    file has 238 there): the first 237 is kept, and each flaw is one warning naming the file."""
    corpus = yo_repo[0] / "passages-v1.0" / "yoruba_passages.jsonl"
    with caplog.at_level("WARNING", logger="engine.data.ciral"):
        eval_set = ciral.load_eval_set(EvalSpec("ciral", ("sw",), "test-b", path=str(corpus)))
    assert (sum(q.language == "en" for q in eval_set.queries), sum(q.language == "sw" for q in eval_set.queries)) \
        == (113, 112)
    assert next(q.text for q in eval_set.queries if q.id == "sw:237").startswith("Ni virusi gani hatari")
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("topics/topics.ciral-v1.0-sw-test-b-native.tsv.xz line") and "query id 237 again" in m
               for m in messages)
    assert any(m.startswith("topics/topics.ciral-v1.0-sw-test-b.tsv.xz: 1 judged query ids without a topic")
               for m in messages)


def test_a_bm25_run_of_the_executor_scores_ciral_with_its_published_measures(yo_repo, tmp_path):
    """What a worker runs: ``include_bm25``'s run on CIRAL yo test-a, scored with nDCG@20 and R@100 over all 100
    questions, equal to evaluating its pool directly."""
    from engine.study import execute
    from vocabulary.config import RunConfig
    from vocabulary.strategies import NO_TRAINING

    spec = EvalSpec("ciral", ("yo",), "test-a", path=str(yo_repo[0]))
    config = RunConfig(model="bm25", strategy=NO_TRAINING, train_size=0, alpha=None, evaluations=(spec,))
    rows = {(r.setting, r.query_language, r.passage_language, r.metric): r for r in execute(config, tmp_path).rows}
    eval_set = ciral.load_eval_set(spec)
    bm25 = BM25Pool.build([p.id for p in eval_set.passages], [passage_text(p) for p in eval_set.passages])
    direct = {(r.setting, r.query_language, r.passage_language, r.metric): r.value
              for r in evaluate_lexical(bm25, eval_set, "d", measures=DATASETS["ciral"].measures).rows}
    for cell in (("cross", "en", "yo"), ("mono", "yo", "yo")):
        for metric in ("nDCG@20", "R@100"):
            assert rows[(*cell, metric)].num_queries == 100
            assert rows[(*cell, metric)].value == direct[(*cell, metric)]

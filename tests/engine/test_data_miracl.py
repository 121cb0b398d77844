"""MIRACL sw/yo: shipped topics + qrels, a corpus generated here (JSONL, TSV, gz, xz), offline failure."""

from __future__ import annotations

import gzip
import json
import lzma
import tracemalloc
import zlib

import pytest

from engine.data import DataError, DataNotFoundError, miracl
from engine.data.files import DATA_ROOT
from engine.data.hub import DATA_DIR_ENV
from vocabulary.config import EvalSpec


def _judged_docids(lang: str, split: str) -> list[tuple[str, str, int]]:
    """(qid, docid, relevance) read from the shipped qrels independently of the loader."""
    text = lzma.decompress((DATA_ROOT / "miracl" / f"qrels.miracl-v1.0-{lang}-{split}.tsv.xz").read_bytes()).decode()
    return [(q, d, int(r)) for q, _, d, r in (line.split("\t") for line in text.splitlines())]


@pytest.fixture(scope="module")
def yo_corpus(tmp_path_factory):
    """Every judged yo dev passage except the positives of query 10020#0, plus two distractors, as JSONL."""
    qrels = _judged_docids("yo", "dev")
    dropped = {d for q, d, r in qrels if q == "10020#0" and r > 0}
    docids = sorted({d for _, d, _ in qrels} - dropped) + ["999#0", "999#1"]
    path = tmp_path_factory.mktemp("corpus") / "docs-0.jsonl"
    path.write_text("".join(json.dumps({"docid": d, "title": "Ẹ̀kọ́", "text": f"ọ̀rọ̀ {d}"}) + "\n" for d in docids))
    return path, docids, dropped


def test_yo_dev_counts_keep_explicit_negatives_and_queries_without_passages(yo_corpus):
    path, docids, dropped = yo_corpus
    eval_set = miracl.load_eval_set(EvalSpec("miracl", ("yo",), "dev", path=str(path)))
    assert eval_set.name == "miracl/dev"
    assert len(eval_set.queries) == 119
    assert len(eval_set.passages) == len(docids)
    judgements = [rel for judged in eval_set.qrels.values() for rel in judged.values()]
    assert (len(judgements), sum(r > 0 for r in judgements), judgements.count(0)) == (1188, 144, 1044)
    queries = {q.id: q for q in eval_set.queries}
    assert queries["yo:10020#0"].text == "Odun wo ni wọn ṣe idije Olympiiki akọkọ?"
    assert eval_set.qrels["yo:10020#0"]["yo:10020#1"] == 1 and eval_set.qrels["yo:10020#0"]["yo:10020#0"] == 0
    passage_ids = {p.id for p in eval_set.passages}
    assert not {f"yo:{d}" for d in dropped} & passage_ids  # its positive is absent, the query stays
    passage = next(p for p in eval_set.passages if p.id == "yo:999#1")
    assert (passage.language, passage.title, passage.text) == ("yo", "Ẹ̀kọ́", "ọ̀rọ̀ 999#1")


@pytest.mark.parametrize(("lang", "split", "topics", "judgements", "positives"),
                         [("sw", "dev", 482, 5092, 910), ("sw", "train", 1901, 9359, 2687)])
def test_sw_topic_and_qrel_counts(tmp_path, lang, split, topics, judgements, positives):
    (tmp_path / "corpus.tsv").write_text("1#0\tTitle\tText\n")
    eval_set = miracl.load_eval_set(EvalSpec("miracl", (lang,), split, path=str(tmp_path / "corpus.tsv")))
    assert len(eval_set.queries) == topics
    values = [rel for judged in eval_set.qrels.values() for rel in judged.values()]
    assert (len(values), sum(r > 0 for r in values)) == (judgements, positives)


def test_tsv_gz_xz_folder_and_per_language_folders(tmp_path):
    corpus = tmp_path / "miracl-corpus"
    yo, sw = corpus / "miracl-corpus-v1.0-yo", corpus / "sw"
    yo.mkdir(parents=True)
    sw.mkdir()
    (yo / "a.tsv.gz").write_bytes(gzip.compress("docid\ttitle\ttext\n10020#1\tOlympiiki\tIdije\n".encode()))
    (yo / "b.tsv.xz").write_bytes(lzma.compress("10020#2\tLaisi akole\n".encode()))
    (yo / "notes.txt").write_text("ignored: not a corpus file")
    (sw / "docs.jsonl").write_text(json.dumps({"docid": "6#0", "text": "Mombasa"}) + "\n")
    eval_set = miracl.load_eval_set(EvalSpec("miracl", ("sw", "yo"), "dev", path=str(corpus)))
    passages = {p.id: (p.title, p.text) for p in eval_set.passages}
    assert passages == {"sw:6#0": ("", "Mombasa"), "yo:10020#1": ("Olympiiki", "Idije"), "yo:10020#2": ("", "Laisi akole")}
    assert len(eval_set.queries) == 482 + 119


def _dev(path, languages=("yo",)) -> EvalSpec:
    return EvalSpec("miracl", languages, "dev", path=str(path))


def test_corpus_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("1#0\ttitle\ttext\textra\n")
    with pytest.raises(DataError, match=r"bad\.tsv line 1: 4 fields; expected docid<TAB>title<TAB>text or docid<TAB>text"):
        miracl.load_eval_set(_dev(bad))
    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"docid": "1#0", "text": "a"}\n{"docid": "1#0", "text": "b"}\n')
    with pytest.raises(DataError, match=r"miracl/dev: passage id 'yo:1#0' appears 2 times"):
        miracl.load_eval_set(_dev(twice))
    nodoc = tmp_path / "nodoc.jsonl"
    nodoc.write_text('{"id": "1#0", "text": "a"}\n')
    with pytest.raises(DataError, match=r"nodoc\.jsonl line 1: missing field 'docid'"):
        miracl.load_eval_set(_dev(nodoc))
    with pytest.raises(DataError, match=r"one corpus file but 2 languages"):
        miracl.load_eval_set(_dev(twice, ("sw", "yo")))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match=r"empty: no \*\.jsonl or \*\.tsv corpus files"):
        miracl.load_eval_set(_dev(empty))
    with pytest.raises(DataNotFoundError, match=r"^miracl: no yo train topics; available: sw dev, sw train, yo dev$"):
        miracl.load_eval_set(EvalSpec("miracl", ("yo",), "train", path=str(twice)))


@pytest.mark.timeout(60)
def test_offline_hub_corpus_says_pass_a_corpus(monkeypatch):
    datasets = pytest.importorskip("datasets")
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import: set it as the env says
    with pytest.raises(DataNotFoundError, match=r"^miracl yo: corpus not available offline: pass --corpus PATH"):
        miracl.load_eval_set(EvalSpec("miracl", ("yo",), "dev"))


def test_a_null_text_is_an_error_naming_the_file_and_line(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"docid": "10020#1", "title": "T", "text": "Idije"}\n{"docid": "10020#2", "text": null}\n')
    with pytest.raises(DataError, match=r"docs\.jsonl line 2: field 'text' is null, not text"):
        miracl.load_eval_set(_dev(corpus))
    corpus.write_text('{"docid": null, "text": "Idije"}\n')
    with pytest.raises(DataError, match=r"docs\.jsonl line 1: field 'docid' is null"):
        miracl.load_eval_set(_dev(corpus))
    corpus.write_text('{"docid": "10020#1", "title": null, "text": "Idije"}\n')  # a null title is an empty one
    assert miracl.load_eval_set(_dev(corpus)).passages[0].title == ""


def test_a_one_line_corpus_does_not_make_a_perfect_score(tmp_path, tiny_encoder):
    """Issue 14 item 9: the missing relevant passages count as never retrieved, and the result says how many."""
    from engine.evaluate import evaluate

    corpus = tmp_path / "one.jsonl"
    corpus.write_text(json.dumps({"docid": "10020#1", "title": "Olympiiki", "text": "Idije Olympiiki"}) + "\n")
    eval_set = miracl.load_eval_set(_dev(corpus))
    result = evaluate(tiny_encoder, eval_set, "miracl/dev", measures=["nDCG@10", "R@100"], settings=["mono"])
    rows = {r.metric: r for r in result.rows if r.query_language == "yo"}
    # All 119 judged queries score, not just the one whose positive is the corpus line (its only positive).
    assert rows["nDCG@10"].num_queries == 119 and rows["nDCG@10"].value < 0.01
    assert eval_set.qrels["yo:10020#0"]["yo:10020#1"] == 1
    assert rows["R@100"].value == pytest.approx(1 / 119)
    assert result.warnings == [
        "miracl/dev: 143 of 144 relevant judgements name passages missing from the corpus; they count as relevant "
        "and never retrieved, so every score is a lower bound: give the whole corpus"]


def test_a_copy_of_the_hub_repo_and_a_data_folder_are_read_through_the_hub_path(tmp_path, monkeypatch):
    repo = tmp_path / "miracl" / "miracl-corpus"
    (repo / "miracl-corpus-v1.0-yo").mkdir(parents=True)
    lines = [{"docid": "10020#1", "title": "Olympiiki", "text": "Idije"}, {"docid": "10020#2", "title": "", "text": "Laisi"}]
    (repo / "miracl-corpus-v1.0-yo" / "docs-0.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode()))
    expected = {"yo:10020#1": ("Olympiiki", "Idije"), "yo:10020#2": ("", "Laisi")}
    eval_set = miracl.load_eval_set(_dev(repo))
    assert {p.id: (p.title, p.text) for p in eval_set.passages} == expected
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    eval_set = miracl.load_eval_set(EvalSpec("miracl", ("yo",), "dev"))
    assert {p.id: (p.title, p.text) for p in eval_set.passages} == expected
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(DataNotFoundError, match=r"^miracl yo: corpus not available offline.*elsewhere/miracl/miracl-corpus: no such"):
        miracl.load_eval_set(EvalSpec("miracl", ("yo",), "dev"))


def _one_long_line(folder, mib: int):
    """A hub-layout corpus whose second line is ``mib`` MiB long (gzipped, so it is small on disk)."""
    repo = folder / f"miracl-corpus-{mib}"
    (repo / "miracl-corpus-v1.0-yo").mkdir(parents=True)
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing
    first = json.dumps({"docid": "10020#1", "text": "Idije"}) + '\n{"docid": "x", "text": "'
    parts = [packer.compress(first.encode())]
    parts += [packer.compress(b"a" * 2**20) for _ in range(mib)]
    parts.append(packer.compress(b'"}\n') + packer.flush())
    (repo / "miracl-corpus-v1.0-yo" / "docs-0.jsonl.gz").write_bytes(b"".join(parts))
    return repo


def _failing_peak(repo) -> tuple[str, int]:
    """The error loading ``repo`` gives, and the peak of Python's allocations while it does."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as failed:
            miracl.load_eval_set(_dev(repo))
        return str(failed.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.timeout(120)
def test_a_300_mib_line_in_a_hub_layout_file_is_one_error_naming_file_and_line_not_a_full_read(tmp_path):
    """The hub reader caps each line (files.capped_lines): a wrong file is refused before the line is held."""
    small_line = _one_long_line(tmp_path, 2)
    _failing_peak(small_line)  # imports and first-use caches
    _, small = _failing_peak(small_line)
    message, large = _failing_peak(_one_long_line(tmp_path, 300))
    assert "\n" not in message and message.startswith("miracl-corpus-v1.0-yo/docs-0.jsonl.gz line 2: longer than")
    assert large < small + 16 * 2**20  # the 300 MiB line costs what a 2 MiB one does: it is never read whole

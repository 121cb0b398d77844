"""AfriQA sw/yo: native and English queries -> gold English passages, on the shipped files."""

from __future__ import annotations

import json
import unicodedata

import pytest

from engine.data import DataError, DataNotFoundError, afriqa
from engine.data.hub import DATA_DIR_ENV
from vocabulary.config import EvalSpec
from vocabulary.records import Passage


@pytest.mark.parametrize(
    ("language", "split", "gold", "passages"),
    [
        ("sw", "test", 295, 289),  # 295 gold records, 6 repeat another's (title, context)
        ("yo", "train", 247, 246),  # 248 records, id 189 has context null
        ("yo", "test", 253, 253),  # 254 records, id 205 has an empty context
    ],
)
def test_counts_two_queries_per_gold_record(language, split, gold, passages):
    eval_set = afriqa.load_eval_set(EvalSpec("afriqa", (language,), split))
    assert eval_set.name == f"afriqa/{split} (gold passages only)"
    assert len(eval_set.queries) == 2 * gold
    assert len(eval_set.passages) == passages
    assert eval_set.query_languages == tuple(sorted(("en", language)))
    assert eval_set.passage_languages == ("en",)
    assert all(len(judged) == 1 for judged in eval_set.qrels.values())


def test_known_record_native_and_english_share_the_gold_passage():
    eval_set = afriqa.load_eval_set(EvalSpec("afriqa", ("sw", "yo"), "test"))
    queries = {q.id: q for q in eval_set.queries}
    passages = {p.id: p for p in eval_set.passages}
    native, english = queries["sw:0"], queries["sw:0:en"]
    assert (native.language, english.language) == ("sw", "en")
    assert native.text == "Musikari Nazi Kombo anahudumu kama mbunge wa kuteuliwa katika eneo gani?"
    assert english.text == "Which constituency does nominated MP Musikari Kombo represent?"
    assert eval_set.qrels["sw:0"] == eval_set.qrels["sw:0:en"]
    gold = passages[next(iter(eval_set.qrels["sw:0"]))]
    assert gold.title == "Musikari Kombo"
    assert gold.text.startswith("He was first elected as a Member of Parliament representing Webuye Constituency")
    assert len(eval_set.queries) == 2 * (295 + 253) and len(eval_set.passages) == 289 + 253
    assert all(unicodedata.is_normalized("NFC", q.text) for q in eval_set.queries)


def test_missing_combination_names_what_exists():
    with pytest.raises(DataNotFoundError, match=r"^afriqa: no gold passages for sw train; available: sw test, yo test, yo train$"):
        afriqa.load_eval_set(EvalSpec("afriqa", ("sw", "yo"), "train"))
    with pytest.raises(DataError, match=r"^afriqa: no language 'en' in .*; available: sw, yo$"):
        afriqa.load_eval_set(EvalSpec("afriqa", ("en",), "test"))


def test_jsonl_errors_name_file_and_line(tmp_path):
    (tmp_path / "queries").mkdir()
    (tmp_path / "gold_passages").mkdir()
    query = {"id": 0, "question": "Swali?", "translated_question": "Question?"}
    (tmp_path / "queries" / "queries.afriqa.swa.en.test.json").write_text(json.dumps(query) + "\n")
    gold = tmp_path / "gold_passages" / "gold_span_passages.afriqa.swa.en.test.json"
    gold.write_text(json.dumps({"id": "0", "title": "T", "context": "C"}) + "\n{broken\n")
    spec = EvalSpec("afriqa", ("sw",), "test", path=str(tmp_path))
    with pytest.raises(DataError, match=r"gold_passages/gold_span_passages\.afriqa\.swa\.en\.test\.json line 2: not valid JSON"):
        afriqa.load_eval_set(spec)
    gold.write_text(json.dumps({"id": "0", "context": "C"}) + "\n")
    with pytest.raises(DataError, match=r"test\.json line 1: missing field 'title'"):
        afriqa.load_eval_set(spec)
    gold.write_text(json.dumps({"id": "7", "title": "T", "context": "C"}) + "\n")
    with pytest.raises(DataError, match=r"line 1: id 7 is not in the swa test queries"):
        afriqa.load_eval_set(spec)


# ---- AfriQA's retrieval collection (masakhane_wiki_100), as small files in the upstream format ----------------

#: corpus.jsonl lines as AfriQA's shards write them: docid a 0-based row number, text of about 100 words, title.
COLLECTION = [
    {"docid": 0, "text": " Musikari Kombo was elected for Webuye Constituency in 1992.", "title": "Musikari Kombo"},
    {"docid": 1, "text": " Webuyeville and Webuyes are other words.", "title": "Decoy"},
    {"docid": 2, "text": " Jaramogi Oginga Odinga founded the party with five others.", "title": "FORD-Kenya"},
    {"docid": 3, "text": " A passage about rain in Mombasa.", "title": "Mombasa"},
    {"docid": 4, "text": " WEBUYE is a town in Bungoma County.", "title": "Webuye"},
]


def _collection(tmp_path, rows=COLLECTION):
    path = tmp_path / "masakhane_wiki_100-english" / "corpus.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_collection_is_searched_with_answer_match_relevance(tmp_path):
    spec = EvalSpec("afriqa", ("sw",), "test", corpus=str(_collection(tmp_path)))
    eval_set = afriqa.load_eval_set(spec)
    assert eval_set.name == "afriqa/test (Wikipedia collection, answer match)"
    assert [p.id for p in eval_set.passages] == [f"wiki:{i}" for i in range(5)]  # the collection alone, no gold passage
    assert eval_set.passages[0].title == "Musikari Kombo"
    # sw:0's answer "Webuye" is a whole token of passages 0 and 4 (case folded), not a part of a longer word...
    assert eval_set.qrels["sw:0"] == eval_set.qrels["sw:0:en"] == {"wiki:0": 1, "wiki:4": 1}
    # ... sw:1's "Oginga Odinga" is a run of tokens of passage 2, and a question no passage answers is judged
    # with nothing relevant (it scores 0 rather than dropping out).
    assert eval_set.qrels["sw:1"] == {"wiki:2": 1}
    assert eval_set.qrels["sw:2"] == {afriqa.NO_ANSWER_PASSAGE: 0}
    assert eval_set.absent_languages == {afriqa.NO_ANSWER_PASSAGE: "en"}
    assert len(eval_set.queries) == 2 * 295  # the same questions as with the gold passages


def test_the_collection_through_datasets_json_builder_and_as_a_folder_of_shards(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    path = _collection(tmp_path / "owner" / "wiki")  # a data folder holding hub repo owner/wiki in its layout
    direct = list(afriqa.read_collection(str(path)))
    assert direct[0] == ("0", "Musikari Kombo", " Musikari Kombo was elected for Webuye Constituency in 1992.")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert list(afriqa.read_collection("hf:owner/wiki")) == direct  # the hub route: datasets' json builder
    with pytest.raises(DataNotFoundError, match=r"^afriqa: cannot read the collection hf:owner/none: download "):
        list(afriqa.read_collection("hf:owner/none"))
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "docs-000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in COLLECTION[:2]))
    (shards / "docs-001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in COLLECTION[2:]))
    assert list(afriqa.read_collection(str(shards))) == direct


def test_collection_errors_name_the_file_and_line(tmp_path):
    bad = _collection(tmp_path, [COLLECTION[0], {"docid": 1, "text": None, "title": "T"}])
    with pytest.raises(DataError, match=r"masakhane_wiki_100-english/corpus\.jsonl line 2: field 'text' is null"):
        afriqa.load_eval_set(EvalSpec("afriqa", ("sw",), "test", corpus=str(bad)))
    with pytest.raises(DataNotFoundError, match=r"nowhere\.jsonl: no such collection file or folder"):
        afriqa.load_eval_set(EvalSpec("afriqa", ("sw",), "test", corpus=str(tmp_path / "nowhere.jsonl")))


def test_answer_tokens_match_whole_words_only():
    passages = [Passage("a", "The 15,000-strong force", "en"), Passage("b", "15,0001 soldiers", "en")]
    assert afriqa.answer_holders(passages, {"q": ["15,000"], "none": ["Lagos"]}) == {"q": ["a"]}

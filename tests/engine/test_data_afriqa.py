"""AfriQA sw/yo: native and English queries -> gold English passages, on the shipped files."""

from __future__ import annotations

import json
import unicodedata

import pytest

from engine.data import DataError, DataNotFoundError, afriqa
from vocabulary.config import EvalSpec


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
    assert eval_set.name == f"afriqa/{split}"
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

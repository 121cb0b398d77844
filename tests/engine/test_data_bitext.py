"""FLORES-200 (SIB-200) and NTREX-128 bitext retrieval, and FLORES training groups, on the shipped files."""

from __future__ import annotations

import csv
import io
import lzma
import unicodedata

import pytest

from engine.data import DataError, flores, ntrex
from engine.data.files import DATA_ROOT
from vocabulary.config import EvalSpec

SW_1523 = "Mabadiliko huongeza tofauti za kimaumbile, na uchaguzi huyaondoa"


def _raw_rows(folder: str, split: str) -> list[list[str]]:
    text = lzma.decompress((DATA_ROOT / "flores" / folder / f"{split}.tsv.xz").read_bytes()).decode("utf-8")
    return list(csv.reader(io.StringIO(text), delimiter="\t"))[1:]


@pytest.fixture(scope="module")
def flores_test():
    return flores.load_eval_set(EvalSpec("flores", ("en", "sw", "yo"), "test"))


def test_flores_test_counts_ids_and_qrels(flores_test):
    assert flores_test.name == "flores/test"
    assert len(flores_test.queries) == len(flores_test.passages) == 3 * 204
    assert flores_test.query_languages == flores_test.passage_languages == ("en", "sw", "yo")
    # Query and passage of the same sentence share one id; its relevant set is the OTHER languages.
    assert [q.id for q in flores_test.queries] == [p.id for p in flores_test.passages]
    assert flores_test.qrels["sw:1523"] == {"en:1523": 1, "yo:1523": 1}
    assert all(qid not in judged for qid, judged in flores_test.qrels.items())


def test_flores_known_record_and_alignment(flores_test):
    text = {q.id: q.text for q in flores_test.queries}
    assert text["sw:1523"].startswith(SW_1523)
    assert text["en:1523"].startswith("Mutation adds new genetic variation")
    assert text["yo:1523"].startswith(unicodedata.normalize("NFC", "Àṣìṣe tí o wáyé ṣe àfikún"))
    ids = {lang: [q.id.split(":")[1] for q in flores_test.queries if q.language == lang] for lang in ("en", "sw", "yo")}
    assert ids["en"] == ids["sw"] == ids["yo"] == [row[0] for row in _raw_rows("eng_Latn", "test")]


def test_flores_unquotes_and_normalises(flores_test):
    text = {q.id: q.text for q in flores_test.queries}
    # Test index 61 is CSV-quoted upstream: "During ... that ""Today Apple ... today""."
    assert text["en:61"] == (
        'During his 2 hour speech he stated that "Today Apple is going to reinvent the phone, '
        'We are going to make history today".'
    )
    raw_yo = {row[0]: row[2] for row in _raw_rows("yor_Latn", "test")}
    not_nfc = [key for key, value in raw_yo.items() if not unicodedata.is_normalized("NFC", value)]
    assert len(not_nfc) == 56
    for key in not_nfc:
        assert text[f"yo:{key}"] == unicodedata.normalize("NFC", raw_yo[key]) != raw_yo[key]


def test_flores_all_17_languages_and_splits_have_upstream_counts():
    everyone = ("ar", "de", "en", "es", "hi", "ig", "ln", "ru", "rw", "sw", "th", "tr", "wo", "xh", "yo", "zh", "zu")
    for split, count in (("train", 701), ("dev", 99), ("test", 204)):
        eval_set = flores.load_eval_set(EvalSpec("flores", everyone, split))
        assert len(eval_set.queries) == 17 * count
        assert len(eval_set.qrels["zu:" + eval_set.queries[0].id.split(":")[1]]) == 16


def test_flores_training_groups_are_index_ids_with_the_sentence_as_query_and_passage():
    training = flores.load_training_set(("en", "sw", "yo"))
    assert training.name == "flores/train" and len(training.groups) == 701
    group = next(g for g in training.groups if g.id == "431")
    assert group.queries == group.passages and group.languages == ("en", "sw", "yo")
    assert group.queries["en"].startswith("Turkey is encircled by seas on three sides")


def test_flores_errors(tmp_path):
    with pytest.raises(DataError, match=r"^flores: bitext retrieval needs at least two languages, got sw$"):
        flores.load_eval_set(EvalSpec("flores", ("sw",), "test"))
    with pytest.raises(DataError, match=r"^flores: no language 'el' in .*; available: ar, de, en, es, hi, ig"):
        flores.load_eval_set(EvalSpec("flores", ("en", "el"), "test"))
    for lang in ("eng_Latn", "swh_Latn"):
        (tmp_path / lang).mkdir()
    (tmp_path / "eng_Latn" / "test.tsv").write_text("index_id\tcategory\ttext\n1\tx\tHello\n2\tx\tBye\n")
    (tmp_path / "swh_Latn" / "test.tsv").write_text("index_id\tcategory\tsentence\n1\tx\tJambo\n")
    with pytest.raises(DataError, match=r"swh_Latn/test\.tsv: missing column 'text'"):
        flores.load_eval_set(EvalSpec("flores", ("en", "sw"), "test", path=str(tmp_path)))
    (tmp_path / "swh_Latn" / "test.tsv").write_text("index_id\tcategory\ttext\n1\tx\tJambo\n3\tx\tKwaheri\n")
    with pytest.raises(DataError, match=r"flores test: sw and en hold different index_ids \(e\.g\. 2, 3\)"):
        flores.load_eval_set(EvalSpec("flores", ("en", "sw"), "test", path=str(tmp_path)))
    (tmp_path / "swh_Latn" / "test.tsv").write_text("")
    with pytest.raises(DataError, match=r"swh_Latn/test\.tsv is empty"):
        flores.load_eval_set(EvalSpec("flores", ("en", "sw"), "test", path=str(tmp_path)))


def test_ntrex_counts_first_line_crlf_and_nfc():
    eval_set = ntrex.load_eval_set(EvalSpec("ntrex", ("en", "sw", "yo"), "test"))
    assert eval_set.name == "ntrex/test"
    assert len(eval_set.queries) == len(eval_set.passages) == 3 * 1997
    text = {q.id: q.text for q in eval_set.queries}
    assert text["en:0"] == "Welsh AMs worried about 'looking like muppets'"
    assert text["sw:0"] == "Wajumbe wa Baraza la Wales wana wasiwasi kuhusu 'kuonekana kama vikaragosi'"
    assert text["yo:0"].startswith("Àwọn ϙmϙ ẹgbé")  # stray Greek koppa as published
    assert eval_set.qrels["yo:1996"] == {"en:1996": 1, "sw:1996": 1}
    assert not any("\r" in t for t in text.values())
    assert all(unicodedata.is_normalized("NFC", t) for t in text.values())
    raw = lzma.decompress((DATA_ROOT / "ntrex" / "newstest2019-ref.yor.txt.xz").read_bytes()).decode().split("\r\n")[:-1]
    assert sum(not unicodedata.is_normalized("NFC", line) for line in raw) == 1311


def test_ntrex_rejects_unaligned_files(tmp_path):
    (tmp_path / "newstest2019-src.eng.txt").write_bytes(b"a\r\nb\r\n")
    (tmp_path / "newstest2019-ref.swa.txt").write_bytes(b"a\r\n")
    with pytest.raises(DataError, match=r"ntrex: the files are not line-parallel \(lines: en 2, sw 1\)"):
        ntrex.load_eval_set(EvalSpec("ntrex", ("en", "sw"), "test", path=str(tmp_path)))


def test_flores_all_is_every_shipped_sentence_and_a_bitext_set():
    eval_set = flores.load_eval_set(EvalSpec("flores", ("en", "sw", "yo"), "all"))
    assert eval_set.name == "flores/all" and eval_set.bitext
    assert len(eval_set.queries) == len(eval_set.passages) == 3 * (701 + 99 + 204)
    ids = {q.id.split(":")[1] for q in eval_set.queries}
    assert {row[0] for split in ("train", "dev", "test") for row in _raw_rows("swh_Latn", split)} == ids
    assert eval_set.qrels["sw:1523"] == {"en:1523": 1, "yo:1523": 1}


def test_flores_all_refuses_overlapping_split_files(tmp_path):
    for lang in ("eng_Latn", "swh_Latn"):
        (tmp_path / lang).mkdir()
        for split, ids in (("train", "1 2"), ("dev", "3"), ("test", "2 4")):
            rows = "".join(f"{i}\tx\t{lang} {i}\n" for i in ids.split())
            (tmp_path / lang / f"{split}.tsv").write_text("index_id\tcategory\ttext\n" + rows)
    with pytest.raises(DataError, match=r"eng_Latn/test\.tsv: index_id 2 is also in another split"):
        flores.load_eval_set(EvalSpec("flores", ("en", "sw"), "all", path=str(tmp_path)))


def test_bitext_sets_encode_symmetrically_by_default():
    assert EvalSpec("flores", ("en", "sw"), "all").symmetric is True
    assert EvalSpec("ntrex", ("en", "sw")).symmetric is True
    assert EvalSpec("afriqa", ("sw",)).symmetric is False
    assert EvalSpec("flores", ("en", "sw"), symmetric=False).symmetric is False  # a setting per eval set
    assert ntrex.load_eval_set(EvalSpec("ntrex", ("en", "sw"), "test", max_queries=3)).bitext

"""engine.data.files / sentences / evalset: compressed reads, NFC, one-line errors, splitting, subsets."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import unicodedata

import pytest

from engine.data.errors import DataError, DataNotFoundError
from engine.data.evalset import build_eval_set, subset_queries
from engine.data.files import find_file, read_json, read_jsonl, read_lines, read_tsv
from engine.data.sentences import THAI_MIN_CHARS, merge_across, sentence_spans
from vocabulary.records import Passage, Query

# "Ọmọ" with combining dot below + the tone mark as separate code points (NFD-like, as in upstream Yoruba).
DECOMPOSED = "O\u0323mo\u0323 \u1ecd\u0300"
COMPOSED = unicodedata.normalize("NFC", DECOMPOSED)


def test_plain_xz_and_gz_read_the_same_nfc_lines_with_crlf_stripped(tmp_path):
    raw = f"first\r\n{DECOMPOSED}\r\nthird\r\n".encode()
    (tmp_path / "plain.txt").write_bytes(raw)
    (tmp_path / "packed.txt.xz").write_bytes(lzma.compress(raw))
    (tmp_path / "zipped.txt.gz").write_bytes(gzip.compress(raw))
    expected = ["first", COMPOSED, "third"]
    assert COMPOSED != DECOMPOSED and len(COMPOSED) == 6
    for name in ("plain.txt", "packed.txt", "zipped.txt"):
        assert read_lines(find_file(tmp_path, name)) == expected


def test_find_file_names_the_missing_file_and_folder(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"^xquad\.sw\.json: no such file in .*also looked for xquad\.sw\.json\.xz"):
        find_file(tmp_path, "xquad.sw.json")


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "xquad.en.json"
    path.write_text('{\n  "data": [\n    {"title": oops}\n  ]\n}\n')
    with pytest.raises(DataError, match=r"^[^/]+/xquad\.en\.json line 3: not valid JSON"):
        read_json(path)


def test_json_escapes_are_normalised_after_parsing_unless_raw_is_asked(tmp_path):
    path = tmp_path / "escaped.json"
    path.write_text('{"t": "O\\u0323mo\\u0323 \\u1ecd\\u0300"}')  # ASCII-only file, like XQuAD
    assert read_json(path) == {"t": COMPOSED}
    assert read_json(path, normalise=False) == {"t": DECOMPOSED}


def test_jsonl_errors_empty_and_non_object(tmp_path):
    path = tmp_path / "q.json"
    path.write_text('{"id": 0}\n{"id": 1,}\n')
    with pytest.raises(DataError, match=r"q\.json line 2: not valid JSON"):
        list(read_jsonl(path))
    path.write_text("\n\n")
    with pytest.raises(DataError, match=r"q\.json is empty"):
        list(read_jsonl(path))
    path.write_text('[1, 2]\n')
    with pytest.raises(DataError, match=r"q\.json line 1: expected a JSON object, got list"):
        list(read_jsonl(path))


def test_tsv_unquotes_pandas_fields_and_checks_columns(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text('index_id\tcategory\ttext\n61\tscience\t"He said ""hi"" twice"\n')
    assert read_tsv(path, ("index_id", "text")) == [{"index_id": "61", "text": 'He said "hi" twice'}]
    with pytest.raises(DataError, match=r"test\.tsv: missing column 'sentence' in the header \(index_id, category, text\)"):
        read_tsv(path, ("sentence",))
    path.write_text("")
    with pytest.raises(DataError, match=r"test\.tsv is empty"):
        read_tsv(path, ("text",))


def test_undecodable_file_is_one_line_error(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: cannot be read as UTF-8 text"):
        read_lines(path)


# ---- sentences -----------------------------------------------------------------------------


def _pieces(text: str, language: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text, language)]


def test_sentence_rules_for_latin_arabic_hindi_and_chinese():
    assert _pieces("One. Two!  Three? Four", "en") == ["One.", "Two!", "Three?", "Four"]
    assert _pieces("3.5 million. Next", "en") == ["3.5 million.", "Next"]  # no space after the point: no split
    assert _pieces("أين؟ هنا.", "ar") == ["أين؟", "هنا."]
    assert _pieces("यह है। वह है।", "hi") == ["यह है।", "वह है।"]
    assert _pieces("第一句。第二句！第三句", "zh") == ["第一句。", "第二句！", "第三句"]


def test_thai_pieces_are_joined_up_to_the_minimum_length():
    short, long_ = "ก" * 30, "ข" * THAI_MIN_CHARS
    text = f"{short} {short} {short} {short} {long_} {short}"
    # 30+1+30+1+30+1+30 = 123 >= 100 after four pieces; the long one stands alone; the short tail joins it.
    assert [b - a for a, b in sentence_spans(text, "th")] == [123, THAI_MIN_CHARS + 1 + 30]
    assert sentence_spans("ไทย 308 คะแนน", "th") == [(0, 13)]  # a space next to digits is no boundary


def test_merge_across_joins_only_the_sentences_an_answer_crosses():
    text = "He served in the U.S. Army. Then he left. The end."
    spans = sentence_spans(text, "en")
    assert [text[a:b] for a, b in spans] == ["He served in the U.S.", "Army.", "Then he left.", "The end."]
    start = text.index("U.S. Army")
    merged = merge_across(spans, [(start, start + len("U.S. Army"))])
    assert [text[a:b] for a, b in merged] == ["He served in the U.S. Army.", "Then he left.", "The end."]


# ---- evalset -------------------------------------------------------------------------------


def _toy(n_groups: int, languages=("en", "sw")):
    queries = [Query(f"{lang}:{g}", f"q{g}", lang) for lang in languages for g in range(n_groups)]
    passages = [Passage(f"p{g}", f"p{g}", "en") for g in range(n_groups)]
    qrels = {q.id: {f"p{q.id.split(':')[1]}": 1} for q in queries}
    groups = {q.id: q.id.split(":")[1] for q in queries}
    return queries, passages, qrels, groups


def test_subset_keeps_whole_groups_by_sha256_order_and_nests():
    queries, passages, qrels, groups = _toy(50)
    by_hash = sorted((str(g) for g in range(50)), key=lambda k: hashlib.sha256(k.encode()).hexdigest())
    small = build_eval_set("toy", queries, passages, qrels, groups, max_queries=5)
    assert {groups[q.id] for q in small.queries} == set(by_hash[:5])
    assert len(small.queries) == 10 and set(small.qrels) == {q.id for q in small.queries}
    assert len(small.passages) == 50  # the corpus is never cut
    bigger = subset_queries(queries, groups, 6)
    assert set(small.queries) < set(bigger)


def test_duplicate_ids_and_empty_corpus_are_errors():
    queries, passages, qrels, groups = _toy(3)
    with pytest.raises(DataError, match=r"toy: passage id 'p0' appears 2 times"):
        build_eval_set("toy", queries, passages + [passages[0]], qrels)
    with pytest.raises(DataError, match=r"toy: the passage corpus is empty"):
        build_eval_set("toy", queries, [], qrels)


# ---- unbounded input (issue 30) -------------------------------------------------------------
@pytest.mark.parametrize("reader", [read_lines, read_jsonl, lambda path: read_tsv(path, ("a",))])
def test_a_line_past_the_cap_is_refused_in_one_short_line(tmp_path, reader):
    from engine.data.files import MAX_LINE_CHARS

    path = tmp_path / "one-line.jsonl"
    path.write_text("x" * (3 * MAX_LINE_CHARS) + "\na\n", encoding="utf-8")
    with pytest.raises(DataError) as refused:
        list(reader(path))
    message = str(refused.value)
    assert message.startswith(f"{tmp_path.name}/one-line.jsonl line 1: longer than {MAX_LINE_CHARS:,} characters")
    assert len(message) < 250 and "\n" not in message


def test_a_line_at_the_cap_is_read(tmp_path):
    from engine.data.files import MAX_LINE_CHARS

    path = tmp_path / "long.txt"
    path.write_text("y" * MAX_LINE_CHARS + "\nz", encoding="utf-8")
    assert [len(line) for line in read_lines(path)] == [MAX_LINE_CHARS, 1]


def test_an_afriqa_corpus_of_one_huge_line_is_refused_without_reading_it_whole(tmp_path):
    import tracemalloc

    from engine.data.afriqa import read_collection

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"docid": "' + "7" * (40 * 2**20) + '"}\n', encoding="utf-8")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="corpus.jsonl line 1: longer than"):
            list(read_collection(str(corpus)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # a few times the cap, not the 40 MB line


@pytest.mark.timeout(60)
def test_a_device_or_fifo_as_a_corpus_is_named_for_what_it_is(tmp_path):
    import os
    from pathlib import Path

    from engine.data.afriqa import read_collection
    from engine.data.miracl import _corpus_files

    os.mkfifo(tmp_path / "fifo")
    for path, kind in ((Path("/dev/zero"), "a character device"), (tmp_path / "fifo", "a FIFO")):
        with pytest.raises(DataError, match=f"^{path}: {kind}, not a collection file; give a regular file$"):
            list(read_collection(str(path)))
        with pytest.raises(DataError, match=f"^{path}: {kind}, not a corpus file; give a regular file$"):
            _corpus_files(path, "sw", 1)

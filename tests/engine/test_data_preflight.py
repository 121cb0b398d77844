"""The submit-time checks of a local CIRAL or MIRACL corpus: its layout and its first record, nothing more.

Folders are laid out as the hub repos are (``CIRAL/ciral-corpus``:
``passages-v1.0/<name>_passages.jsonl``; ``miracl/miracl-corpus``:
``miracl-corpus-v1.0-<lang>/docs-<n>.jsonl.gz``), as the loaders' own tests lay them out.
"""

from __future__ import annotations

import gzip
import json

import pytest

from engine.data.errors import DataError, DataNotFoundError
from engine.data.preflight import check_corpus
from vocabulary.config import EvalSpec

PASSAGE = {"docid": "BBC#3475#4", "title": "", "text": "Pogba"}


def _lines(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def ciral_copy(root, records=(PASSAGE,), languages=("sw", "yo")):
    for lang in languages:
        name = {"sw": "swahili", "yo": "yoruba"}[lang]
        file = root / "passages-v1.0" / f"{name}_passages.jsonl"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(_lines(*records), encoding="utf-8")
    return root


def test_a_ciral_copy_in_the_hub_layout_passes(tmp_path):
    check_corpus(EvalSpec("ciral", ("sw", "yo"), "test-a", path=str(ciral_copy(tmp_path / "ciral-corpus"))))


def test_a_ciral_folder_without_the_hubs_files_names_the_folder_and_the_layout(tmp_path):
    folder = tmp_path / "my-ciral"
    (folder / "swahili").mkdir(parents=True)
    (folder / "swahili" / "passages.jsonl").write_text(_lines(PASSAGE), encoding="utf-8")
    with pytest.raises(DataNotFoundError) as raised:
        check_corpus(EvalSpec("ciral", ("sw",), "test-a", path=str(folder)))
    message = str(raised.value)
    assert message == (f"{folder}: no passages-v1.0/swahili_passages.jsonl in it; it is not laid out like hub repo "
                       "CIRAL/ciral-corpus (see 'hybridscale data list')")


def test_one_language_of_the_copy_missing_is_named(tmp_path):
    folder = ciral_copy(tmp_path / "ciral-corpus", languages=("sw",))
    with pytest.raises(DataNotFoundError, match="no passages-v1.0/yoruba_passages.jsonl in it"):
        check_corpus(EvalSpec("ciral", ("sw", "yo"), "test-a", path=str(folder)))


def test_a_missing_path_is_named_as_a_file_or_a_folder(tmp_path):
    missing = tmp_path / "yoruba_passages.jsonl"
    with pytest.raises(DataNotFoundError) as raised:
        check_corpus(EvalSpec("ciral", ("yo",), "test-a", path=str(missing)))
    assert str(raised.value) == (f"{missing}: no such file or folder; give a copy of hub repo CIRAL/ciral-corpus (a "
                                 "folder with passages-v1.0/) or one JSON Lines corpus file")
    with pytest.raises(DataNotFoundError, match="no such corpus file or folder; corpus not available offline"):
        check_corpus(EvalSpec("miracl", ("sw",), "dev", path=str(tmp_path / "sw.jsonl")))


def test_a_first_line_without_docid_names_the_file_and_line(tmp_path):
    file = tmp_path / "yo.jsonl"
    file.write_text("\n" + _lines({"id": "1", "title": "", "text": "Pogba"}), encoding="utf-8")
    with pytest.raises(DataError) as raised:
        check_corpus(EvalSpec("ciral", ("yo",), "test-a", path=str(file)))
    assert str(raised.value) == (f"{file} line 2: no 'docid'; each line of a ciral corpus is a JSON object with docid, "
                                 "text (and title): fix the file or give the hub's copy")


def test_a_null_text_counts_as_missing_and_both_fields_are_named(tmp_path):
    copy = ciral_copy(tmp_path / "c", records=({"title": "t", "text": None},), languages=("sw",))
    with pytest.raises(DataError, match=r"line 1: no 'docid' or 'text'; each line of a ciral corpus"):
        check_corpus(EvalSpec("ciral", ("sw",), "test-a", path=str(copy)))


def test_only_the_first_record_is_read(tmp_path):
    """A bad line further down is the loader's to find: a million-passage corpus is not read at submit."""
    file = tmp_path / "yo.jsonl"
    file.write_text(_lines(PASSAGE) + "not json\n", encoding="utf-8")
    check_corpus(EvalSpec("ciral", ("yo",), "test-a", path=str(file)))


def test_one_ciral_file_for_two_languages_is_refused(tmp_path):
    file = tmp_path / "sw.jsonl"
    file.write_text(_lines(PASSAGE), encoding="utf-8")
    with pytest.raises(DataError, match="is one corpus file but 2 languages are chosen; pass a copy of CIRAL/"):
        check_corpus(EvalSpec("ciral", ("sw", "yo"), "test-a", path=str(file)))


def test_a_miracl_hub_copy_is_read_gzipped(tmp_path):
    folder = tmp_path / "miracl-corpus" / "miracl-corpus-v1.0-sw"
    folder.mkdir(parents=True)
    with gzip.open(folder / "docs-0.jsonl.gz", "wt", encoding="utf-8") as stream:
        stream.write(_lines({"docid": "1#0", "title": "T", "text": "Habari"}))
    check_corpus(EvalSpec("miracl", ("sw",), "dev", path=str(folder.parent)))
    with gzip.open(folder / "docs-1.jsonl.gz", "wt", encoding="utf-8") as stream:
        stream.write(_lines({"docid": "2#0", "title": "T"}))
    with pytest.raises(DataError, match=r"docs-1\.jsonl\.gz line 1: no 'text'; each line of a miracl corpus"):
        check_corpus(EvalSpec("miracl", ("sw",), "dev", path=str(folder.parent)))


def test_miracl_folders_follow_the_loaders_own_rules(tmp_path):
    per_language = tmp_path / "corpora"
    (per_language / "sw").mkdir(parents=True)
    (per_language / "sw" / "part.jsonl").write_text(_lines({"docid": "1#0", "text": "Habari"}), encoding="utf-8")
    check_corpus(EvalSpec("miracl", ("sw",), "dev", path=str(per_language)))
    with pytest.raises(DataNotFoundError, match="no yo/ \\(or \\*-yo/\\) corpus folder for language 'yo'"):
        check_corpus(EvalSpec("miracl", ("sw", "yo"), "dev", path=str(per_language)))
    tsv = tmp_path / "sw.tsv"
    tsv.write_text("one field only\n", encoding="utf-8")
    check_corpus(EvalSpec("miracl", ("sw",), "dev", path=str(tsv)))  # a TSV is not opened here


def test_shipped_and_hub_evaluations_are_not_checked():
    check_corpus(EvalSpec("flores", ("sw", "yo"), "test"))
    check_corpus(EvalSpec("ciral", ("sw",), "test-a"))

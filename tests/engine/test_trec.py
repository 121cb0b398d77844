"""TREC qrels/run files: round trips, strict errors, and the ``metrics`` command's JSON."""

from __future__ import annotations

import gzip
import math
import re
from pathlib import Path

import pytest

from engine.metrics import NoJudgedQueriesError, UnknownMeasureError
from engine.trec import TrecFormatError, as_json, as_trec, read_qrels, read_run, score_files, write_qrels, write_run


def test_run_round_trip_keeps_exact_scores_and_writes_trec_order(tmp_path):
    run = {"q1": {"b": 0.5, "c": 0.5, "a": 1 / 3}, "q2": {"z": 0.1 + 0.2}}
    path = tmp_path / "run.trec"
    write_run(path, run, "mytag")
    assert read_run(path) == run
    lines = path.read_text().splitlines()
    # Score descending, the 0.5 tie broken by id descending (c before b), ranks from 1.
    assert lines[:3] == [
        "q1 Q0 c 1 0.5 mytag",
        "q1 Q0 b 2 0.5 mytag",
        f"q1 Q0 a 3 {1 / 3!r} mytag",
    ]


def test_gz_files_are_written_and_read_compressed(tmp_path):
    run = {"q1": {"a": 0.25, "b": 0.5}}
    write_run(tmp_path / "run.gz", run, "t")
    assert gzip.decompress((tmp_path / "run.gz").read_bytes()).decode().splitlines()[0] == "q1 Q0 b 1 0.5 t"
    assert read_run(tmp_path / "run.gz") == run
    write_qrels(tmp_path / "qrels.gz", {"q1": {"a": 1}})
    assert read_qrels(tmp_path / "qrels.gz") == {"q1": {"a": 1}}


def test_qrels_round_trip_and_tab_separated_input(tmp_path):
    qrels = {"q1": {"a": 2, "b": 0}, "q2": {"c": 1}}
    path = tmp_path / "qrels.txt"
    write_qrels(path, qrels)
    assert read_qrels(path) == qrels
    tabbed = tmp_path / "tabbed.txt"
    tabbed.write_text("q1\t0\ta\t2\n\nq1\tQ0\tb\t-1\n")
    assert read_qrels(tabbed) == {"q1": {"a": 2, "b": -1}}


@pytest.mark.parametrize(
    ("reader", "text", "message"),
    [
        (read_qrels, "q1 0 a 1\nq1 0 b\n", r"bad\.txt, line 2: expected 4 fields 'qid iter docid relevance', got 3"),
        (read_qrels, "q1 0 a high\n", r"bad\.txt, line 1: relevance 'high' is not a whole number"),
        (read_qrels, "q1 0 a 1\nq1 0 a 0\n", r"bad\.txt, line 2: document 'a' appears twice for query 'q1'"),
        (read_run, "q1 Q0 a 1 0.5 t\n\nq1 Q0 b 2 0.4\n", r"bad\.txt, line 3: expected 6 fields"),
        (read_run, "q1 Q0 a 1 zero t\n", r"bad\.txt, line 1: score 'zero' is not a number"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, reader, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(TrecFormatError, match=message):
        reader(path)


def test_missing_file_and_unwritable_ids(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.run: no such file in"):
        read_run(tmp_path / "nope.run")
    with pytest.raises(ValueError, match="document id 'a b' cannot be written"):
        write_run(tmp_path / "r", {"q": {"a b": 1.0}}, "t")
    with pytest.raises(ValueError, match="run tag '' cannot be written"):
        write_run(tmp_path / "r", {"q": {"a": 1.0}}, "")


def _files(tmp_path):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 a 1\nq1 0 c 2\nq1 0 b 0\nq2 0 x 1\nq3 0 m 0\nq4 0 n 1\n")
    run = tmp_path / "run.trec"
    # Ranks in the file are deliberately wrong: trec_eval ignores them and orders by score.
    run.write_text(
        "q1 Q0 a 9 0.9 t\nq1 Q0 b 1 0.5 t\nq1 Q0 c 1 0.5 t\n"
        "q2 Q0 x 1 0.7 t\nq2 Q0 y 2 0.7 t\nq3 Q0 m 1 0.2 t\n"
    )
    return qrels, run


ND_Q1 = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))  # ranking a, c, b; ideal gains 2, 1
ND_Q2 = 1 / math.log2(3)  # ranking y, x


def test_score_files_like_trec_eval_and_with_complete(tmp_path):
    qrels, run = _files(tmp_path)
    per_query = score_files(qrels, run, ["RR", "nDCG@2"])
    # q3 is judged with nothing relevant: it scores 0 and counts. q4 is judged but not ranked: skipped (no -c).
    assert per_query == {"q1": {"RR": 1.0, "nDCG@2": ND_Q1}, "q2": {"RR": 0.5, "nDCG@2": ND_Q2},
                         "q3": {"RR": 0.0, "nDCG@2": 0.0}}
    assert as_json(per_query, by_query=False) == {"RR": 0.5, "nDCG@2": (ND_Q1 + ND_Q2) / 3}  # every digit kept
    completed = score_files(qrels, run, ["RR"], complete=True)
    assert completed["q4"] == {"RR": 0.0} and as_json(completed, False) == {"RR": 1.5 / 4}
    assert list(as_json(score_files(qrels, run, []), False)) == ["nDCG@10", "R@100", "RR@10", "AP"]


def test_trec_format_is_trec_eval_layout(tmp_path):
    qrels, run = _files(tmp_path)
    per_query = score_files(qrels, run, ["RR", "nDCG@2"])
    assert as_trec(per_query, by_query=False).splitlines() == [
        f"{'RR':<22}\tall\t0.5000", f"{'nDCG@2':<22}\tall\t{(ND_Q1 + ND_Q2) / 3:.4f}"]
    lines = as_trec(per_query, by_query=True).splitlines()
    assert lines[:2] == [f"{'RR':<22}\tq1\t1.0000", f"{'nDCG@2':<22}\tq1\t{ND_Q1:.4f}"]
    assert len(lines) == 3 * 2 + 2 and lines[-1].split("\t")[1] == "all"


def test_metrics_errors(tmp_path):
    qrels, run = _files(tmp_path)
    with pytest.raises(UnknownMeasureError, match="unknown measure 'MAP'"):
        score_files(qrels, run, ["MAP"])
    other = tmp_path / "other.txt"
    other.write_text("q9 0 a 1\n")
    with pytest.raises(NoJudgedQueriesError, match="other.txt and run.trec: no query is both judged"):
        score_files(other, run, ["AP"])


# ---- messages (issue 30) ----------------------------------------------------------------------------
@pytest.mark.parametrize("reader, kind", [(read_qrels, "qrels"), (read_run, "run")])
def test_a_file_that_is_not_utf8_says_whether_it_is_the_qrels_or_the_run(tmp_path, reader, kind):
    path = tmp_path / "latin1.txt"
    path.write_bytes("q\xe9 0 d 1\n".encode("latin-1"))
    with pytest.raises(TrecFormatError, match=f"^latin1.txt: the {kind} file is not UTF-8 text"):
        reader(path)


@pytest.mark.timeout(60)  # before the fix, reading the FIFO waited for a writer
def test_a_folder_a_fifo_or_a_device_is_named_for_what_it_is(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo")
    for path, what in ((tmp_path, "a folder"), (tmp_path / "fifo", "a FIFO"), (Path("/dev/zero"), "a character device")):
        with pytest.raises(TrecFormatError, match=f"^{re.escape(str(path))}: the run file is {what}, not a file"):
            read_run(path)


def test_a_byte_order_mark_keeps_trec_evals_reading_and_warns(tmp_path, caplog):
    qrels, run = tmp_path / "qrels", tmp_path / "run"
    qrels.write_text("q1 0 d1 1\nq2 0 d2 1\n", encoding="utf-8")
    run.write_text("\ufeffq1 Q0 d1 1 0.9 t\nq2 Q0 d2 1 0.8 t\n", encoding="utf-8")
    assert list(score_files(qrels, run, ["RR"])) == ["q2"]  # trec_eval drops q1 too: its id is '\ufeffq1'
    assert "run line 1 starts with a byte-order mark" in caplog.text

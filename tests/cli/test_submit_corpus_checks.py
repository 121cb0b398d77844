"""``hybridscale submit`` refuses a local CIRAL or MIRACL corpus in the wrong layout, or whose first line lacks
``docid``/``text``, before anything is queued: one line naming the file, exit status 2."""

from __future__ import annotations

import json

from hybridscale.cli import main
from storage.db import open_db
from storage.queries import list_runs
from vocabulary.config import EvalSpec, RunConfig, StudyConfig


def _submit(tmp_path, capsys, spec: EvalSpec) -> tuple[int, str, int]:
    """(exit status, stderr, runs queued) of submitting a one-run study and BM25, evaluating ``spec``."""
    study = StudyConfig("corpus check", strategies=("mono",), train_sizes=(4,), include_baseline=False,
                        include_bm25=True, template=RunConfig(batch_size=2, evaluations=(spec,)))
    path = tmp_path / "study.json"
    path.write_text(study.to_json(), encoding="utf-8")
    db_path = tmp_path / "c.db"
    status = main(["--db", str(db_path), "submit", str(path)])
    queued = len(list_runs(open_db(db_path))) if db_path.exists() else 0
    return status, capsys.readouterr().err, queued


def test_a_ciral_folder_in_the_wrong_layout_is_refused_before_queueing(tmp_path, capsys):
    folder = tmp_path / "ciral"
    (folder / "yoruba").mkdir(parents=True)
    status, err, queued = _submit(tmp_path, capsys, EvalSpec("ciral", ("yo",), "test-a", path=str(folder)))
    assert status == 2 and queued == 0
    assert err == (f"hybridscale submit: error: {folder}: no passages-v1.0/yoruba_passages.jsonl in it; it is not "
                   "laid out like hub repo CIRAL/ciral-corpus (see 'hybridscale data list')\n")


def test_a_jsonl_corpus_whose_first_line_lacks_text_is_refused(tmp_path, capsys):
    corpus = tmp_path / "sw.jsonl"
    corpus.write_text(json.dumps({"docid": "1#0", "title": "T", "body": "Habari"}) + "\n", encoding="utf-8")
    status, err, queued = _submit(tmp_path, capsys, EvalSpec("miracl", ("sw",), "dev", path=str(corpus)))
    assert status == 2 and queued == 0
    assert err == (f"hybridscale submit: error: {corpus} line 1: no 'text'; each line of a miracl corpus is a JSON "
                   "object with docid, text (and title): fix the file or give the hub's copy\n")


def test_a_good_local_copy_is_queued(tmp_path, capsys):
    corpus = tmp_path / "ciral-corpus" / "passages-v1.0" / "yoruba_passages.jsonl"
    corpus.parent.mkdir(parents=True)
    corpus.write_text(json.dumps({"docid": "BBC#1", "title": "", "text": "Pogba"}) + "\n", encoding="utf-8")
    status, err, queued = _submit(tmp_path, capsys, EvalSpec("ciral", ("yo",), "test-a", path=str(corpus.parents[1])))
    assert (status, err, queued) == (0, "", 2)

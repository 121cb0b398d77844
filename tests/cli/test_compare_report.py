"""``hybridscale compare`` and ``report`` on a small real study (tiny model, shipped FLORES, BM25 through the worker).

One strategy's stored per-query values are altered to be better on half the
queries of one cell: the comparison and the findings sentences must find it
there, and only there; with the values made equal they must find nothing.
"""

from __future__ import annotations

import csv
import json
import sqlite3

import numpy as np
import pytest
from sqlalchemy import select, update

from analysis.compare import FIELDS
from engine.trec import score_files
from hybridscale.cli import main
from hybridscale.worker import WorkerOptions, run_worker
from storage import queue
from storage.db import open_db
from storage.models import QueryValueSet, Study
from storage.packing import pack_values, unpack_ids, unpack_values
from storage.queries import list_runs, per_query_values, tidy_metrics
from vocabulary.config import EvalSpec, RunConfig, StudyConfig

EVAL = EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=32)
TEMPLATE = RunConfig(model="tiny:", train_languages=("en", "de", "es"), evaluations=(EVAL,), batch_size=4,
                     max_length=32, max_steps=2, learning_rate=1e-3, checkpoint_every=10, eval_batch_size=64,
                     keep_model=False)
STUDY = StudyConfig("inject", strategies=("mono", "hybrid"), train_sizes=(8,), seeds=(0, 1), include_baseline=True,
                    include_bm25=True, template=TEMPLATE)
CELL = ("flores/test", "cross", "sw", "en", "nDCG@10")
COMPARE = ["compare", "--study", "1", "--eval-set", "flores/test", "--setting", "cross", "--metric", "nDCG@10"]


@pytest.fixture(scope="module")
def study_db(tmp_path_factory):
    """The executed study's SQLite file and artifacts folder (6 runs: 2 references, 2 strategies x 2 seeds)."""
    folder = tmp_path_factory.mktemp("study")
    db = open_db(folder / "s.db", artifacts_dir=folder / "artifacts")
    queue.submit_study(db, STUDY)
    run_worker(db, WorkerOptions(device="cpu", exit_when_empty=True, heartbeat_s=0.5, poll_s=0.1))
    runs = list_runs(db)
    assert len(runs) == 6 and {r.status for r in runs} == {"done"}, [r.error for r in runs]
    return folder


def _copy(study_db, tmp_path):
    """A copy of the study's database to alter (through SQLite's backup: the file alone misses its WAL)."""
    with sqlite3.connect(study_db / "s.db") as source, sqlite3.connect(tmp_path / "s.db") as target:
        source.backup(target)
    return open_db(tmp_path / "s.db")


def _cell_rows(db, strategy: str) -> list[QueryValueSet]:
    eval_set, setting, x, y, metric = CELL
    ids = [r.id for r in list_runs(db) if r.strategy == strategy]
    with db.session() as session:
        return list(session.scalars(select(QueryValueSet).where(
            QueryValueSet.run_id.in_(ids), QueryValueSet.eval_set == eval_set, QueryValueSet.setting == setting,
            QueryValueSet.query_language == x, QueryValueSet.passage_language == y, QueryValueSet.metric == metric)))


def _alter_hybrid(db, better_on_half: bool) -> None:
    """Hybrid's values in CELL: 1.0 on the first half of the queries (better_on_half), or mono's seed mean on all."""
    mono = [dict(zip(unpack_ids(r.packed_ids), unpack_values(r.packed_values))) for r in _cell_rows(db, "mono")]
    mono_mean = {q: float(np.mean([m[q] for m in mono])) for q in mono[0]}
    with db.session() as session:
        for row in _cell_rows(db, "hybrid"):
            ids, values = unpack_ids(row.packed_ids), unpack_values(row.packed_values)
            half = set(sorted(ids)[: len(ids) // 2])
            new = [1.0 if q in half else v for q, v in zip(ids, values)] if better_on_half else [mono_mean[q] for q in ids]
            session.get(QueryValueSet, row.id).packed_values = pack_values(new)


def _compare_json(db_path, capsys, *extra: str) -> tuple[list[dict], str]:
    capsys.readouterr()
    assert main(["--db", str(db_path), *COMPARE, "--json", *extra]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def _hybrid_vs_mono(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["query_language"], r["passage_language"]): r for r in rows
            if (r["strategy"], r["baseline"]) == ("hybrid", "mono")}


def test_bm25_runs_through_the_worker_and_its_files_reproduce_its_values(study_db):
    db = open_db(study_db / "s.db", artifacts_dir=study_db / "artifacts")
    (bm25,) = [r for r in list_runs(db) if r.label == "BM25"]
    tidy = [r for r in tidy_metrics(db) if r["run_id"] == bm25.id]
    assert {r["series"] for r in tidy} == {"BM25"} and {r["model"] for r in tidy} == {"bm25"}
    row = next(r for r in tidy if (r["setting"], r["query_language"], r["passage_language"], r["metric"]) == CELL[1:])
    values = {v["query_id"]: v["value"] for v in per_query_values(db) if v["run_id"] == bm25.id
              and (v["setting"], v["query_language"], v["passage_language"], v["metric"]) == CELL[1:]}
    assert len(values) == row["num_queries"] == 32 and row["value"] == pytest.approx(np.mean(list(values.values())))
    # Names and numbers are shared across languages, so lexical matching finds some translations, not all.
    assert 0.05 < row["value"] < 0.95
    folder = study_db / "artifacts" / "runs" / bm25.id / "eval" / "flores-test"
    scored = score_files(folder / "qrels.en.txt", folder / "cross.sw-en.run.gz", ["nDCG@10"], complete=True)
    assert {q: v["nDCG@10"] for q, v in scored.items() if q in values} == pytest.approx(values)


def test_compare_finds_the_injected_difference_and_only_there(study_db, tmp_path, capsys):
    _alter_hybrid(_copy(study_db, tmp_path), better_on_half=True)
    rows, family = _compare_json(tmp_path / "s.db", capsys, "--baseline", "mono")
    assert all(list(r) == list(FIELDS) for r in rows)
    # Strategy keys in strategy and baseline, alpha and the series name beside them: nothing to parse.
    assert {(r["strategy"], r["alpha"], r["series"]) for r in rows} == {
        ("hybrid", 0.5, "hybrid α=0.5 (1 epoch, at most 2 steps)"), ("none", None, "BM25"),
        ("none", None, "untrained tiny:")}
    assert {(r["baseline"], r["baseline_alpha"], r["baseline_series"]) for r in rows} == {
        ("mono", None, "mono (1 epoch, at most 2 steps)")}
    assert "Holm family: the 18 comparisons listed" in family  # 3 series against mono x 6 cells
    pairs = _hybrid_vs_mono(rows)
    injected = pairs[("sw", "en")]
    assert injected["mean_diff"] > 0.2 and injected["ci_low"] > 0 and injected["p_holm"] < 0.05
    assert injected["n_queries"] == 32 and injected["n_seeds"] == 2
    assert all(r["p_holm"] >= 0.05 for cell, r in pairs.items() if cell != ("sw", "en"))

    assert main(["--db", str(tmp_path / "s.db"), "report", "--study", "1", "--out", str(tmp_path / "r")]) == 0
    summary = (tmp_path / "r" / "summary.md").read_text(encoding="utf-8")
    sw_en = summary.split("### nDCG@10 on flores/test, cross setting")[1].split("**Swahili (sw) → en**")[1]
    sw_en = sw_en.split("**")[0]
    assert "hybrid α=0.5 (1 epoch, at most 2 steps) is significantly better than mono (1 epoch, at most 2 steps) " \
           "at n = 8" in sw_en
    yo_en = summary.split("**Yoruba (yo) → en**")[1].split("**")[0]
    assert "is not significantly different from mono" in yo_en


def test_with_no_difference_nothing_is_claimed(study_db, tmp_path, capsys):
    _alter_hybrid(_copy(study_db, tmp_path), better_on_half=False)
    rows, _ = _compare_json(tmp_path / "s.db", capsys)
    injected = _hybrid_vs_mono(rows)[("sw", "en")]
    assert injected["mean_diff"] == 0 and injected["p_randomization"] == 1 and injected["p_holm"] == 1
    assert main(["--db", str(tmp_path / "s.db"), "report", "--study", "1", "--out", str(tmp_path / "r")]) == 0
    summary = (tmp_path / "r" / "summary.md").read_text(encoding="utf-8")
    assert "significantly better than mono" not in summary and "significantly worse than mono" not in summary


def test_report_writes_every_file(study_db, tmp_path):
    assert main(["--db", str(study_db / "s.db"), "report", "--study", "1", "--out", str(tmp_path / "r")]) == 0
    out = tmp_path / "r"
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("# inject: findings\n\n## The answer: nDCG@10 on flores/test, cross setting: Swahili (sw) "
                              "and Yoruba (yo) queries, English passages (higher is better)\n\n![scaling curves of "
                              "nDCG@10 on flores/test, cross setting](plots/answer.png)\n\n| queries | n |")
    answer, appendix = summary.split("## Appendix: what ran and every table")
    assert appendix.startswith("\n\nProvenance: all 6 runs on torch ")  # the worker's records
    assert "### nDCG@10 on flores/test, cross setting" in appendix and "###" not in answer
    assert (out / "plots" / "answer.png").stat().st_size > 10_000
    # The answer's figure shows the report's sw/yo cross curves: drawn once, copied.
    assert (out / "plots" / "answer.png").read_bytes() == (out / "plots" / "scaling_flores_cross.png").read_bytes()
    assert "| 0 (BM25) |" in summary and "Scaling fits: no fit: 1 training size," in summary
    with (out / "comparisons.csv").open(newline="", encoding="utf-8") as stream:
        comparisons = list(csv.DictReader(stream))
    assert list(comparisons[0]) == ["eval_set", "setting", "metric", *FIELDS]
    named = {(r["baseline"], r["baseline_series"]) for r in comparisons}
    named |= {(r["strategy"], r["series"]) for r in comparisons}
    assert {("none", "BM25"), ("none", "untrained tiny:")} <= named
    with (out / "fits.csv").open(newline="", encoding="utf-8") as stream:
        fits = list(csv.DictReader(stream))
    assert fits and all(r["no_fit"].startswith("no fit: 1 training size,") for r in fits)
    assert {(r["strategy"], r["alpha"]) for r in fits} >= {("hybrid", "0.5"), ("mono", "")}
    for name in ("report.csv", "per_query.csv"):
        assert (out / name).stat().st_size > 1000
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "answer.png", "bias_flores.png", "scaling_flores_cross.png", "scaling_flores_multi.png"]


def _with(argv: list[str], **values: str) -> list[str]:
    """``argv`` with the value of each ``--flag`` replaced (``eval_set`` -> ``--eval-set``), or appended."""
    argv = list(argv)
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


@pytest.mark.parametrize("change, message", [
    ({"study": "7"}, "no study 7 in this database; studies: 1 (inject)"),
    ({"eval_set": "xquad-r/eval"}, "no eval set 'xquad-r/eval' in this study's per-query values; choose one of: "
                                   "flores/test"),
    ({"metric": "MAP"}, "no metric 'MAP' of flores/test, cross in this study's per-query values"),
    ({"baseline": "cross"}, "no series 'cross' in these results"),
])
def test_bad_requests_are_one_line_with_exit_2(study_db, capsys, change, message):
    capsys.readouterr()
    assert main(["--db", str(study_db / "s.db"), *_with(COMPARE, **change)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0


def test_a_study_without_values_or_with_one_series_is_refused(study_db, tmp_path, capsys):
    db = _copy(study_db, tmp_path)
    queue.submit_study(db, StudyConfig("one series", strategies=("mono",), train_sizes=(8,), seeds=(0, 1),
                                       include_baseline=False, template=TEMPLATE))  # reuses the done runs
    queue.submit_study(db, StudyConfig("not run", strategies=("mono",), train_sizes=(16,), include_baseline=False,
                                       template=TEMPLATE))
    capsys.readouterr()
    for study, message in (("2", "only 1 series (mono (1 epoch, at most 2 steps)); a comparison needs at least two"),
                           ("3", "study 3 has no per-query values yet")):
        assert main(["--db", str(tmp_path / "s.db"), *_with(COMPARE, study=study)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0
    assert main(["--db", str(tmp_path / "s.db"), "report", "--study", "3", "--out", str(tmp_path / "r")]) == 2
    assert "no per-query values yet" in capsys.readouterr().err


def test_a_control_character_in_a_stored_study_name_reaches_no_report_file_raw(study_db, tmp_path):
    db = _copy(study_db, tmp_path)
    with db.session() as session:  # stored before submit refused it, or by anyone who can write the database
        session.execute(update(Study).values(name="x\x1b[2J\x07\u202ey"))
    assert main(["--db", str(tmp_path / "s.db"), "report", "--study", "1", "--out", str(tmp_path / "r")]) == 0
    for name in ("summary.md", "report.csv", "per_query.csv", "comparisons.csv"):
        text = (tmp_path / "r" / name).read_text(encoding="utf-8")
        assert not any(c in text for c in "\x1b\x07\u202e"), name
    assert (tmp_path / "r" / "summary.md").read_text(encoding="utf-8").startswith("# x\\x1b[2J\\x07\\u202ey: findings")

"""The hybridscale command line: every subcommand's help, and the queue commands on a real DB."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybridscale.cli import build_parser, main
from storage import queue
from storage.db import open_db
from storage.queries import list_runs, run_config
from tests.faults import without_file_override
from vocabulary.config import EvalSpec, RunConfig, StudyConfig

SUBCOMMANDS = ("submit", "status", "cancel", "retry", "export", "compare", "report", "worker", "demo", "inspect-batches",
               "metrics", "export-model", "gui", "data", "template", "plan")


def test_every_subcommand_is_registered():
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(SUBCOMMANDS) == set(choices)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_each_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: hybridscale {command}")


@pytest.mark.parametrize(("value", "message"), [("0", "must be at least 1, got 0"), ("two", "'two' is not a whole number")])
def test_a_demo_needs_at_least_one_worker(value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--workers", value])
    assert exit_info.value.code == 2
    assert f"argument --workers: {message}" in capsys.readouterr().err


def test_console_script_help_runs_in_a_fresh_process():
    result = subprocess.run([sys.executable, "-m", "hybridscale", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--db" in result.stdout and "worker" in result.stdout


def _study_file(tmp_path, name="cli-study"):
    study = StudyConfig(name, strategies=("mono", "hybrid"), train_sizes=(5, 10), include_baseline=True,
                        template=RunConfig(batch_size=4))
    path = tmp_path / "study.json"
    path.write_text(study.to_json(), encoding="utf-8")
    return path


def test_submit_status_export_on_real_db(tmp_path, capsys):
    db_path = tmp_path / "cli.db"
    assert main(["--db", str(db_path), "submit", str(_study_file(tmp_path))]) == 0
    assert "5 run(s) queued" in capsys.readouterr().out

    assert main(["--db", str(db_path), "submit", str(_study_file(tmp_path))]) == 0
    again = capsys.readouterr().out
    assert "0 run(s) queued" in again and "5 already queued or running" in again

    assert main(["--db", str(db_path), "status"]) == 0
    status = capsys.readouterr().out
    assert "study 1 'cli-study': 5 queued" in status
    assert status.count("queued") >= 5

    db = open_db(db_path)
    run = queue.claim_next(db, "w")

    class Cell:
        eval_set, setting, query_language, passage_language, metric, value, num_queries = (
            "flores/test", "cross", "sw", "en", "nDCG@10", 0.42, 10)

    queue.complete(db, run.id, "w", [Cell()])
    out_csv = tmp_path / "report.csv"
    assert main(["--db", str(db_path), "export", "--csv", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert [(r["run_id"], r["value"]) for r in rows] == [(run.id, "0.42")]


def test_cancel_and_retry_commands(tmp_path, capsys):
    db_path = tmp_path / "cli.db"
    main(["--db", str(db_path), "submit", str(_study_file(tmp_path))])
    run_id = queue.claim_next(open_db(db_path), "w").id
    capsys.readouterr()
    assert main(["--db", str(db_path), "cancel", run_id]) == 0
    assert "cancel requested" in capsys.readouterr().out
    assert main(["--db", str(db_path), "cancel", "nosuchrun"]) == 2
    assert "no run 'nosuchrun'" in capsys.readouterr().err
    assert main(["--db", str(db_path), "retry", run_id]) == 0
    assert "not failed or cancelled" in capsys.readouterr().out


def test_bad_study_file_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "strategies": ["mono", "telepathy"]}', encoding="utf-8")
    assert main(["--db", str(tmp_path / "x.db"), "submit", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "unknown strategy 'telepathy'" in err and "allowed: mono" in err
    assert main(["--db", str(tmp_path / "x.db"), "submit", str(tmp_path / "missing.json")]) == 2
    assert "no such study file" in capsys.readouterr().err


def test_submit_corpus_sets_the_miracl_passage_collection(tmp_path, capsys):
    corpus = tmp_path / "miracl-sw.jsonl"
    corpus.write_text('{"docid": "1#0", "title": "T", "text": "Habari"}\n', encoding="utf-8")
    study = StudyConfig("m", strategies=("mono",), train_sizes=(4,), include_baseline=True,
                        template=RunConfig(batch_size=2, evaluations=(EvalSpec("miracl", ("sw",), "dev"),)))
    path = tmp_path / "study.json"
    path.write_text(study.to_json(), encoding="utf-8")
    db_path = tmp_path / "m.db"
    assert main(["--db", str(db_path), "submit", str(path), "--corpus", str(corpus)]) == 0
    configs = [run_config(open_db(db_path), r.id) for r in list_runs(open_db(db_path))]
    assert {c.evaluations[0].path for c in configs} == {str(corpus.resolve())}

    capsys.readouterr()
    assert main(["--db", str(db_path), "submit", str(path), "--corpus", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file or folder" in capsys.readouterr().err
    assert main(["--db", str(db_path), "submit", str(_study_file(tmp_path)), "--corpus", str(corpus)]) == 2
    assert "this study does not evaluate on miracl" in capsys.readouterr().err


def test_submit_refuses_a_subset_that_cannot_fill_a_batch_without_a_shared_positive(tmp_path, capsys):
    # 100 XQuAD groups hold fewer than 100 distinct answer passages: batch 100 cannot avoid a false negative.
    study = StudyConfig("too-big-batch", strategies=("cross",), train_sizes=(100, 300), include_baseline=True,
                        template=RunConfig(batch_size=100))
    path = tmp_path / "study.json"
    path.write_text(study.to_json(), encoding="utf-8")
    db_path = tmp_path / "clash.db"
    assert main(["--db", str(db_path), "submit", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("hybridscale submit: error: cross n=100 seed=0: batch_size 100 needs 100 distinct question "
                          "groups whose positive passages all differ, but train_size 100 of xquad/train gives ")
    assert err.endswith("or raise train_size")
    assert list_runs(open_db(db_path)) == []  # nothing queued, not even the sizes that would work


def test_inspect_batches_prints_a_passage_id_per_pair(tmp_path, capsys):
    config = RunConfig(strategy="hybrid", alpha=0.5, train_size=40, batch_size=8, budget="steps", steps=4)
    path = tmp_path / "run.json"
    path.write_text(config.to_json(), encoding="utf-8")
    assert main(["inspect-batches", str(path), "--batches", "4"]) == 0
    batches = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [b["kind"] for b in batches].count("mono") == 2  # exactly alpha x 4 steps
    for batch in batches:
        assert len(batch["passage_ids"]) == len(batch["groups"]) == 8
        assert len(set(batch["passage_ids"])) == 8
        # XQuAD's own ids: the answer sentence in the pair's passage language.
        assert all(pid.startswith(f"{lang}:") for pid, lang in zip(batch["passage_ids"], batch["passage_langs"]))


# ---- refused at submit: what would otherwise fail only after training -----------------
_TINY_TEMPLATE = {"model": "tiny:", "batch_size": 4, "train_languages": ["en", "de"],
                  "evaluations": [{"dataset": "flores", "languages": ["en", "sw"], "split": "test"}]}


def _submit_text(tmp_path, text: str, capsys) -> tuple[int, str]:
    path = tmp_path / "study.json"
    path.write_text(text, encoding="utf-8")
    db_path = tmp_path / "refused.db"
    status = main(["--db", str(db_path), "submit", str(path)])
    captured = capsys.readouterr()
    if status == 2:
        assert list_runs(open_db(db_path)) == []  # nothing was queued
    return status, captured.err.strip()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"template": {"evaluations": [{"dataset": "flores", "languages": ["en", "el"]}]}},
         "evaluations[flores].languages: flores has no language 'el'"),
        ({"template": {"evaluations": [{"dataset": "flores", "languages": ["sw"], "split": "validation"}]}},
         "evaluations[flores].split: flores has no split 'validation'; use one of train, dev, test"),
        ({"template": {"train_languages": ["en", "sw"]}}, "train_languages: xquad has no language 'sw'"),
        ({"train_sizes": [2000]}, "train_size: size 2000 is larger than the 1190 question groups of xquad"),
        ({"template": {"model": "tiny:depth=2"}}, "model: 'tiny:depth=2': bad option 'depth=2'"),
        ({"template": {"model": "/no/such/model"}}, "model: model folder '/no/such/model' does not exist"),
        ({"seeds": [-1]}, "seeds: seed -1 is outside 0..2147483647"),
        ({"seeds": [2**70]}, f"seeds: seed {2**70} is outside 0..2147483647"),
        ({"template": {"learning_rate": 1e300}}, "learning_rate: must be greater than 0 and at most 1, got 1e+300"),
        ({"template": {"temperature": "1e400"}}, "temperature: must be a finite number, got inf"),
    ],
    ids=["flores-el", "unknown-split", "xquad-sw", "size-beyond-data", "bad-tiny", "missing-folder",
         "negative-seed", "huge-seed", "huge-lr", "infinite-temperature"],
)
def test_submit_refuses_settings_that_would_fail_after_training(tmp_path, capsys, change, fragment):
    study = {"name": "doomed", "strategies": ["mono", "cross"], "train_sizes": [8], "seeds": [0],
             "include_baseline": False, "template": dict(_TINY_TEMPLATE)}
    study["template"].update(change.pop("template", {}))
    study.update(change)
    text = json.dumps(study).replace('"1e400"', "1e400")  # a number JSON reads as infinity
    status, err = _submit_text(tmp_path, text, capsys)
    assert status == 2 and err.count("\n") == 0, err
    assert fragment in err


def test_the_same_study_with_sane_settings_is_accepted(tmp_path, capsys):
    study = {"name": "fine", "strategies": ["mono", "cross"], "train_sizes": [8], "seeds": [0, 2**31 - 1],
             "include_baseline": False, "template": _TINY_TEMPLATE}
    assert _submit_text(tmp_path, json.dumps(study), capsys)[0] == 0


def test_a_study_name_of_megabytes_is_refused_in_one_short_line(tmp_path, capsys):
    study = StudyConfig("n" * 5_000_000, strategies=("mono",), train_sizes=(4,), template=RunConfig(batch_size=2))
    status, err = _submit_text(tmp_path, study.to_json(), capsys)
    assert status == 2 and err == "hybridscale submit: error: name: 5000000 characters; use at most 500"


def test_an_unreadable_corpus_is_refused_at_submit(tmp_path):
    corpus = tmp_path / "miracl-sw.jsonl"
    corpus.write_text('{"docid": "1#0", "title": "T", "text": "Habari"}\n', encoding="utf-8")
    corpus.chmod(0o000)
    study = StudyConfig("m", strategies=("mono",), train_sizes=(4,), include_baseline=True,
                        template=RunConfig(batch_size=2, evaluations=(EvalSpec("miracl", ("sw",), "dev"),)))
    path = tmp_path / "study.json"
    path.write_text(study.to_json(), encoding="utf-8")
    command = without_file_override([sys.executable, "-m", "hybridscale", "--db", str(tmp_path / "m.db"),
                                     "submit", str(path), "--corpus", str(corpus)])
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (f"hybridscale submit: error: --corpus {corpus}: cannot be read (Permission denied: "
                                   f"{corpus}); check its permissions")


# ---- smaller ones ---------------------------------------------------------------------
def test_retry_of_an_unknown_run_says_there_is_none(tmp_path, capsys):
    db_path = tmp_path / "cli.db"
    main(["--db", str(db_path), "submit", str(_study_file(tmp_path))])
    capsys.readouterr()
    assert main(["--db", str(db_path), "retry", "deadbeef"]) == 2
    assert capsys.readouterr().err.strip() == "hybridscale retry: error: no run 'deadbeef' in this database"


def test_export_into_a_missing_folder_is_refused(tmp_path, capsys):
    db_path = tmp_path / "cli.db"
    main(["--db", str(db_path), "submit", str(_study_file(tmp_path))])
    capsys.readouterr()
    target = tmp_path / "nonexistent" / "dir" / "x.csv"
    assert main(["--db", str(db_path), "export", "--csv", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"the folder {target.parent} does not exist" in err
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("command", ["submit", "inspect-batches"])
def test_a_file_that_is_not_utf8_is_named_in_the_error(tmp_path, capsys, command):
    path = tmp_path / "latin1-study.json"
    path.write_bytes('{"name": "étude"}'.encode("latin-1"))
    assert main(["--db", str(tmp_path / "x.db"), command, str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"hybridscale {command}: error: {path}: not UTF-8 text (byte 0xe9 at position 10); save the "
                   f"{'study file' if command == 'submit' else 'study or run file'} as UTF-8")


def test_export_per_query_and_warnings_in_status(tmp_path, capsys):
    from vocabulary.records import QueryValues

    db_path = tmp_path / "cli.db"
    main(["--db", str(db_path), "submit", str(_study_file(tmp_path))])
    db = open_db(db_path)
    run = queue.claim_next(db, "w")

    class Cell:
        eval_set, setting, query_language, passage_language, metric, value, num_queries = (
            "miracl/dev", "mono", "yo", "yo", "nDCG@10", 0.5, 2)

    values = QueryValues("miracl/dev", "mono", "yo", "yo", "nDCG@10", ("yo:1#0", "yo:2#0"), (0.25, 0.75))
    queue.complete(db, run.id, "w", [Cell()], per_query=[values], warnings=["miracl/dev: 5 of 9 relevant ..."])
    capsys.readouterr()
    out = tmp_path / "per-query.csv"
    assert main(["--db", str(db_path), "export", "--per-query", str(out), "--csv", str(tmp_path / "m.csv")]) == 0
    assert f"wrote 2 per-query values to {out}" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["run_id"], r["query_id"], r["metric"], r["value"]) for r in rows] == [
        (run.id, "yo:1#0", "nDCG@10", "0.25"), (run.id, "yo:2#0", "nDCG@10", "0.75")]
    assert main(["--db", str(db_path), "export"]) == 2
    assert "--csv FILE (the metrics), --per-query FILE" in capsys.readouterr().err
    assert main(["--db", str(db_path), "status"]) == 0
    assert f"  {run.id} done" in (status := capsys.readouterr().out)
    assert "    warning: miracl/dev: 5 of 9 relevant ..." in status


def _trec_files(tmp_path):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 d1 1\nq2 0 d5 0\nq3 0 d7 1\n")
    run = tmp_path / "run.txt"
    run.write_text("q1 Q0 d1 1 0.9 t\nq1 Q0 d2 2 0.3 t\nq2 Q0 d3 1 0.8 t\n")
    return str(qrels), str(run)


def test_metrics_scores_like_trec_eval_with_full_precision_and_its_layout(tmp_path, capsys):
    qrels, run = _trec_files(tmp_path)
    # The example: q2 is judged with nothing relevant and scores 0; q3 is not in the run (skipped, no -c).
    assert main(["metrics", "--qrels", qrels, "--run", run, "--measures", "nDCG@10,RR"]) == 0
    assert capsys.readouterr().out.strip() == '{"nDCG@10": 0.5, "RR": 0.5}'
    assert main(["metrics", "--qrels", qrels, "--run", run, "--measures", "nDCG@10", "-c"]) == 0
    assert capsys.readouterr().out.strip() == '{"nDCG@10": 0.3333333333333333}'  # with -c q3 counts as 0
    assert main(["metrics", "--qrels", qrels, "--run", run, "--measures", "nDCG@10", "--format", "trec", "-q"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "nDCG@10               \tq1\t1.0000", "nDCG@10               \tq2\t0.0000", "nDCG@10               \tall\t0.5000"]


def test_metrics_on_a_run_file_of_one_huge_line_says_so_in_one_short_line(tmp_path, capsys):
    qrels, _ = _trec_files(tmp_path)
    run = tmp_path / "huge.txt"
    run.write_text("q1 Q0 " + "d" * (3 * 2**20) + " 1 0.5 t\n")
    assert main(["metrics", "--qrels", qrels, "--run", str(run), "--measures", "RR"]) == 2
    err = capsys.readouterr().err
    assert "huge.txt line 1: longer than" in err and len(err) < 300, err[:300]


@pytest.mark.parametrize("kind", ["folder", "fifo", "device"])
@pytest.mark.timeout(60)  # before the fix, reading the FIFO waited for a writer
def test_a_corpus_that_is_not_a_regular_file_is_refused_at_submit_saying_what_it_is(tmp_path, capsys, kind):
    corpus = {"folder": tmp_path / "empty", "fifo": tmp_path / "fifo", "device": Path("/dev/zero")}[kind]
    if kind == "folder":
        corpus.mkdir()
    elif kind == "fifo":
        os.mkfifo(corpus)
    study = StudyConfig("m", strategies=("mono",), train_sizes=(4,), include_baseline=True,
                        template=RunConfig(batch_size=2, evaluations=(EvalSpec("miracl", ("sw",), "dev"),)))
    path = tmp_path / "study.json"
    path.write_text(study.to_json(), encoding="utf-8")
    assert main(["--db", str(tmp_path / "m.db"), "submit", str(path), "--corpus", str(corpus)]) == 2
    what = {"folder": "a folder without files", "fifo": "a FIFO", "device": "a character device"}[kind]
    assert f"--corpus {corpus}: {what}" in capsys.readouterr().err

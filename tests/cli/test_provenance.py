"""Provenance: a real worker run on SQLite and shipped data records what produced it; the database, ``export
--runs``, ``report``'s summary.md, ``status`` and ``export --mlflow`` (a real ``file:`` store read back by
``mlflow.search_runs``) all show it."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import platform
import re
import sqlite3
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest
from sqlalchemy import event

from engine.data import load_eval_set
from hybridscale.cli import main
from hybridscale.provenance import describe_file, device_name
from hybridscale.report import provenance_lines, write_report
from hybridscale.worker import run_worker
from storage import queue
from storage.db import open_db
from storage.provenance import latest_provenance, record_provenance
from storage.queries import list_runs, tidy_metrics
from tests.cli.test_worker import FAST_EVAL, TINY, WORKER, _study
from tests.storage.test_provenance_store import attempt_records

FLORES_SW = Path(__file__).resolve().parents[2] / "assets" / "data" / "flores" / "swh_Latn" / "test.tsv.xz"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A database with one study of two finished runs (trained on xquad, evaluated on FLORES)."""
    folder = tmp_path_factory.mktemp("provenance")
    db = open_db(folder / "p.db")
    queue.submit_study(db, _study("prov", train_sizes=(8, 12)))
    assert run_worker(db, WORKER) == 2
    assert {r.status for r in list_runs(db)} == {"done"}
    yield folder / "p.db", db
    db.dispose()


def test_a_finished_run_records_software_device_phases_memory_and_data(finished):
    _path, db = finished
    run_id = list_runs(db)[0].id
    (record,) = attempt_records(db, run_id)
    assert (record["attempt"], record["outcome"]) == (1, "done")
    software = record["software"]
    assert software["torch"] == metadata.version("torch")
    assert software["transformers"] == metadata.version("transformers")
    assert software["python"] == platform.python_version()
    assert record["device"] == {"name": device_name("cpu"), "count": 1}
    assert record["peak_rss_mb"] > 100 and record["peak_gpu_mb"] is None
    phases = {p["phase"]: p for p in record["phases"]}
    assert phases["training"]["done"] == TINY.max_steps and phases["training"]["rate"] > 0
    passages = phases["evaluating flores/test: encoding passages"]
    assert passages["done"] == len(load_eval_set(FAST_EVAL[0]).passages)
    assert record["started_at"] <= phases["training"]["start"] <= phases["training"]["end"] <= record["finished_at"]
    data = {Path(d["file"]).resolve(): d for d in record["data"]}
    sw = data[FLORES_SW.resolve()]
    assert sw["size"] == FLORES_SW.stat().st_size
    assert sw["sha256"] == hashlib.sha256(FLORES_SW.read_bytes()).hexdigest()
    assert not any(str(db.artifacts_dir) in str(f) for f in data)  # the run's own checkpoints are not data


def test_export_runs_writes_one_row_per_run_with_its_provenance(finished, tmp_path, capsys):
    path, db = finished
    out = tmp_path / "runs.csv"
    assert main(["--db", str(path), "export", "--runs", str(out)]) == 0
    assert "wrote 2 runs" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    records = latest_provenance(db)
    assert sorted(r["run_id"] for r in rows) == sorted(records)
    for row in rows:
        record = records[row["run_id"]]
        assert (row["status"], row["torch"], row["devices"]) == ("done", record["software"]["torch"], "1")
        training = next(p for p in record["phases"] if p["phase"] == "training")
        assert float(row["steps_per_s"]) == pytest.approx(training["rate"], abs=1e-3)
        assert float(row["passages_per_s"]) > 0
        assert "swh_Latn/test.tsv.xz" in row["data"]


def test_report_and_status_show_what_produced_the_runs(finished, tmp_path, capsys):
    path, db = finished
    files = write_report(db, 1, tmp_path / "report")
    summary = files.summary.read_text(encoding="utf-8")
    torch, transformers = metadata.version("torch"), metadata.version("transformers")
    assert f"Provenance: all 2 runs on torch {torch}, transformers {transformers}, 1 × {device_name('cpu')}." \
        in summary
    assert "Not like for like" not in summary
    assert main(["--db", str(path), "status"]) == 0
    assert capsys.readouterr().out.count("steps/s") == 2


def test_runs_of_one_series_on_different_software_are_flagged(finished, tmp_path):
    """Records written by hand for a copy of the database: one run says it ran on another torch and GPU."""
    path, _db = finished
    db = _copy(path, tmp_path)
    run_ids = sorted(latest_provenance(db))
    other = dict(latest_provenance(db)[run_ids[1]])
    other["software"] = {**other["software"], "torch": "9.9.9"}
    other["device"] = {"name": "NVIDIA H100 80GB HBM3", "count": 1}
    record_provenance(db, run_ids[1], 2, other)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _k, statement, *_rest: statements.append(statement))
    line, flags = provenance_lines(db, 1)
    assert sum("FROM provenance" in s for s in statements) == 1  # the line and the flags share one read
    assert "they differ in torch (" in line
    assert len(flags) == 2 and "Not like for like" in flags[0]
    assert f"torch ({metadata.version('torch')} vs 9.9.9)" in flags[0] or \
        f"torch (9.9.9 vs {metadata.version('torch')})" in flags[0]
    summary = write_report(db, 1, tmp_path / "report").summary.read_text(encoding="utf-8")
    assert "they differ in torch" in summary and "Not like for like" in summary
    db.dispose()


def _copy(path: Path, folder: Path):
    """A copy of the database (the WAL's pages too), opened: a test that writes leaves the module's fixture alone."""
    copy = folder / "copy.db"
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return open_db(copy)


def test_a_run_handed_back_and_resumed_keeps_a_record_of_each_attempt(tmp_path):
    db = open_db(tmp_path / "resume.db")
    config = dataclasses.replace(TINY, max_steps=12, epochs=1000.0, checkpoint_every=2)
    run_id = queue.submit_study(db, _study("resume", template=config)).queued[0]
    stop = threading.Event()

    def stop_after_two_steps(_run_id, _label, progress) -> None:
        if progress.step is not None and progress.step >= 2:
            stop.set()

    assert run_worker(db, WORKER, listener=stop_after_two_steps, shutdown=stop) == 1
    assert run_worker(db, WORKER) == 1
    first, second = attempt_records(db, run_id)
    assert (first["outcome"], second["outcome"]) == ("released", "done")
    first_steps = next(p for p in first["phases"] if p["phase"] == "training")["done"]
    assert next(p for p in second["phases"] if p["phase"] == "training")["done"] == config.max_steps
    assert first_steps < config.max_steps
    db.dispose()


def test_export_to_mlflow_is_read_back_with_the_same_values_and_twice_is_idempotent(finished, tmp_path, capsys):
    mlflow = pytest.importorskip("mlflow")
    path, db = finished
    store = f"file:{tmp_path / 'mlruns'}"
    assert main(["--db", str(path), "export", "--mlflow", store, "--study", "1"]) == 0
    assert "2 run(s) created" in capsys.readouterr().out
    assert main(["--db", str(path), "export", "--mlflow", store, "--study", "1"]) == 0
    assert "0 run(s) created, 0 replaced, 2 unchanged" in capsys.readouterr().out
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["prov"], output_format="list")
    assert len(runs) == 2
    expected: dict[str, dict[str, float]] = {}
    for row in tidy_metrics(db, 1):
        # The CSV's columns joined by "/", characters MLflow refuses in a key ("@", "(") as "_".
        key = re.sub(r"[^/\w.\- ]", "_", f"{row['eval_set']}/{row['setting']}/{row['query_language']}-"
                                          f"{row['passage_language']}/{row['metric']}")
        expected.setdefault(row["run_id"], {})[key] = row["value"]
    records = latest_provenance(db)
    for run in runs:
        run_id = run.data.tags["hybridscale.run_id"]
        assert run.data.metrics == expected[run_id]
        assert run.data.params["strategy"] == "hybrid" and run.data.tags["study"] == "prov"
        assert run.data.tags["provenance.torch"] == records[run_id]["software"]["torch"]
        artifacts = mlflow.MlflowClient(store).list_artifacts(run.info.run_id, "eval")
        assert artifacts, "the TREC run files were not logged"


def test_a_run_whose_content_changed_is_replaced_not_duplicated(finished, tmp_path, capsys):
    mlflow = pytest.importorskip("mlflow")
    db = _copy(finished[0], tmp_path)
    store = f"file:{tmp_path / 'mlruns'}"
    assert main(["--db", str(tmp_path / "copy.db"), "export", "--mlflow", store]) == 0
    run_id = sorted(latest_provenance(db))[0]
    record_provenance(db, run_id, 2, {**latest_provenance(db)[run_id], "host": "another-host"})
    assert main(["--db", str(tmp_path / "copy.db"), "export", "--mlflow", store]) == 0
    assert "0 run(s) created, 1 replaced, 1 unchanged" in capsys.readouterr().out
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["hybridscale"], output_format="list")
    assert sorted(r.data.tags["hybridscale.run_id"] for r in runs) == sorted(latest_provenance(db))
    assert {r.data.tags["hybridscale.run_id"]: r.data.tags["provenance.host"] for r in runs}[run_id] == "another-host"
    db.dispose()


def test_export_to_mlflow_reads_the_settings_and_lists_the_mlflow_runs_once_for_all_runs(finished, tmp_path,
                                                                                          monkeypatch):
    pytest.importorskip("mlflow")
    from hybridscale import mlflow_export

    db = _copy(finished[0], tmp_path)
    monkeypatch.setattr(mlflow_export, "_SEARCH_PAGE", 1)  # every MLflow run on a page of its own
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _k, statement, *_rest: statements.append(statement))
    store = f"file:{tmp_path / 'mlruns'}"
    assert mlflow_export.export_to_mlflow(db, store).created == 2
    assert mlflow_export.export_to_mlflow(db, store).unchanged == 2  # each found across the pages
    per_run = [s for s in statements if "config_json" in s and "runs.id = " in s]
    assert not per_run, per_run  # the settings of all runs come in one query
    db.dispose()


def test_a_hub_cache_file_names_its_repository_and_revision_and_a_local_file_its_hash(tmp_path):
    """A folder laid out as the hub cache lays out a dataset snapshot (no hub is reachable here)."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hub" / "datasets--miracl--miracl-corpus" / "snapshots" / revision / "miracl-corpus-v1.0-sw"
    snapshot.mkdir(parents=True)
    hub_file = snapshot / "docs-0.jsonl.gz"
    hub_file.write_bytes(b"x" * 1000)
    assert describe_file(hub_file) == {"file": str(hub_file), "size": 1000, "sha256": None, "kind": "hub dataset",
                                       "repo": "miracl/miracl-corpus", "revision": revision}
    local = tmp_path / "queries.tsv"
    local.write_bytes(b"sw:1\tHabari\n")
    assert describe_file(local)["sha256"] == hashlib.sha256(b"sw:1\tHabari\n").hexdigest()


def test_export_to_mlflow_without_mlflow_installed_says_how_to_install_it(finished, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # what importing it does where it is not installed
    assert main(["--db", str(finished[0]), "export", "--mlflow", "file:unused"]) == 2
    assert "pip install 'hybridscale[mlflow]'" in capsys.readouterr().err

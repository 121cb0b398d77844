"""The storage layer, unchanged, on a real PostgreSQL server (the shared queue of a cluster).

The single-process queue tests of test_queue.py (and the export and migration
tests of test_db_and_export.py) are imported and collected here a second time:
this module's ``db`` and ``database_url`` fixtures override the SQLite ones,
so the very same assertions run against PostgreSQL. The rest is what only a
server shows: several processes racing for runs (claim loops, and real
``hybridscale worker`` processes training tiny runs), ``FOR UPDATE SKIP
LOCKED``, several processes creating the schema of a new database at once, and
column types that PostgreSQL enforces.
"""

from __future__ import annotations

import dataclasses
import multiprocessing

import pytest
from sqlalchemy import Text, create_engine, func, inspect, select, text

from storage import queue
from storage.db import open_db
from storage.migrations import SCHEMA_VERSION
from storage.models import Base, Event, Run
from storage.queries import list_runs
from tests.cli.test_worker import TINY, _metrics, _study, _worker_process
from tests.pg_server import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.storage.schema_v1 import create_version_1_database
from tests.storage.studies import grid_study
from tests.storage.test_db_and_export import (  # noqa: F401 - collected again, against PostgreSQL
    test_csv_cells_a_spreadsheet_would_evaluate_are_quoted,
    test_csv_export_is_tidy_with_config_columns,
    test_version_1_database_is_upgraded_and_keeps_its_runs,
    test_version_2_database_gains_the_claiming_process_and_keeps_its_runs,
)
from tests.storage.test_provenance_store import test_an_upgraded_version_1_database_stores_provenance_per_attempt  # noqa: F401 - collected again, against PostgreSQL
from tests.storage.test_queue import (  # noqa: F401 - collected again, against PostgreSQL
    test_a_row_that_is_not_a_run_fails_in_the_claim_and_the_next_run_is_taken,
    test_a_run_whose_worker_process_is_gone_is_requeued_at_once_on_the_same_host,
    test_cancel_queued_and_running,
    test_claim_complete_and_resubmit_reuses_done_runs,
    test_claim_returns_none_on_empty_queue,
    test_complete_stores_all_metrics_or_none,
    test_failed_run_keeps_message_and_queue_goes_on,
    test_retrying_an_unknown_run_says_so,
    test_run_that_kills_every_worker_fails_after_max_attempts,
    test_stale_run_is_requeued_and_dead_worker_cannot_write,
    test_submit_queues_every_run_in_expansion_order,
    test_worker_processes_claim_each_run_exactly_once,
)
from vocabulary.config import RunConfig

WORKERS = 4


@pytest.fixture()
def db(postgres_url):  # noqa: F811 - the fixture imported above
    database = open_db(postgres_url)
    yield database
    database.dispose()


@pytest.fixture()
def database_url(postgres_url):  # noqa: F811
    return postgres_url


def test_open_db_creates_the_schema_and_reopening_is_a_noop(postgres_url):  # noqa: F811
    db = open_db(postgres_url)
    assert db.engine.dialect.name == "postgresql" and not db.is_sqlite
    assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
    db.dispose()
    again = open_db(postgres_url)
    with again.engine.connect() as connection:
        versions = connection.execute(text("SELECT version FROM schema_version")).scalars().all()
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    again.dispose()


def _open_at_once(url: str, barrier, out) -> None:
    barrier.wait(timeout=60)
    open_db(url).dispose()
    out.put("ok")


def test_processes_opening_a_new_database_at_once_create_the_schema_once(postgres_url):  # noqa: F811
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WORKERS), context.Queue()
    processes = [context.Process(target=_open_at_once, args=(postgres_url, barrier, results)) for _ in range(WORKERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * WORKERS
    assert [results.get(timeout=5) for _ in processes] == ["ok"] * WORKERS
    db = open_db(postgres_url)
    with db.engine.connect() as connection:
        versions = connection.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    db.dispose()


def test_claim_skips_a_run_another_transaction_has_locked(postgres_url):  # noqa: F811
    # lock_timeout turns a claim that would wait on the lock into an error instead of a hang.
    db = open_db(postgres_url + "&options=-c%20lock_timeout%3D5000")
    first, second = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued
    with db.engine.connect() as other:
        locked = other.execute(
            select(Run.id).where(Run.status == "queued").order_by(Run.position, Run.id).limit(1).with_for_update()
        ).scalar()
        assert locked == first
        claimed = queue.claim_next(db, "w1")  # must neither wait for `other` nor take its row
        assert claimed is not None and claimed.id == second
        other.rollback()
    assert queue.claim_next(db, "w2").id == first
    assert queue.claim_next(db, "w3") is None
    db.dispose()


def test_version_2_turns_the_user_text_columns_of_a_version_1_database_into_text(postgres_url):  # noqa: F811
    create_version_1_database(postgres_url)
    old = create_engine(postgres_url)
    assert str({c["name"]: c["type"] for c in inspect(old).get_columns("runs")}["label"]) == "VARCHAR(200)"
    old.dispose()
    db = open_db(postgres_url)
    columns = {(table, c["name"]): c["type"] for table in ("runs", "studies") for c in inspect(db.engine).get_columns(table)}
    for name in (("runs", "label"), ("runs", "model"), ("studies", "name")):
        assert isinstance(columns[name], Text), (name, columns[name])
    assert str(columns[("runs", "worker_id")]) == "VARCHAR(200)"  # the others are left alone
    db.dispose()


def test_a_long_local_model_path_can_be_submitted_to_a_new_database(db, long_model_folder):
    study = dataclasses.replace(grid_study(sizes=(2,), seeds=(0,), baseline=True),
                                template=RunConfig(model=long_model_folder, batch_size=2))
    assert len(study.expand()[0].label) > 200
    assert len(queue.submit_study(db, study).queued) == 3


@pytest.mark.slow
def test_worker_processes_train_and_store_each_run_exactly_once(db, postgres_url):  # noqa: F811
    """Real ``hybridscale worker`` processes on one PostgreSQL queue: heartbeats, checkpoints, metrics.

    The claim race itself is the fast claim-loop test above; this one adds everything a worker writes.
    """
    one_step = dataclasses.replace(TINY, max_steps=1)
    submitted = queue.submit_study(db, _study("pg-workers", template=one_step, seeds=(0, 1, 2, 3))).queued
    workers = [_worker_process(postgres_url, "--exit-when-empty", "--worker-id", f"w{i}") for i in range(2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    executed = sum(int(o.split("worker finished: ")[1].split()[0]) for o in outputs)
    assert executed == len(submitted) == 4
    assert {r.status for r in list_runs(db)} == {"done"}
    with db.session() as session:
        claims = session.execute(
            select(Event.run_id, func.count()).where(Event.kind == "claimed").group_by(Event.run_id)
        ).all()
    assert dict(claims) == {run_id: 1 for run_id in submitted}
    assert all(_metrics(db, run_id) for run_id in submitted)


def test_no_output_or_job_script_holds_the_database_password(postgres_url, tmp_path, capsys):  # noqa: F811
    from sqlalchemy.engine import make_url

    from hybridscale.cli import main

    url = make_url(postgres_url).set(password="S3cretPW").render_as_string(hide_password=False)
    assert "S3cretPW" in url  # the server trusts local connections, so the password is only carried along
    assert main(["--db", url, "status"]) == 0  # an empty database
    open_db(url).dispose()
    assert main(["--db", url, "status"]) == 0  # its tables created, still no study
    study = tmp_path / "study.json"
    study.write_text(grid_study(name="pw", sizes=(2,), seeds=(0,)).to_json(), encoding="utf-8")
    script = tmp_path / "job.sbatch"
    assert main(["--db", url, "submit", str(study), "--slurm", "--slurm-out", str(script)]) == 0
    assert main(["--db", url, "status"]) == 0
    printed = capsys.readouterr()
    assert "S3cretPW" not in printed.out + printed.err
    assert "no hybridscale tables in postgresql+psycopg://postgres:***@" in printed.out
    assert "no studies in postgresql+psycopg://postgres:***@" in printed.out
    assert "without its password" in printed.out and "~/.pgpass" in printed.out
    text = script.read_text()
    assert "S3cretPW" not in text and "HYBRIDSCALE_DB=" in text and " --db " not in text

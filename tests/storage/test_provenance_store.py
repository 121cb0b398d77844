"""Provenance records in the database: an old database gains the table, records are kept per attempt, and the
runs table shows the latest one (real SQLite here; test_postgres.py reruns the database_url tests on PostgreSQL)."""

from __future__ import annotations

import json

from sqlalchemy import inspect, select

from storage.db import Database, open_db
from storage.models import Provenance
from storage.provenance import RUN_COLUMNS, latest_provenance, record_provenance, run_rows
from tests.storage.schema_v1 import OLD_RUN_ID, create_version_1_database


def attempt_records(db: Database, run_id: str) -> list[dict]:
    """Every attempt's record of one run, oldest first, read from the table (the app reads only the latest)."""
    statement = select(Provenance.record_json).where(Provenance.run_id == run_id).order_by(Provenance.id)
    with db.session() as session:
        return [json.loads(text) for text in session.scalars(statement)]


RECORD = {
    "attempt": 1, "outcome": "released", "software": {"torch": "2.5.1", "transformers": "4.46.0"},
    "device": {"name": "NVIDIA A100-SXM4-40GB", "count": 2},
    "phases": [{"phase": "training", "start": "2026-01-01T10:00:00+00:00", "end": "2026-01-01T10:01:40+00:00",
                "seconds": 100.0, "done": 50, "rate": 0.5}],
    "data": [{"file": "/data/flores/swh_Latn/test.tsv", "size": 1000, "sha256": "ab" * 32}],
}


def test_an_upgraded_version_1_database_stores_provenance_per_attempt(database_url):
    create_version_1_database(database_url)
    db = open_db(database_url)
    assert "provenance" in inspect(db.engine).get_table_names()
    (old,) = run_rows(db)
    assert tuple(old) == RUN_COLUMNS
    assert (old["run_id"], old["status"], old["torch"], old["data"]) == (OLD_RUN_ID, "done", None, None)
    second = {**RECORD, "outcome": "done", "software": {"torch": "2.6.0", "transformers": "4.47.0"}}
    record_provenance(db, OLD_RUN_ID, 1, RECORD)
    record_provenance(db, OLD_RUN_ID, 1, second)  # a handed-back attempt's number is used again
    assert attempt_records(db, OLD_RUN_ID) == [RECORD, second]
    assert latest_provenance(db) == {OLD_RUN_ID: second}
    (row,) = run_rows(db)
    assert (row["outcome"], row["torch"], row["device"], row["devices"]) == ("done", "2.6.0",
                                                                            "NVIDIA A100-SXM4-40GB", 2)
    assert (row["training_s"], row["steps_per_s"], row["data_files"]) == (100.0, 0.5, 1)
    assert row["data"] == f"/data/flores/swh_Latn/test.tsv (1000 bytes, sha256 {'ab' * 6})"
    db.dispose()

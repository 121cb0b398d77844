"""Provenance records in the database: one per attempt of a run, and the tidy one-row-per-run table.

A resumed run keeps the record of each attempt (they may have run on
different machines); readers that want one record per run take the latest
one, which is the one that produced a done run's numbers. An attempt whose
process was killed outright writes none (its run log still shows it).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from sqlalchemy import func, select

from storage.db import Database
from storage.models import Provenance, Run
from storage.queries import CONFIG_COLUMNS, DERIVED_COLUMNS, _in_study, _run_columns
from vocabulary.provenance import PROVENANCE_COLUMNS, columns

#: ``export --runs``: one row per run, its settings, its state, and its latest attempt's provenance.
RUN_COLUMNS: tuple[str, ...] = (
    "study", "run_id", "label", "series", *CONFIG_COLUMNS, *DERIVED_COLUMNS, "status", "attempts",
    *PROVENANCE_COLUMNS,
)


def record_provenance(db: Database, run_id: str, attempt: int, record: Mapping[str, Any]) -> None:
    """Append ``record`` as the provenance of ``attempt`` of the run."""
    with db.session() as session:
        session.add(Provenance(run_id=run_id, attempt=attempt, record_json=json.dumps(record, ensure_ascii=False)))


def latest_provenance(db: Database, study_id: int | None = None) -> dict[str, dict[str, Any]]:
    """Run id -> its latest record, for the runs (of the study) that have one."""
    latest = select(func.max(Provenance.id)).group_by(Provenance.run_id)
    if study_id is not None:
        latest = latest.where(Provenance.run_id.in_(_in_study(study_id)))
    statement = select(Provenance.run_id, Provenance.record_json).where(Provenance.id.in_(latest))
    with db.session() as session:
        return {run_id: json.loads(text) for run_id, text in session.execute(statement)}


def run_rows(db: Database, study_id: int | None = None,
             records: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One dict per run (in queue order) with :data:`RUN_COLUMNS`; provenance cells stay empty for runs without one.

    ``records``: the study's :func:`latest_provenance`, where the caller has read it already."""
    records = latest_provenance(db, study_id) if records is None else records
    statement = select(Run.id, Run.status, Run.attempts).order_by(Run.position, Run.id)
    if study_id is not None:
        statement = statement.where(Run.id.in_(_in_study(study_id)))
    with db.session() as session:
        configs = _run_columns(session, study_id)
        runs = session.execute(statement).all()
    empty = dict.fromkeys(PROVENANCE_COLUMNS)
    return [{**configs[run_id], "status": status, "attempts": attempts,
             **(columns(records[run_id]) if run_id in records else empty)}
            for run_id, status, attempts in runs]

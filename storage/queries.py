"""Read-only views of the database for the CLI, the GUI and the CSV export.

They return plain dataclasses and dicts (no ORM objects escape), so callers
never hold a session open and the GUI can poll from a worker thread.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
from typing import Any, Iterable, Iterator

from sqlalchemy import func, select

from storage.db import Database
from storage.models import Event, Metric, QueryValueSet, Run, Study, study_runs
from storage.packing import unpack_ids, unpack_values
from vocabulary.config import ConfigError, RunConfig
from vocabulary.records import ALL
from vocabulary.series import series_names
from vocabulary.settings import csv_columns, names_with_role

#: RunConfig fields copied next to every metric in the tidy table, in field order (declared on the fields).
CONFIG_COLUMNS: tuple[str, ...] = csv_columns(RunConfig)
#: The columns an evaluation-only run leaves empty: its training settings, all but its strategy and size 0.
UNUSED_WITHOUT_TRAINING: tuple[str, ...] = tuple(
    name for name in CONFIG_COLUMNS if name in names_with_role(RunConfig, "training") and name not in
    ("strategy", "train_size"))
METRIC_COLUMNS: tuple[str, ...] = (
    "eval_set", "setting", "query_language", "passage_language", "metric", "value", "num_queries",
)
#: ``series``: the line a run belongs to; runs share one only when they differ in their seeds alone
#: (:mod:`vocabulary.series`), so grouping by it never averages two configurations as seeds.
#: ``size_split``: how a run's size is split across several training sources; ``zero_shot``: empty, or
#: "not zero-shot: sw" when a training source trains on an evaluated target ("ablation: ..." if asked for).
#: ``steps_trained``: the steps a training run took (fewer than its budget after an early stop);
#: ``selected_step``: the step whose weights it kept and evaluated (empty for runs without training).
DERIVED_COLUMNS: tuple[str, ...] = ("size_split", "zero_shot", "steps_trained", "selected_step")
TIDY_COLUMNS: tuple[str, ...] = (
    "study", "run_id", "label", "series", *CONFIG_COLUMNS, *DERIVED_COLUMNS, *METRIC_COLUMNS,
)
CELL_COLUMNS: tuple[str, ...] = ("eval_set", "setting", "query_language", "passage_language")
#: The per-query table: one row per run x eval set x setting x languages x query x metric.
PER_QUERY_COLUMNS: tuple[str, ...] = (
    "study", "run_id", "label", "series", *CONFIG_COLUMNS, *DERIVED_COLUMNS, *CELL_COLUMNS, "query_id", "metric",
    "value",
)
#: Metric rows fetched per partition by tidy_metrics.
_FETCH_PARTITION = 2000


@dataclass(frozen=True)
class StudySummary:
    id: int
    name: str
    created_at: dt.datetime
    status_counts: dict[str, int]

    @property
    def run_count(self) -> int:
        return sum(self.status_counts.values())


@dataclass(frozen=True)
class RunView:
    id: str
    label: str
    model: str
    strategy: str
    alpha: float | None
    train_size: int
    seed: int
    status: str
    progress: float
    phase: str
    step: int
    total_steps: int
    loss: float | None
    dev_loss: float | None
    worker_id: str | None
    attempts: int
    cancel_requested: bool
    error: str | None
    log_path: str | None
    heartbeat_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime


_RUN_VIEW_FIELDS = tuple(f.name for f in fields(RunView))


def list_studies(db: Database) -> list[StudySummary]:
    with db.session() as session:
        studies = session.execute(select(Study.id, Study.name, Study.created_at).order_by(Study.id)).all()
        pairs = session.execute(
            select(study_runs.c.study_id, Run.status).join(Run, Run.id == study_runs.c.run_id)
        ).all()
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for study_id, status in pairs:
        counts[study_id][status] += 1
    return [StudySummary(s.id, s.name, s.created_at, dict(counts[s.id])) for s in studies]


def list_runs(db: Database, study_id: int | None = None, changed_since: dt.datetime | None = None) -> list[RunView]:
    """Runs in queue order; ``changed_since`` makes polling incremental (cheap for the GUI)."""
    statement = select(*(getattr(Run, name) for name in _RUN_VIEW_FIELDS)).order_by(Run.position, Run.id)
    if study_id is not None:
        statement = statement.join(study_runs, study_runs.c.run_id == Run.id).where(study_runs.c.study_id == study_id)
    if changed_since is not None:
        statement = statement.where(Run.updated_at > changed_since)
    with db.session() as session:
        rows = session.execute(statement).all()
    return [RunView(**row._asdict()) for row in rows]


def run_statuses(db: Database, run_ids: Iterable[str]) -> dict[str, str]:
    """Run id -> status, for those of ``run_ids`` the database holds (asked in chunks: SQLite caps parameters)."""
    ids, statuses = list(run_ids), {}
    with db.session() as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            statuses.update(dict(session.execute(select(Run.id, Run.status).where(Run.id.in_(chunk))).all()))
    return statuses


def run_log_path(db: Database, run_id: str) -> str | None:
    """Where the run's log was written (its artifacts folder), or None (no such run, or never started)."""
    with db.session() as session:
        return session.scalar(select(Run.log_path).where(Run.id == run_id))


def run_config(db: Database, run_id: str) -> RunConfig:
    with db.session() as session:
        text = session.scalar(select(Run.config_json).where(Run.id == run_id))
    if text is None:
        raise KeyError(f"no run {run_id!r} in this database")
    return RunConfig.from_json(text)


def run_configs(db: Database, study_id: int | None = None) -> dict[str, RunConfig]:
    """Run id -> its settings, for every run (of the study), in one query."""
    statement = select(Run.id, Run.config_json)
    if study_id is not None:
        statement = statement.where(Run.id.in_(_in_study(study_id)))
    with db.session() as session:
        return {run_id: RunConfig.from_json(text) for run_id, text in session.execute(statement)}


def run_events(db: Database, run_id: str) -> list[tuple[dt.datetime, str, str]]:
    with db.session() as session:
        rows = session.execute(
            select(Event.time, Event.kind, Event.message).where(Event.run_id == run_id).order_by(Event.id)
        ).all()
    return [tuple(row) for row in rows]


def tidy_metrics(db: Database, study_id: int | None = None) -> list[dict[str, Any]]:
    """One dict per (run, eval set, setting, query language, passage language, metric).

    Each row carries the run's config columns, its series (named among the
    runs read, see :data:`TIDY_COLUMNS`) and the names of the studies it
    belongs to, so the table stands alone in a spreadsheet or pandas.

    Plain columns, not ORM objects (the GUI reads them in a background thread
    that shares the interpreter with the window, so their cost is the window's;
    bench/RESULTS.md has the measurement), fetched in partitions so the
    driver's buffers stay small.
    """
    metrics = select(Metric.run_id, *(getattr(Metric, name) for name in METRIC_COLUMNS)).join(Run, Run.id == Metric.run_id)
    if study_id is not None:
        metrics = metrics.where(Run.id.in_(_in_study(study_id)))
    metrics = metrics.order_by(
        Run.position, Metric.eval_set, Metric.setting, Metric.query_language, Metric.passage_language, Metric.metric
    ).execution_options(yield_per=_FETCH_PARTITION)
    with db.session() as session:
        configs = _run_columns(session, study_id)
        table: list[dict[str, Any]] = []
        for partition in session.execute(metrics).partitions():
            for run_id, *values in partition:
                table.append({**configs[run_id], **dict(zip(METRIC_COLUMNS, values))})
    return table


def per_query_values(db: Database, study_id: int | None = None) -> Iterator[dict[str, Any]]:
    """One dict per (run, eval set, setting, query language, passage language, query, metric), lazily.

    The values are the ones each cell's metric row averages, with the run's
    columns as in :func:`tidy_metrics`. A study has millions of them, so they
    are yielded one stored cell at a time, never held all at once.
    """
    for cell in query_value_cells(db, study_id):
        for query_id, value in zip(cell.query_ids, cell.values):
            yield {**cell.columns, "query_id": query_id, "metric": cell.metric, "value": value}


@dataclass(frozen=True)
class QueryValueCell:
    """One run's per-query values in one cell and metric; ``columns`` are the run's and the cell's (as in a tidy row)."""

    columns: dict[str, Any]
    metric: str
    query_ids: list[str]
    values: list[float]


def query_value_cells(db: Database, study_id: int | None = None, *, eval_set: str | None = None,
                      setting: str | None = None, metric: str | None = None) -> Iterator[QueryValueCell]:
    """The stored cells of per-query values, one run and cell at a time, optionally of one eval set, setting, metric.

    What the app's Findings page and drill-down read: a cell keeps its
    values together, which is what a paired comparison needs.
    """
    cells = select(QueryValueSet.run_id, *(getattr(QueryValueSet, name) for name in CELL_COLUMNS),
                   QueryValueSet.metric, QueryValueSet.packed_ids, QueryValueSet.packed_values)
    cells = cells.join(Run, Run.id == QueryValueSet.run_id)
    if study_id is not None:
        cells = cells.where(Run.id.in_(_in_study(study_id)))
    for column, wanted in ((QueryValueSet.eval_set, eval_set), (QueryValueSet.setting, setting),
                           (QueryValueSet.metric, metric)):
        if wanted is not None:
            cells = cells.where(column == wanted)
    cells = cells.order_by(Run.position, *(getattr(QueryValueSet, name) for name in CELL_COLUMNS),
                           QueryValueSet.metric).execution_options(yield_per=50)
    with db.session() as session:
        configs = _run_columns(session, study_id)
        for run_id, *cell, metric, packed_ids, packed in session.execute(cells):
            yield QueryValueCell({**configs[run_id], **dict(zip(CELL_COLUMNS, cell))}, metric,
                                 unpack_ids(packed_ids), unpack_values(packed))


def stored_measurements(db: Database, study_id: int) -> set[tuple[str, str, str]]:
    """The (eval set, setting, metric) triples a study holds per-query values of."""
    statement = select(QueryValueSet.eval_set, QueryValueSet.setting, QueryValueSet.metric).distinct()
    statement = statement.where(QueryValueSet.run_id.in_(_in_study(study_id)))
    with db.session() as session:
        return {tuple(row) for row in session.execute(statement)}


def stored_passage_languages(db: Database, study_id: int) -> dict[str, set[str]]:
    """Eval set -> the passage languages a study's per-query values search (the pool's ``all`` left out)."""
    statement = select(QueryValueSet.eval_set, QueryValueSet.passage_language).distinct()
    statement = statement.where(QueryValueSet.run_id.in_(_in_study(study_id)), QueryValueSet.passage_language != ALL)
    languages: dict[str, set[str]] = defaultdict(set)
    with db.session() as session:
        for eval_set, language in session.execute(statement):
            languages[eval_set].add(language)
    return dict(languages)


def run_warnings(db: Database, study_id: int | None = None) -> dict[str, list[str]]:
    """Run id -> the warnings its latest attempt stored (e.g. relevant passages missing from a corpus)."""
    last_claim = select(Event.run_id, func.max(Event.id).label("claim_id")).where(Event.kind == "claimed")
    last_claim = last_claim.group_by(Event.run_id).subquery()
    statement = (
        select(Event.run_id, Event.message)
        .join(last_claim, last_claim.c.run_id == Event.run_id)
        .where(Event.kind == "warning", Event.id > last_claim.c.claim_id)
        .order_by(Event.id)
    )
    if study_id is not None:
        statement = statement.where(Event.run_id.in_(_in_study(study_id)))
    warnings: dict[str, list[str]] = defaultdict(list)
    with db.session() as session:
        for run_id, message in session.execute(statement):
            warnings[run_id].append(message)
    return dict(warnings)


def _in_study(study_id: int):
    return select(study_runs.c.run_id).where(study_runs.c.study_id == study_id)


def _run_columns(session, study_id: int | None) -> dict[str, dict[str, Any]]:
    """Run id -> its study names, label, series and config columns (the left part of a tidy row)."""
    runs = select(Run.id, Run.config_json, Run.label, Run.step, Run.selected_step)
    if study_id is not None:
        runs = runs.where(Run.id.in_(_in_study(study_id)))
    names = _study_names(session, study_id)
    read = [(run_id, json.loads(config_json), label, steps)
            for run_id, config_json, label, *steps in session.execute(runs)]
    series = series_names({run_id: _identity(config) for run_id, config, _label, _steps in read})
    return {
        run_id: {"study": names.get(run_id, ""), "run_id": run_id, "label": label, "series": series[run_id],
                 **_config_columns(config), **_step_columns(config, *steps)}
        for run_id, config, label, steps in read
    }


def _step_columns(config: dict[str, Any], step: int | None, selected_step: int | None) -> dict[str, Any]:
    """``steps_trained`` and ``selected_step`` of a training run (unknown for a ``best_dev`` run finished before schema version 7)."""
    if config.get("strategy", "none") == "none":
        return {"steps_trained": None, "selected_step": None}
    if selected_step is None and (config.get("select") or "last") == "last":
        selected_step = step
    return {"steps_trained": step, "selected_step": selected_step}


def _study_names(session, study_id: int | None) -> dict[str, str]:
    statement = select(study_runs.c.run_id, Study.name).join(Study, Study.id == study_runs.c.study_id)
    if study_id is not None:
        statement = statement.where(Study.id == study_id)
    names: dict[str, list[str]] = defaultdict(list)
    for run_id, name in session.execute(statement.order_by(Study.id)).all():
        if name not in names[run_id]:
            names[run_id].append(name)
    return {run_id: ";".join(values) for run_id, values in names.items()}


def _config_columns(config: dict[str, Any]) -> dict[str, Any]:
    """The CSV's settings of a run; configs stored before a setting existed get the value they meant."""
    values = {name: config.get(name) for name in CONFIG_COLUMNS}
    values["train_languages"] = "+".join(config.get("train_languages") or ())
    if isinstance(values["train_dataset"], list):
        values["train_dataset"] = "+".join(values["train_dataset"])
    try:
        run = RunConfig.from_dict(config)
        values["size_split"], values["zero_shot"] = run.size_split, run.zero_shot_note
    except (ConfigError, TypeError):
        values["size_split"] = values["zero_shot"] = ""
    if config.get("strategy", "none") != "none":
        values["budget"] = config.get("budget") or "epochs"
        values["select"] = config.get("select") or "last"
        values["data_seed"] = config["data_seed"] if config.get("data_seed") is not None else config.get("seed")
    else:  # an evaluation-only run (untrained model, BM25) never used its training settings: they stay empty
        values.update(dict.fromkeys(UNUSED_WITHOUT_TRAINING, None))
    return values


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """The run's identity; a config this version cannot read is taken as it is (still one series per config)."""
    try:
        return RunConfig.from_dict(config).identity()
    except (ConfigError, TypeError):
        return config

"""A database as hybridscale 0.1 (schema version 1, commit fcd158f) left it, and as version 2 did, for migration tests.

The DDL is what SQLAlchemy emitted for the version-1 models on each dialect,
frozen here: the models have moved on, so ``create_all`` can no longer make
a version-1 database. Only the id and timestamp types differ by dialect.
"""

from __future__ import annotations

from sqlalchemy import create_engine, text

_TYPES = {
    "sqlite": {"serial": "INTEGER", "timestamp": "DATETIME"},
    "postgresql": {"serial": "SERIAL", "timestamp": "TIMESTAMP WITHOUT TIME ZONE"},
}

_DDL = """
CREATE TABLE runs (
    id VARCHAR(32) NOT NULL, config_json TEXT NOT NULL, label VARCHAR(200) NOT NULL,
    model VARCHAR(500) NOT NULL, strategy VARCHAR(32) NOT NULL, alpha FLOAT, train_size INTEGER NOT NULL,
    seed INTEGER NOT NULL, status VARCHAR(16) NOT NULL, position INTEGER NOT NULL,
    cancel_requested BOOLEAN NOT NULL, attempts INTEGER NOT NULL, worker_id VARCHAR(200),
    heartbeat_at {timestamp}, progress FLOAT NOT NULL, phase VARCHAR(200) NOT NULL, step INTEGER NOT NULL,
    total_steps INTEGER NOT NULL, loss FLOAT, error TEXT, log_path TEXT, created_at {timestamp} NOT NULL,
    started_at {timestamp}, finished_at {timestamp}, updated_at {timestamp} NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_runs_queue ON runs (status, position);
CREATE TABLE schema_version (version {serial} NOT NULL, applied_at {timestamp} NOT NULL, PRIMARY KEY (version));
CREATE TABLE studies (
    id {serial} NOT NULL, name VARCHAR(200) NOT NULL, config_json TEXT NOT NULL,
    created_at {timestamp} NOT NULL, PRIMARY KEY (id)
);
CREATE TABLE checkpoints (
    id {serial} NOT NULL, run_id VARCHAR(32) NOT NULL, step INTEGER NOT NULL, path TEXT NOT NULL,
    created_at {timestamp} NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_checkpoints_run_id ON checkpoints (run_id);
CREATE TABLE events (
    id {serial} NOT NULL, run_id VARCHAR(32), time {timestamp} NOT NULL, kind VARCHAR(32) NOT NULL,
    message TEXT NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_events_run_id ON events (run_id);
CREATE TABLE metrics (
    id {serial} NOT NULL, run_id VARCHAR(32) NOT NULL, eval_set VARCHAR(100) NOT NULL,
    setting VARCHAR(16) NOT NULL, query_language VARCHAR(16) NOT NULL, passage_language VARCHAR(16) NOT NULL,
    metric VARCHAR(64) NOT NULL, value FLOAT NOT NULL, num_queries INTEGER NOT NULL, PRIMARY KEY (id),
    CONSTRAINT uq_metric_cell UNIQUE (run_id, eval_set, setting, query_language, passage_language, metric),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_metrics_run_id ON metrics (run_id);
CREATE TABLE study_runs (
    study_id INTEGER NOT NULL, run_id VARCHAR(32) NOT NULL, PRIMARY KEY (study_id, run_id),
    FOREIGN KEY(study_id) REFERENCES studies (id) ON DELETE CASCADE,
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
)
"""

#: One finished run with a metric, as version 1 stored it.
_ROWS = """
INSERT INTO schema_version (version, applied_at) VALUES (1, '2026-11-01 10:00:00');
INSERT INTO studies (name, config_json, created_at) VALUES ('old study', '{{}}', '2026-11-01 10:00:00');
INSERT INTO runs (id, config_json, label, model, strategy, alpha, train_size, seed, status, position,
    cancel_requested, attempts, progress, phase, step, total_steps, created_at, updated_at)
    VALUES ('0123456789abcdef', '{{}}', 'mono n=250 seed=0', 'embedded:e5-small', 'mono', NULL, 250, 0, 'done', 1,
    {false}, 1, 1.0, 'done', 10, 10, '2026-11-01 10:00:00', '2026-11-01 11:00:00');
INSERT INTO study_runs (study_id, run_id) SELECT id, '0123456789abcdef' FROM studies;
INSERT INTO metrics (run_id, eval_set, setting, query_language, passage_language, metric, value, num_queries)
    VALUES ('0123456789abcdef', 'flores/test', 'cross', 'sw', 'en', 'nDCG@10', 0.4375, 204)
"""

OLD_RUN_ID = "0123456789abcdef"


def create_version_1_database(url: str) -> None:
    """Give the (empty) database at ``url`` the version-1 schema and one finished run."""
    engine = create_engine(url)
    dialect = engine.dialect.name
    values = dict(_TYPES[dialect], false="0" if dialect == "sqlite" else "FALSE")
    with engine.begin() as connection:
        for statement in (_DDL + ";" + _ROWS).format(**values).split(";"):
            if statement.strip():
                connection.execute(text(statement))
    engine.dispose()


def create_version_2_database(url: str) -> None:
    """The version-1 database after the version-2 step (labels, models and study names TEXT), stamped 2."""
    from storage.migrations import MIGRATIONS

    create_version_1_database(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        MIGRATIONS[1](connection)
        connection.execute(text("INSERT INTO schema_version (version, applied_at) VALUES (2, '2026-12-01 10:00:00')"))
    engine.dispose()

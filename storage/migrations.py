"""Schema versioning: a numbered list of migration steps and a version table.

Why not Alembic: our schema is a handful of tables owned by one app, there is
no autogenerate workflow to support, and a migration directory plus its
config would be more code than the steps themselves. Each step is a function
run inside one transaction; ``schema_version`` records which ran. A database
written by a newer hybridscale is refused rather than guessed at.

A new database is created directly in the newest shape (``create_all`` of
models.py) and stamped with every version; the later steps only ever run on
databases created by an older hybridscale. To change the schema: edit
models.py, then append a step that brings a version-N database to the new
shape (ALTER TABLE ...), and test it on a database created by the previous
version (tests/storage/schema_v1.py keeps version 1 and builds version 2 from it).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.exc import DBAPIError

from storage.errors import StorageError
from storage.models import Base, Provenance, QueryValueSet, SchemaVersion


def _create_schema(connection: Connection) -> None:
    Base.metadata.create_all(connection)


#: Columns that hold user-chosen text of any length (version 1 had VARCHAR(200)/(500)).
_WIDENED_TO_TEXT = (("runs", "label"), ("runs", "model"), ("studies", "name"))


def _widen_user_text(connection: Connection) -> None:
    """Version 2: labels, model names and study names become TEXT.

    A run's label embeds its model, and a local model path easily exceeds 200
    characters; PostgreSQL enforced VARCHAR(200) and refused such a submit.
    SQLite never enforced lengths (VARCHAR has TEXT affinity), so a SQLite
    file needs no change and keeps its old declared types.
    """
    if connection.dialect.name == "sqlite":
        return
    for table, column in _WIDENED_TO_TEXT:
        connection.execute(text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT"))


def _record_claim_process(connection: Connection) -> None:
    """Version 3: a claim records the claiming process (host and pid), so a worker on the same host can
    requeue a run whose worker process is gone at once instead of after the heartbeat timeout."""
    connection.execute(text("ALTER TABLE runs ADD COLUMN worker_host VARCHAR(255)"))
    connection.execute(text("ALTER TABLE runs ADD COLUMN worker_pid INTEGER"))


def _add_query_values(connection: Connection) -> None:
    """Version 4: the per-query values of every metric cell (``query_values``)."""
    QueryValueSet.__table__.create(connection, checkfirst=True)


def _add_dev_loss(connection: Connection) -> None:
    """Version 5: runs carry their latest dev loss, shown beside the training loss in the queue.

    The column is nullable, so existing rows need no value.
    """
    connection.execute(text("ALTER TABLE runs ADD COLUMN dev_loss FLOAT"))


def _add_provenance(connection: Connection) -> None:
    """Version 6: a provenance record per attempt of a run (``provenance``); older runs simply have none."""
    Provenance.__table__.create(connection, checkfirst=True)


def _add_selected_step(connection: Connection) -> None:
    """Version 7: a finished run records the step whose weights it kept (early stopping, ``best_dev``).

    Nullable: runs finished before it show no selected step.
    """
    connection.execute(text("ALTER TABLE runs ADD COLUMN selected_step INTEGER"))


#: Step i (1-based) upgrades a database from version i-1 to version i.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (
    _create_schema, _widen_user_text, _record_claim_process, _add_query_values, _add_dev_loss,
    _add_provenance, _add_selected_step,
)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(StorageError):
    """The database's schema is not one this hybridscale can use."""


def current_version(connection: Connection) -> int:
    # One catalogue read: two has_table calls are two snapshots on PostgreSQL, and another process's
    # schema committed between them looked like "tables but no schema_version".
    tables = set(inspect(connection).get_table_names())
    if SchemaVersion.__tablename__ not in tables:
        if "runs" in tables:
            raise SchemaError("this database has hybridscale tables but no schema_version: it was not created by hybridscale")
        return 0
    version = connection.execute(select(SchemaVersion.version).order_by(SchemaVersion.version.desc())).scalar()
    return int(version or 0)


def migrate(engine: Engine) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; return the version found before.

    Two processes opening a new database at once may both try to create it.
    On PostgreSQL a transaction-scoped advisory lock makes them take turns (the
    second then finds the schema made); elsewhere (SQLite) the loser's
    transaction fails, and it accepts the winner's work.
    """
    try:
        return _migrate_once(engine)
    except DBAPIError:
        with engine.connect() as connection:
            if current_version(connection) == SCHEMA_VERSION:
                return SCHEMA_VERSION
        raise


#: Advisory-lock key for schema changes on PostgreSQL (any fixed 64-bit number; this is "hybrsc").
_MIGRATION_LOCK = 0x687962727363


def _migrate_once(engine: Engine) -> int:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        found = current_version(connection)
        if found > SCHEMA_VERSION:
            raise SchemaError(
                f"database schema version {found} is newer than this hybridscale understands "
                f"({SCHEMA_VERSION}): upgrade hybridscale"
            )
        # A new database gets today's schema at once; an older one runs the steps it lacks.
        steps = [_create_schema] if found == 0 else MIGRATIONS[found:]
        for step in steps:
            step(connection)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            connection.execute(SchemaVersion.__table__.insert().values(version=version))
    return found

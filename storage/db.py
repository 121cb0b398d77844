"""Opening a database: SQLite by default, any SQLAlchemy URL otherwise.

SQLite gets WAL journaling (the GUI reads while workers write), foreign keys
(off by default in SQLite) and a busy timeout (two workers on one file wait
for each other instead of failing with "database is locked").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import platformdirs
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.migrations import migrate

BUSY_TIMEOUT_MS = 30_000


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("hybridscale")) / "hybridscale.db"


def as_url(location: str | Path | None) -> str:
    """Accept a SQLAlchemy URL, a plain file path, or None (the per-user default file)."""
    if location is None:
        location = default_db_path()
    text = str(location)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def display_url(url: str) -> str:
    """The URL with any password masked (window titles, status lines, logs)."""
    return make_url(url).render_as_string(hide_password=True)


def url_without_password(url: str) -> str:
    """The URL minus its password, for settings files: drivers find it again in .pgpass / PGPASSWORD."""
    parts = make_url(url)  # URL.set(password=None) keeps the old password: build it again without one
    bare = URL.create(parts.drivername, parts.username, None, parts.host, parts.port, parts.database, parts.query)
    return bare.render_as_string(hide_password=False)


@dataclass
class Database:
    """An engine, a session factory and where this database keeps run artifacts."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    artifacts_dir: Path

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with self.sessions.begin() as session:
            yield session

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no branch - tiny hook
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def open_db(location: str | Path | None = None, artifacts_dir: str | Path | None = None) -> Database:
    """Open (creating and migrating if needed) the database at ``location``.

    Artifacts (checkpoints, logs, trained models) go to ``artifacts_dir``, by
    default an ``artifacts`` folder beside a SQLite file or in the user data
    directory for server databases.
    """
    url = as_url(location)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite database cannot be shared with workers: give a file path")
        db_file = Path(parsed.database)
        db_file.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        default_artifacts = db_file.parent / "artifacts"
    else:
        engine = create_engine(url, pool_pre_ping=True)
        default_artifacts = Path(platformdirs.user_data_dir("hybridscale")) / "artifacts"
    migrate(engine)
    artifacts = Path(artifacts_dir) if artifacts_dir else default_artifacts
    return Database(
        url=url,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        artifacts_dir=artifacts,
    )

"""Opening a database: SQLite by default, any SQLAlchemy URL otherwise.

SQLite gets WAL journaling (the GUI reads while workers write), foreign keys
(off by default in SQLite) and a busy timeout (two workers on one file wait
for each other instead of failing with "database is locked").

Every failure to open, read or write a database becomes a
:class:`StorageError`: one line naming the database (its password masked)
and what to do, never a driver traceback. Commands that only read
(``status``, ``export``) open with ``read_only=True``: a current database is
then opened read-only (a read-only file or filesystem still answers) and a
missing one is not created.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import platformdirs
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import DatabaseMissing, StorageError
from storage.migrations import SCHEMA_VERSION, current_version, migrate

BUSY_TIMEOUT_MS = 30_000
#: Less free space than this beside a SQLite file and its WAL index (32 KiB) cannot even be created.
_SQLITE_PAGES_NEEDED = 64 * 1024


#: SQLite's message -> what to tell the user about the database ``{db}``.
_SQLITE_ADVICE = (
    ("file is not a database", "{db} is not a SQLite database, or its header is damaged: give another --db, "
                               "or restore the file from a copy"),
    ("malformed", "{db} is damaged (SQLite: database disk image is malformed): restore it from a copy"),
    ("readonly", "{db} is read-only: 'status' and 'export' still work; to submit or run workers, make the file "
                 "and its folder writable (or work on a copy)"),
    ("disk is full", "no space left for {db}: free space on its disk, or move the database elsewhere"),
    ("locked", "{db} stayed locked by another process for 30 s: try again when it is less busy"),
    ("unable to open", "cannot open {db}: check that the file and its folder exist and are readable and writable"),
)


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


def database_name(url: str) -> str:
    """How messages name a database: a SQLite file's path, otherwise the URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database.removeprefix("file:").split("?")[0]
    return display_url(url)


def storage_error(exc: DBAPIError, url: str) -> StorageError:
    """The one-line :class:`StorageError` for a driver error on the database at ``url``."""
    reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    name = database_name(url)
    if make_url(url).get_backend_name() == "sqlite":
        if ("unable to open" in first or "readonly" in first) and _read_only(Path(name)):
            first = "attempt to write a readonly database"
        elif "disk i/o error" in first.lower() and _no_space_beside(Path(name)):  # its WAL index could not grow
            first = "database or disk is full"
        for fragment, advice in _SQLITE_ADVICE:
            if fragment in first.lower():
                return StorageError(advice.format(db=name))
        return StorageError(f"database {name}: {first}")
    if "connection" in first.lower() or "could not translate host" in first.lower():
        return StorageError(f"cannot reach the database {name} ({first.rstrip('.')}): check that the server runs and "
                            "the URL's host, port, user and database name")
    return StorageError(f"database {name}: {first}")


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
        """One transaction: committed on success, rolled back on any error (a driver error as StorageError)."""
        try:
            with self.sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            raise storage_error(exc, self.url) from exc

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no branch - tiny hook
        cursor = dbapi_connection.cursor()
        if not read_only:  # switching to WAL writes the file's header
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()


def _read_only(db_file: Path) -> bool:
    """An existing database file that this process may not change (its bits, its folder, or its filesystem)."""
    return db_file.is_file() and not (os.access(db_file, os.W_OK) and os.access(db_file.parent, os.W_OK))


def _no_space_beside(db_file: Path) -> bool:
    try:
        return shutil.disk_usage(db_file.parent).free < _SQLITE_PAGES_NEEDED
    except OSError:
        return False


@contextlib.contextmanager
def _no_new_companions(url: str) -> Iterator[None]:
    """When opening fails, remove the empty ``-wal`` and the ``-shm`` SQLite created beside the file."""
    if make_url(url).get_backend_name() != "sqlite":
        yield
        return
    db_file = _sqlite_file(url)
    companions = [db_file.with_name(db_file.name + suffix) for suffix in ("-wal", "-shm")]
    existed = {path for path in companions if path.exists()}
    try:
        yield
    except BaseException:
        wal = companions[0]
        if wal not in existed and (not wal.exists() or wal.stat().st_size == 0):
            for path in companions:
                if path not in existed:
                    with contextlib.suppress(OSError):
                        path.unlink()
        raise


def _sqlite_file(url: str) -> Path:
    """The file of a SQLite URL, checked before SQLite sees it (its own message would be 'unable to open')."""
    database = make_url(url).database
    if database in (None, "", ":memory:"):
        raise ValueError("an in-memory SQLite database cannot be shared with workers: give a file path")
    db_file = Path(database)
    if db_file.is_dir():
        raise StorageError(f"{db_file} is a folder, not a database file: give a file, e.g. {db_file / 'hybridscale.db'}")
    blocking = next((p for p in db_file.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise StorageError(f"cannot create the database {db_file}: {blocking} is a file, not a folder; give another --db")
    return db_file


def _default_artifacts(url: str) -> Path:
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_file(url).parent / "artifacts"
    return Path(platformdirs.user_data_dir("hybridscale")) / "artifacts"


def open_db(location: str | Path | None = None, artifacts_dir: str | Path | None = None, *,
            read_only: bool = False) -> Database:
    """Open (creating and migrating if needed) the database at ``location``.

    Artifacts (checkpoints, logs, trained models) go to ``artifacts_dir``, by
    default an ``artifacts`` folder beside a SQLite file or in the user data
    directory for server databases. ``read_only``: the caller only reads, so
    nothing is created (:class:`DatabaseMissing` instead) and a database at
    the current schema version is opened without writing to it; an older one
    is upgraded first as usual.
    """
    url = as_url(location)
    artifacts = Path(artifacts_dir) if artifacts_dir else _default_artifacts(url)
    with _no_new_companions(url):
        if read_only:
            database = _open_for_reading(url, artifacts)
            if database is not None:
                return database
        engine = _engine(url)
        try:
            migrate(engine)
        except DBAPIError as exc:
            engine.dispose()
            raise storage_error(exc, url) from exc
    return Database(url=url, engine=engine, sessions=sessionmaker(engine, expire_on_commit=False),
                    artifacts_dir=artifacts)


def _engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    db_file = _sqlite_file(url)
    try:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the folder of the database {db_file}: {exc.strerror}") from None
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    _configure_sqlite(engine)
    return engine


def _open_for_reading(url: str, artifacts: Path) -> Database | None:
    """The database opened without writing, or None when its schema must be upgraded first."""
    if make_url(url).get_backend_name() == "sqlite":
        db_file = _sqlite_file(url)
        if not db_file.is_file():
            raise DatabaseMissing(f"no database at {db_file} (nothing was submitted there yet)")
        # mode=ro needs to create the WAL index beside the file; where nobody can write (a read-only
        # folder or filesystem) nobody changes the file either, and SQLite may read it as immutable.
        engine = _read_only_sqlite(db_file, immutable=not os.access(db_file.parent, os.W_OK))
    else:
        engine = create_engine(url, pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            version = current_version(connection)
    except DBAPIError as exc:
        engine.dispose()
        raise storage_error(exc, url) from exc
    if version == 0:
        engine.dispose()
        raise DatabaseMissing(f"no hybridscale tables in {database_name(url)} (nothing was submitted there yet)")
    if version != SCHEMA_VERSION:
        engine.dispose()
        return None
    return Database(url=url, engine=engine, sessions=sessionmaker(engine, expire_on_commit=False),
                    artifacts_dir=artifacts)


def _read_only_sqlite(db_file: Path, immutable: bool) -> Engine:
    query = "mode=ro&immutable=1" if immutable else "mode=ro"
    engine = create_engine(f"sqlite:///file:{quote(str(db_file), safe='/')}?{query}&uri=true",
                           connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    _configure_sqlite(engine, read_only=True)
    return engine

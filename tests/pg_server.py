"""A throw-away PostgreSQL server for tests that need the real thing.

The storage layer must run unchanged on PostgreSQL (the shared queue of a
cluster), and dialect differences (row locks, RETURNING, booleans, varchar
lengths) only show on a real server, so these tests start one: ``initdb`` in a
fresh temporary folder, ``pg_ctl start`` listening on a Unix socket in that
folder only (no TCP port, so it cannot collide with anything), ``fsync`` off
because the data is thrown away. PostgreSQL refuses to run as root, so as root
the server runs as the ``postgres`` system user (``runuser``) and the folder
is given to it.

Tests SKIP, saying why, only when the server binaries or the ``psycopg``
driver are missing; a server that is installed but fails to start is an error.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

#: The socket file is ``.s.PGSQL.<port>`` in the server's own folder, so any port works.
_PORT = 5432
_SUPERUSER = "postgres"
_INSTALL_HINT = "install it with 'apt-get install -y postgresql' (Debian/Ubuntu) or set HYBRIDSCALE_PG_BIN"


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: $HYBRIDSCALE_PG_BIN, the PATH, or Debian's layout."""
    candidates = [os.environ.get("HYBRIDSCALE_PG_BIN", "")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    # Debian/Ubuntu keep the server binaries off the PATH, one folder per major version; newest first.
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


@dataclass
class PostgresServer:
    """A running server; :meth:`create_database` gives each test its own empty database."""

    bin_dir: Path
    root: Path
    run_as: list[str]
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{_SUPERUSER}@/{database}?host={self.root}&port={_PORT}"

    def create_database(self) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"hs_test_{next(self._counter)}"
        with psycopg.connect(host=str(self.root), port=_PORT, user=_SUPERUSER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), *args],
            capture_output=True, text=True, timeout=60,
        )

    def start(self) -> None:
        options = f"-c listen_addresses='' -c unix_socket_directories={self.root} -p {_PORT} -c fsync=off " \
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        result = self._pg_ctl("-w", "-t", "30", "-l", str(self.root / "server.log"), "-o", options, "start")
        if result.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed ({result.returncode}): {result.stderr.strip()} {log[-2000:]}")

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """initdb + pg_ctl start in a new temporary folder; skips when PostgreSQL or psycopg is missing."""
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed: pip install 'psycopg[binary]'")
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {_INSTALL_HINT}")
    root = Path(tempfile.mkdtemp(prefix="hs-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no 'postgres' user to run the server as (PostgreSQL refuses root)")
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    initdb = subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", _SUPERUSER, "--auth=trust",
         "--encoding=UTF8", "--no-sync"],
        capture_output=True, text=True, timeout=120,
    )
    if initdb.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({initdb.returncode}): {initdb.stderr.strip()}")
    server = PostgresServer(bin_dir, root, run_as)
    try:
        server.start()
    except Exception:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole session (initdb costs seconds); stopped and deleted at the end."""
    server = start_server()
    yield server
    server.stop()


@pytest.fixture()
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh empty database on the session's server, as a SQLAlchemy URL."""
    return postgres_server.create_database()

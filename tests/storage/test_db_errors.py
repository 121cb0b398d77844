"""A database that cannot be used is one line naming it and what to do (exit status 2), and it is left untouched.

Real files throughout: a read-only filesystem (or read-only permission bits
when not root), a damaged and a truncated SQLite file, a file where a folder
should be, a folder given as the database, a PostgreSQL port nobody listens on.
"""

from __future__ import annotations

import csv
import hashlib
import os
import socket
from pathlib import Path

import pytest

from hybridscale.cli import main
from storage import queue
from storage.db import open_db
from tests.faults import remount_read_only, small_tmpfs
from tests.storage.studies import grid_study
from tests.storage.test_queue import Value


def _fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _study_file(tmp_path: Path) -> Path:
    path = tmp_path / "study.json"
    path.write_text(grid_study(name="more", sizes=(7,), seeds=(0,)).to_json(), encoding="utf-8")
    return path


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def _database_with_a_result(path: Path) -> str:
    db = open_db(path)
    queue.submit_study(db, grid_study(name="kept", sizes=(2,), seeds=(0,)))
    run = queue.claim_next(db, "w")
    queue.complete(db, run.id, "w", [Value(value=0.625)])
    db.dispose()
    return run.id


@pytest.fixture()
def read_only_folder(tmp_path):
    """(folder, freeze): the database is written into ``folder``, then ``freeze()`` makes it read-only."""
    folder = tmp_path / "ro"
    if os.geteuid() != 0:  # permission bits bind an ordinary user
        folder.mkdir()

        def freeze() -> None:
            for path in folder.iterdir():
                path.chmod(0o444)
            folder.chmod(0o555)

        yield folder, freeze
        folder.chmod(0o755)
        return
    with small_tmpfs(folder, "8m"):
        yield folder, lambda: remount_read_only(folder)


def test_a_read_only_database_answers_status_and_export_and_refuses_submit_in_one_line(
        read_only_folder, tmp_path, capsys):
    folder, freeze = read_only_folder
    db_path = folder / "queue.db"
    run_id = _database_with_a_result(db_path)
    freeze()
    before = _fingerprint(folder)

    assert main(["--db", str(db_path), "status"]) == 0
    assert "study 1 'kept': 1 done" in capsys.readouterr().out
    report = tmp_path / "report.csv"
    assert main(["--db", str(db_path), "export", "--csv", str(report)]) == 0
    with report.open(encoding="utf-8") as stream:
        assert [(r["run_id"], r["value"]) for r in csv.DictReader(stream)] == [(run_id, "0.625")]
    capsys.readouterr()

    assert main(["--db", str(db_path), "submit", str(_study_file(tmp_path))]) == 2
    error = _one_line_error(capsys)
    assert str(db_path) in error and "read-only" in error
    assert _fingerprint(folder) == before


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_file_is_one_line_and_stays_as_it_was(tmp_path, capsys, damage):
    db_path = tmp_path / "queue.db"
    if damage == "garbage":
        db_path.write_bytes(b"these are my notes, not a database\n" * 200)
    else:
        _database_with_a_result(db_path)
        db_path.write_bytes(db_path.read_bytes()[:2000])  # cut inside the first page
    before = _fingerprint(tmp_path)
    for command in (["status"], ["submit", str(_study_file(tmp_path))]):
        before = _fingerprint(tmp_path)
        assert main(["--db", str(db_path), *command]) == 2
        error = _one_line_error(capsys)
        assert error.startswith(f"hybridscale {command[0]}: error: {db_path} ")
        assert "restore" in error
        assert _fingerprint(tmp_path) == before


def test_a_file_where_the_database_folder_should_be_is_one_line(tmp_path, capsys):
    blocking = tmp_path / "results"
    blocking.write_text("a file, not a folder")
    assert main(["--db", str(blocking / "queue.db"), "submit", str(_study_file(tmp_path))]) == 2
    assert f"{blocking} is a file, not a folder" in _one_line_error(capsys)
    assert blocking.read_text() == "a file, not a folder"


def test_a_folder_given_as_the_database_is_one_line(tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    for command in (["status"], ["submit", str(_study_file(tmp_path))]):
        assert main(["--db", str(folder), *command]) == 2
        assert f"{folder} is a folder, not a database file" in _one_line_error(capsys)
    assert list(folder.iterdir()) == []


def test_an_unreachable_postgresql_server_is_one_line_without_the_password(tmp_path, capsys):
    pytest.importorskip("psycopg")
    with socket.socket() as probe:  # a port nobody listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://hs:S3cretPW@127.0.0.1:{port}/hybridscale"
    for command in (["status"], ["submit", str(_study_file(tmp_path))], ["retry", "0123456789abcdef"]):
        assert main(["--db", url, *command]) == 2
        captured = capsys.readouterr()
        assert "S3cretPW" not in captured.err + captured.out
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in captured.err
        assert f"cannot reach the database postgresql+psycopg://hs:***@127.0.0.1:{port}/hybridscale" in lines[0]


def test_status_on_a_missing_folder_creates_nothing(tmp_path, capsys):
    db_path = tmp_path / "not" / "there" / "queue.db"
    assert main(["--db", str(db_path), "status"]) == 0
    assert "no studies" in capsys.readouterr().out
    assert not (tmp_path / "not").exists()
    assert main(["--db", str(db_path), "export", "--csv", str(tmp_path / "r.csv")]) == 2
    assert f"no database at {db_path}" in _one_line_error(capsys)
    assert not (tmp_path / "not").exists() and not (tmp_path / "r.csv").exists()

from __future__ import annotations

import pytest

from storage.db import Database, open_db


@pytest.fixture()
def db(tmp_path) -> Database:
    database = open_db(tmp_path / "queue.db")
    yield database
    database.dispose()


@pytest.fixture()
def database_url(tmp_path) -> str:
    """An empty database; test_postgres.py overrides it with one on a PostgreSQL server."""
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture()
def long_model_folder(tmp_path) -> str:
    """A local model folder deep enough that the label of its untrained run passes 200 characters
    (model folders must exist to be submitted)."""
    folder = tmp_path / ("e5-small-finetuned/" * 12)
    folder.mkdir(parents=True)
    return str(folder)

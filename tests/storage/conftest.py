from __future__ import annotations

import pytest

from storage.db import Database, open_db


@pytest.fixture()
def db(tmp_path) -> Database:
    database = open_db(tmp_path / "queue.db")
    yield database
    database.dispose()



"""Fixtures shared by every room's tests.

Qt runs offscreen; the tiny encoder (random weights, real XLM-R tokenizer) is
built once per session because every engine test that touches a model uses it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full upstream datasets beside the checkout (CI has them; a fresh clone may not)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent: these tests compare the shipped subset with the upstream files")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_encoder():
    """A 2-layer random BERT with the real tokenizer: fast, deterministic, real code paths."""
    from engine.loading import load_encoder

    return load_encoder("tiny:")


@pytest.fixture()
def empty_db(tmp_path):
    """A new, empty SQLite database of this test's own."""
    from storage.db import open_db

    database = open_db(tmp_path / "empty.db")
    yield database
    database.dispose()


@pytest.fixture()
def seeded(tmp_path):
    """(db, study, study id) of a finished study with known metric values (see tests/gui/seed.py); the GUI's
    pages and the results layer under them are tested on it."""
    from tests.gui.seed import seed_database

    db, study, study_id = seed_database(tmp_path / "seeded.db")
    yield db, study, study_id
    db.dispose()

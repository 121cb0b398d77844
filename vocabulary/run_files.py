"""Where a finished run's evaluation files lie, and what each is called.

The engine writes them (:mod:`engine.evaluate`, :mod:`engine.study`); the
app reads them back for its per-query drill-down. Both take the names from
here, so the reader never has to import the engine to find them.
Every path is relative to the run's folder, ``<artifacts>/runs/<run_id>``.
"""

from __future__ import annotations

import re

#: The folder of a run's working directory that holds its evaluation files: one folder per eval set
#: with the qrels of each searched pool and the top-k run of each cell (see engine.evaluate).
EVAL_DIR = "eval"
#: Per eval set: the text of every query and of each passage that is relevant or in some cell's top
#: :data:`SHOWN_DEPTH` (JSON lines, gzip), so the app can show what was asked and found.
TEXTS_FILE = "texts.jsonl.gz"
#: How many of each query's best passages the texts file holds the texts of.
SHOWN_DEPTH = 5


def eval_folder_name(label: str) -> str:
    """A file-system-safe folder name for an eval set's label: ``afriqa/test (gold passages only)`` ->
    ``afriqa-test-gold-passages-only``."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", label).strip("-")


def run_file_name(setting: str, query_language: str, passage_language: str) -> str:
    """The top-k ranking of one cell, in the TREC run format, gzip-compressed."""
    return f"{setting}.{query_language}-{passage_language}.run.gz"


def qrels_file_name(passage_language: str) -> str:
    """The judgements of one searched pool (``all``: the multilingual pool)."""
    return f"qrels.{passage_language}.txt"

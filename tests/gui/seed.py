"""A real SQLite database holding a finished study with known metric values, for the GUI tests.

Runs go through the real queue (submit, claim, complete), so the GUI reads
exactly what a worker would have written; only the metric values are made
up, from formulas the tests recompute by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from storage import queue
from storage.db import Database, open_db
from vocabulary.config import EvalSpec, RunConfig, StudyConfig
from vocabulary.records import MetricRow

STRATEGIES = ("mono", "cross", "hybrid")
SIZES = (16, 64)
SEEDS = (0, 1)
LANGUAGES = ("en", "sw", "yo")


def seeded_study(name: str = "seeded") -> StudyConfig:
    template = RunConfig(
        model="tiny:", train_languages=("de", "en"), batch_size=4, max_length=32,
        evaluations=(EvalSpec("flores", LANGUAGES, "test", max_queries=10),),
    )
    return StudyConfig(name, strategies=STRATEGIES, alphas=(0.5,), train_sizes=SIZES, seeds=SEEDS, template=template)


def ndcg(config: RunConfig, query_language: str) -> float:
    """cross-lingual nDCG@10 towards English: grows with size, hybrid best, seed 1 a little higher."""
    if not config.is_training:
        return 0.30 if query_language == "sw" else 0.20
    base = {"mono": 0.40, "cross": 0.45, "hybrid": 0.50}[config.strategy]
    return base + 0.001 * config.train_size + 0.02 * config.seed + (0.05 if query_language == "sw" else 0.0)


def mean_rank(config: RunConfig, query_language: str, passage_language: str) -> float:
    """MeanRank cell in the multilingual pool: query language index * 10 + passage index + a run term."""
    run_term = 0 if not config.is_training else config.train_size / 16 + config.seed
    return 10 * LANGUAGES.index(query_language) + LANGUAGES.index(passage_language) + 1 + run_term


def values_of(config: RunConfig) -> list[MetricRow]:
    rows = [MetricRow("flores/test", "cross", x, "en", "nDCG@10", ndcg(config, x), 10) for x in ("sw", "yo")]
    rows += [
        MetricRow("flores/test", "multi", x, y, "MeanRank", mean_rank(config, x, y), 10)
        for x in LANGUAGES for y in LANGUAGES if x != y
    ]
    return rows


def seed_database(
    path: Path | Database, study: StudyConfig | None = None, values: Callable[[RunConfig], list[MetricRow]] = values_of,
) -> tuple[Database, StudyConfig, int]:
    """Submit ``study`` to a database (a path, or one already open) and finish every run with ``values``.

    Returns (db, study, study id).
    """
    db = path if isinstance(path, Database) else open_db(path)
    study = study or seeded_study()
    submitted = queue.submit_study(db, study)
    while (claimed := queue.claim_next(db, "seed-worker")) is not None:
        queue.complete(db, claimed.id, claimed.worker_id, values(claimed.config))
    return db, study, submitted.study_id

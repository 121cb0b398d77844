"""A finished study with per-query values and the run files a worker leaves, for the Findings and drill-down tests.

Each run's rankings are made up (the relevant passage of a query at a rank
set by a formula), written with the engine's own writers into the run's
artifacts folder, and its per-query nDCG@10 is computed from them by
pytrec_eval, so values, files and texts agree as they do after a real run.

cross ranks query i's relevant passage at 1 + (i + seed) % 4; hybrid does the
same shifted by one (no difference on average: each rank occurs equally
often), or, with ``gain``, ranks it first on every even query (better on half
the queries). The untrained model ranks it at 1 + i % 5.
"""

from __future__ import annotations

from pathlib import Path

from engine.evaluate import write_texts
from engine.metrics import compute_per_query
from engine.trec import write_qrels, write_run
from storage import queue
from storage.db import Database, open_db
from vocabulary.config import EvalSpec, RunConfig, StudyConfig
from vocabulary.records import MetricRow, Passage, Query, QueryValues
from vocabulary.run_files import EVAL_DIR, TEXTS_FILE, eval_folder_name, qrels_file_name, run_file_name

EVAL_SET = "flores/test"
QUERIES = 24
LANGUAGES = ("sw", "yo")


def query_id(language: str, i: int) -> str:
    return f"{language}:{i:02d}"


def passage_id(i: int) -> str:
    return f"en:{i:02d}"


def relevant_rank(config: RunConfig, i: int, gain: bool) -> int:
    if not config.is_training:
        return 1 + i % 5
    if config.strategy == "hybrid":
        return 1 if gain and i % 2 == 0 else 1 + (i + config.seed + 1) % 4
    return 1 + (i + config.seed) % 4


def ranking(config: RunConfig, i: int, gain: bool) -> dict[str, float]:
    """Ten passages: query i's own at its rank, the next passages' around it."""
    rank = relevant_rank(config, i, gain)
    others = [passage_id((i + k) % QUERIES) for k in range(1, 10)]
    order = others[: rank - 1] + [passage_id(i)] + others[rank - 1:]
    return {pid: 1.0 - 0.05 * position for position, pid in enumerate(order)}


def query_text(language: str, i: int) -> str:
    return f"{language} question {i}: ọ̀rọ̀ {i}?"


def passage_text(i: int) -> str:
    return f"The answer to question {i}."


def finish(db: Database, claimed: queue.ClaimedRun, gain: bool) -> None:
    config = claimed.config
    folder = db.artifacts_dir / "runs" / claimed.id / EVAL_DIR / eval_folder_name(EVAL_SET)
    folder.mkdir(parents=True, exist_ok=True)
    qrels = {query_id(x, i): {passage_id(i): 1} for x in LANGUAGES for i in range(QUERIES)}
    write_qrels(folder / qrels_file_name("en"), qrels)
    rows, cells = [], []
    for x in LANGUAGES:
        ids = [query_id(x, i) for i in range(QUERIES)]
        run = {query_id(x, i): ranking(config, i, gain) for i in range(QUERIES)}
        write_run(folder / run_file_name("cross", x, "en"), run, "hybridscale-cross")
        values = compute_per_query({q: qrels[q] for q in ids}, run, ["nDCG@10"])
        per_query = [values[q]["nDCG@10"] for q in ids]
        cells.append(QueryValues(EVAL_SET, "cross", x, "en", "nDCG@10", tuple(ids), tuple(per_query)))
        rows.append(MetricRow(EVAL_SET, "cross", x, "en", "nDCG@10", sum(per_query) / QUERIES, QUERIES))
    queries = [Query(query_id(x, i), query_text(x, i), x) for x in LANGUAGES for i in range(QUERIES)]
    passages = [Passage(passage_id(i), passage_text(i), "en") for i in range(QUERIES)]
    judged = {q: {"en": qrels[q]} for q in qrels}
    write_texts(folder / TEXTS_FILE, queries, passages, judged, set())
    queue.complete(db, claimed.id, claimed.worker_id, rows, per_query=cells)


def per_query_study(path: Path, gain: bool) -> tuple[Database, int]:
    """(db, study id) of cross and hybrid at sizes 16 and 64, seeds 0 and 1, and the untrained model."""
    db = open_db(path)
    template = RunConfig(model="tiny:", train_languages=("de", "en"), batch_size=4, max_length=32,
                         evaluations=(EvalSpec("flores", ("en", *LANGUAGES), "test", max_queries=QUERIES),))
    study = StudyConfig("per-query", strategies=("cross", "hybrid"), alphas=(0.5,), train_sizes=(16, 64),
                        seeds=(0, 1), template=template)
    submitted = queue.submit_study(db, study)
    while (claimed := queue.claim_next(db, "seed-worker")) is not None:
        finish(db, claimed, gain)
    return db, submitted.study_id

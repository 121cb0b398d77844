"""Per-query values and run files shaped for the Findings page and the drill-down (through the app model).

:func:`run_values` is the one adapter from stored cells
(:func:`storage.queries.query_value_cells`) to :class:`analysis.compare.RunValues`,
for the app and for the shell's ``compare`` and ``report`` commands alike.

The drill-down reads a run's files under ``<artifacts>/runs/<run_id>/eval/``
(names in :mod:`vocabulary.run_files`). The TREC reader of the engine
(:mod:`engine.trec`) cannot be imported here (the layering contracts keep the
engine, with torch and FAISS, out of the app), so :func:`read_top` reads the six
columns itself; it needs only each query's first few lines, which the
evaluator writes in trec_eval's order, and it is as strict as the engine's
reader about what a line holds.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from analysis.compare import RunValues
from analysis.findings import Findings, build_findings
from storage.db import Database
from storage.queries import QueryValueCell, query_value_cells
from vocabulary.run_files import EVAL_DIR, SHOWN_DEPTH, TEXTS_FILE, eval_folder_name, qrels_file_name, run_file_name
from vocabulary.strategies import NO_TRAINING


class RunFileError(ValueError):
    """A run file the drill-down reads is malformed (the message names the file and line)."""


def seeds_text(columns: Mapping[str, object]) -> str:
    """The replicate a run is, as analysis.compare pairs it: its seeds, or "" for an evaluation-only reference."""
    if columns["strategy"] == NO_TRAINING:
        return ""
    return f"seed {columns['seed']}, data seed {columns.get('data_seed')}"


def run_values(cells: Iterable[QueryValueCell], passage_language: str | None = None) -> list[RunValues]:
    """One RunValues per stored cell (of ``passage_language`` when given, ``all`` being the multilingual pool)."""
    runs = []
    for cell in cells:
        columns = cell.columns
        if passage_language is not None and columns["passage_language"] != passage_language:
            continue
        size = 0 if columns["strategy"] == NO_TRAINING else int(columns["train_size"])
        runs.append(RunValues(columns["series"], size, seeds_text(columns), columns["query_language"],
                              columns["passage_language"], dict(zip(cell.query_ids, cell.values))))
    return runs


def compute_findings(db: Database, study_id: int | None, eval_set: str, setting: str, passage_language: str, metric: str,
                     query_languages: tuple[str, ...]) -> Findings | None:
    """The findings of one choice from the database (None when no per-query values are stored for it)."""
    cells = query_value_cells(db, study_id, eval_set=eval_set, setting=setting, metric=metric)
    runs = [r for r in run_values(cells, passage_language) if r.query_language in query_languages]
    if not runs:
        return None
    return build_findings(eval_set, setting, metric, runs)


# ---- the drill-down ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Side:
    """One series at one size in one cell: each query's value averaged over its runs (seeds)."""

    series: str
    size: int
    run_ids: tuple[str, ...]  # the runs averaged, seed order
    seeds: tuple[str, ...]
    values: dict[str, float]


@dataclass(frozen=True)
class QueryDifference:
    query_id: str
    a: float
    b: float

    @property
    def difference(self) -> float:
        return self.a - self.b


def sides(cells: Iterable[QueryValueCell], query_language: str, passage_language: str) -> dict[tuple[str, int], Side]:
    """(series, size) -> its side in the cell (query language, passage language); references at size 0."""
    grouped: dict[tuple[str, int], list[QueryValueCell]] = {}
    for cell in cells:
        columns = cell.columns
        if (columns["query_language"], columns["passage_language"]) != (query_language, passage_language):
            continue
        size = 0 if columns["strategy"] == NO_TRAINING else int(columns["train_size"])
        grouped.setdefault((columns["series"], size), []).append(cell)
    result = {}
    for (series, size), group in grouped.items():
        group = sorted(group, key=lambda c: (c.columns["seed"] or 0, c.columns["run_id"]))
        per_query: dict[str, list[float]] = {}
        for cell in group:
            for query_id, value in zip(cell.query_ids, cell.values):
                per_query.setdefault(query_id, []).append(value)
        values = {q: math.fsum(v) / len(v) for q, v in per_query.items() if len(v) == len(group)}
        result[(series, size)] = Side(series, size, tuple(c.columns["run_id"] for c in group),
                                      tuple(seeds_text(c.columns) or "no seed" for c in group), values)
    return result


def differences(a: Side, b: Side) -> list[QueryDifference]:
    """The queries both sides scored, sorted by a − b (ascending, ties by query id): the sorted difference plot."""
    shared = sorted(set(a.values) & set(b.values))
    pairs = [QueryDifference(q, a.values[q], b.values[q]) for q in shared]
    return sorted(pairs, key=lambda p: (p.difference, p.query_id))


def eval_folder(artifacts_dir: Path, run_id: str, eval_set: str) -> Path:
    """The folder of one run's evaluation files for ``eval_set`` (its label)."""
    return Path(artifacts_dir) / "runs" / run_id / EVAL_DIR / eval_folder_name(eval_set)


def _fields(path: Path, width: int, expected: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line; a line without ``width`` fields is an error naming it."""
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != width:
                raise RunFileError(f"{path.name}, line {number}: expected {width} fields '{expected}', got {len(fields)}")
            yield number, fields


def read_top(path: Path, query_id: str, depth: int = SHOWN_DEPTH) -> list[tuple[str, float]]:
    """(passage id, score) of the first ``depth`` lines of ``query_id`` in a TREC run file (6 columns)."""
    top: list[tuple[str, float]] = []
    for number, fields in _fields(path, 6, "qid Q0 docid rank score tag"):
        if fields[0] != query_id:
            if top:  # the evaluator writes each query's lines together
                break
            continue
        try:
            top.append((fields[2], float(fields[4])))
        except ValueError:
            raise RunFileError(f"{path.name}, line {number}: score {fields[4]!r} is not a number") from None
        if len(top) == depth:
            break
    return top


def read_judgements(path: Path, query_id: str) -> dict[str, int]:
    """Passage id -> relevance of ``query_id`` in a qrels file (4 columns)."""
    judged = {}
    for number, fields in _fields(path, 4, "qid iter docid relevance"):
        if fields[0] == query_id:
            try:
                judged[fields[2]] = int(fields[3])
            except ValueError:
                raise RunFileError(f"{path.name}, line {number}: relevance {fields[3]!r} is not a whole number") from None
    return judged


def read_texts(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(query id -> text, passage id -> text) of a texts file; both empty when the run has none (older runs)."""
    queries: dict[str, str] = {}
    passages: dict[str, str] = {}
    if not path.is_file():
        return queries, passages
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                entry = json.loads(line)
                if "query" in entry:
                    queries[entry["query"]] = entry["text"]
                else:
                    passages[entry["passage"]] = entry["text"]
            except (ValueError, KeyError, TypeError):
                raise RunFileError(f"{path.name}, line {number}: not a query or passage entry") from None
    return queries, passages


def _open_text(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"{path.name}: no such file in {path.parent}")
    return gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else path.open(encoding="utf-8")


@dataclass(frozen=True)
class Ranked:
    """One passage of a top 5: its id, score, relevance (None: not judged) and text (None: unavailable)."""

    passage_id: str
    score: float
    relevance: int | None
    text: str | None


@dataclass(frozen=True)
class QueryDetail:
    """What the drill-down shows of one query: its text, its relevant passages and each side's top 5."""

    query_id: str
    text: str | None
    relevant: tuple[tuple[str, int, str | None], ...]  # (passage id, relevance, text)
    tops: tuple[tuple[str, tuple[Ranked, ...]], ...]  # (side caption, its top 5), one per side
    problems: tuple[str, ...]  # files that could not be read, one line each


def query_detail(artifacts_dir: Path, eval_set: str, setting: str, query_language: str, passage_language: str,
                 query_id: str, shown: Sequence[tuple[str, str]]) -> QueryDetail:
    """The detail of ``query_id`` from the files of ``shown``: (caption, run id) of each side's run.

    Judgements and texts are the eval set's, so the first run that has them
    gives them; a side whose files are missing gets a line in ``problems``.
    """
    texts: tuple[dict[str, str], dict[str, str]] = ({}, {})
    judged: dict[str, int] | None = None
    tops = []
    problems = []
    for caption, run_id in shown:
        folder = eval_folder(artifacts_dir, run_id, eval_set)
        try:
            if judged is None:
                judged = read_judgements(folder / qrels_file_name(passage_language), query_id)
            if not texts[0]:
                texts = read_texts(folder / TEXTS_FILE)
            top = read_top(folder / run_file_name(setting, query_language, passage_language), query_id)
        except (OSError, RunFileError) as error:
            problems.append(f"{caption}: {error}")
            tops.append((caption, ()))
            continue
        tops.append((caption, tuple(Ranked(pid, score, (judged or {}).get(pid), texts[1].get(pid)) for pid, score in top)))
    judged = judged or {}
    relevant = tuple((pid, rel, texts[1].get(pid)) for pid, rel in sorted(judged.items()) if rel > 0)
    return QueryDetail(query_id, texts[0].get(query_id), relevant, tuple(tops), tuple(problems))

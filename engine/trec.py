"""TREC qrels and run files, and the core of the ``hybridscale metrics`` command.

Rankings written in the TREC format can be checked with trec_eval,
ir_measures or the ``metrics`` command. Reading is strict: a malformed line
raises an error that names the file and the line, because a skipped line
would quietly change every number that comes after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Mapping

from engine.metrics import NoJudgedQueriesError, Run, compute, compute_per_query

#: Measures of the ``metrics`` command when none are given.
DEFAULT_COMMAND_MEASURES: tuple[str, ...] = ("nDCG@10", "R@100", "RR@10", "AP")
#: Decimal places of printed values (trec_eval prints 4).
PRINTED_DECIMALS = 4


class TrecFormatError(ValueError):
    """A line of a qrels or run file does not follow the TREC format."""


def _lines(path: Path, expected: str, width: int) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) of each non-blank line that has ``width`` fields."""
    if not path.is_file():
        raise FileNotFoundError(f"{path.name}: no such file in {path.parent.resolve()}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != width:
                raise TrecFormatError(
                    f"{path.name}, line {number}: expected {width} fields '{expected}', "
                    f"got {len(fields)}: {line.strip()!r}"
                )
            yield number, fields


def _add(table: dict[str, dict], path: Path, number: int, qid: str, doc: str, value: object) -> None:
    judged = table.setdefault(qid, {})
    if doc in judged:
        raise TrecFormatError(f"{path.name}, line {number}: document {doc!r} appears twice for query {qid!r}")
    judged[doc] = value


def read_qrels(path: Path | str) -> dict[str, dict[str, int]]:
    """Read ``qid iter docid relevance`` lines (whitespace or tab separated)."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for number, (qid, _iteration, doc, relevance) in _lines(path, "qid iter docid relevance", 4):
        try:
            value = int(relevance)
        except ValueError:
            raise TrecFormatError(
                f"{path.name}, line {number}: relevance {relevance!r} is not a whole number"
            ) from None
        _add(qrels, path, number, qid, doc, value)
    return qrels


def read_run(path: Path | str) -> dict[str, dict[str, float]]:
    """Read ``qid Q0 docid rank score tag`` lines; the rank column is ignored, as trec_eval does."""
    path = Path(path)
    run: dict[str, dict[str, float]] = {}
    for number, (qid, _q0, doc, _rank, score, _tag) in _lines(path, "qid Q0 docid rank score tag", 6):
        try:
            value = float(score)
        except ValueError:
            raise TrecFormatError(f"{path.name}, line {number}: score {score!r} is not a number") from None
        _add(run, path, number, qid, doc, value)
    return run


def _check_token(what: str, value: str) -> None:
    if not value or any(ch.isspace() for ch in value):
        raise ValueError(f"{what} {value!r} cannot be written to a TREC file: it must be one word without spaces")


def write_run(path: Path | str, run: Run, tag: str) -> None:
    """Write a run in trec_eval order (score descending, then document id descending).

    Scores are written with ``repr`` so reading the file back gives the same floats.
    """
    _check_token("run tag", tag)
    lines = []
    for qid, ranking in run.items():
        _check_token("query id", qid)
        ordered = sorted(ranking.items(), key=lambda item: (item[1], item[0]), reverse=True)
        for rank, (doc, score) in enumerate(ordered, start=1):
            _check_token("document id", doc)
            lines.append(f"{qid} Q0 {doc} {rank} {float(score)!r} {tag}\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


def write_qrels(path: Path | str, qrels: Mapping[str, Mapping[str, int]]) -> None:
    """Write ``qid 0 docid relevance`` lines."""
    lines = []
    for qid, judged in qrels.items():
        _check_token("query id", qid)
        for doc, relevance in judged.items():
            _check_token("document id", doc)
            lines.append(f"{qid} 0 {doc} {int(relevance)}\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


def metrics_command(
    qrels_path: Path | str, run_path: Path | str, measures: list[str], per_query: bool
) -> dict:
    """The JSON the CLI prints: ``{"nDCG@10": 0.5123, ...}`` or ``{"q1": {"nDCG@10": ...}, ...}``.

    Values are rounded to 4 decimals, as trec_eval prints them; per-query keys
    are sorted. Which queries count is documented in :mod:`engine.metrics`.
    """
    qrels = read_qrels(qrels_path)
    run = read_run(run_path)
    chosen = measures or list(DEFAULT_COMMAND_MEASURES)
    try:
        if per_query:
            table = compute_per_query(qrels, run, chosen)
            return {qid: _rounded(table[qid]) for qid in sorted(table)}
        return _rounded(compute(qrels, run, chosen))
    except NoJudgedQueriesError as exc:
        raise NoJudgedQueriesError(f"{Path(qrels_path).name}: {exc}") from None


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {name: round(value, PRINTED_DECIMALS) for name, value in values.items()}

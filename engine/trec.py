"""TREC qrels and run files, and the core of the ``hybridscale metrics`` command.

Rankings written in the TREC format can be checked with trec_eval,
ir_measures or the ``metrics`` command. Reading is strict: a malformed line
raises an error that names the file and the line, because a skipped line
would quietly change every number that comes after it. A file whose name
ends in ``.gz`` is read and written gzip-compressed (the evaluator's run
files are; ``zcat`` them for trec_eval).
"""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path
from typing import IO, Iterator, Mapping

from engine.data.files import capped_lines, file_kind, quoted
from engine.metrics import NoJudgedQueriesError, Run, complete_run, compute_per_query, mean, parse_measure, trec_order

#: Measures of the ``metrics`` command when none are given.
DEFAULT_COMMAND_MEASURES: tuple[str, ...] = ("nDCG@10", "R@100", "RR@10", "AP")
#: Decimal places of trec_eval's printed values (``--format trec``); JSON keeps every digit.
TREC_DECIMALS = 4
#: Width trec_eval pads measure names to.
_TREC_NAME_WIDTH = 22
#: gzip level of written files: level 3 is 6 times faster than the default 9 on our run files and 9 % larger.
_GZIP_LEVEL = 3
_WHITESPACE = re.compile(r"\s")

log = logging.getLogger(__name__)


class TrecFormatError(ValueError):
    """A line of a qrels or run file does not follow the TREC format."""


def _lines(path: Path, kind: str, expected: str, width: int) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) of each non-blank line that has ``width`` fields; ``kind`` names the file's role."""
    if not path.is_file():
        if (what := file_kind(path)) is not None:
            raise TrecFormatError(f"{path}: the {kind} file is {what}, not a file; give the {kind} file")
        raise FileNotFoundError(f"{path.name}: no such file in {path.parent.resolve()}")
    with _open(path, "r") as handle:
        try:
            for number, line in enumerate(capped_lines(handle, path.name), start=1):
                if number == 1 and line.startswith("\ufeff"):
                    log.warning("%s line 1 starts with a byte-order mark: its query id is read as %s, as trec_eval "
                                "reads it, and matches no other file's; save the file without one", path.name,
                                quoted(line.split()[0] if line.split() else line))
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != width:
                    raise TrecFormatError(
                        f"{path.name}, line {number}: expected {width} fields '{expected}', "
                        f"got {len(fields)}: {quoted(line.strip())}"
                    )
                yield number, fields
        except UnicodeDecodeError as exc:
            raise TrecFormatError(f"{path.name}: the {kind} file is not UTF-8 text ({exc.reason}); save it as UTF-8"
                                  ) from None


def _open(path: Path, mode: str) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8", compresslevel=_GZIP_LEVEL)
    return path.open(mode, encoding="utf-8")


def _add(table: dict[str, dict], path: Path, number: int, qid: str, doc: str, value: object) -> None:
    judged = table.setdefault(qid, {})
    if doc in judged:
        raise TrecFormatError(f"{path.name}, line {number}: document {doc!r} appears twice for query {qid!r}")
    judged[doc] = value


def read_qrels(path: Path | str) -> dict[str, dict[str, int]]:
    """Read ``qid iter docid relevance`` lines (whitespace or tab separated)."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for number, (qid, _iteration, doc, relevance) in _lines(path, "qrels", "qid iter docid relevance", 4):
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
    for number, (qid, _q0, doc, _rank, score, _tag) in _lines(path, "run", "qid Q0 docid rank score tag", 6):
        try:
            value = float(score)
        except ValueError:
            raise TrecFormatError(f"{path.name}, line {number}: score {score!r} is not a number") from None
        _add(run, path, number, qid, doc, value)
    return run


def _check_token(what: str, value: str) -> None:
    if not value or _WHITESPACE.search(value):
        raise ValueError(f"{what} {value!r} cannot be written to a TREC file: it must be one word without spaces")


def write_run(path: Path | str, run: Run, tag: str) -> None:
    """Write a run in trec_eval order (score descending, then document id descending).

    Scores are written with ``repr`` so reading the file back gives the same floats.
    """
    _check_token("run tag", tag)
    lines = []
    for qid, ranking in run.items():
        _check_token("query id", qid)
        for rank, (doc, score) in enumerate(trec_order(ranking), start=1):
            _check_token("document id", doc)
            lines.append(f"{qid} Q0 {doc} {rank} {float(score)!r} {tag}\n")
    _write(Path(path), lines)


def write_qrels(path: Path | str, qrels: Mapping[str, Mapping[str, int]]) -> None:
    """Write ``qid 0 docid relevance`` lines."""
    lines = []
    for qid, judged in qrels.items():
        _check_token("query id", qid)
        for doc, relevance in judged.items():
            _check_token("document id", doc)
            lines.append(f"{qid} 0 {doc} {int(relevance)}\n")
    _write(Path(path), lines)


def _write(path: Path, lines: list[str]) -> None:
    with _open(path, "w") as handle:
        handle.write("".join(lines))


def score_files(
    qrels_path: Path | str, run_path: Path | str, measures: list[str], complete: bool = False
) -> dict[str, dict[str, float]]:
    """Query id -> measure -> value for the queries trec_eval scores (``complete``: ``trec_eval -c``).

    Which queries count is documented in :mod:`engine.metrics`; queries are
    in the order of the qrels file.
    """
    qrels = read_qrels(qrels_path)
    run = read_run(run_path)
    chosen = measures or list(DEFAULT_COMMAND_MEASURES)
    try:
        return compute_per_query(qrels, complete_run(qrels, run) if complete else run, chosen)
    except NoJudgedQueriesError as exc:
        raise NoJudgedQueriesError(f"{Path(qrels_path).name} and {Path(run_path).name}: {exc}") from None


def means(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each measure's mean over the scored queries."""
    names = next(iter(per_query.values())).keys()
    return {name: mean([values[name] for values in per_query.values()]) for name in names}


def as_json(per_query: Mapping[str, Mapping[str, float]], by_query: bool) -> dict:
    """``{"nDCG@10": 0.512..., ...}``, or with ``by_query`` ``{"q1": {...}, ...}`` with sorted keys; every digit kept."""
    if by_query:
        return {qid: dict(per_query[qid]) for qid in sorted(per_query)}
    return means(per_query)


def as_trec(per_query: Mapping[str, Mapping[str, float]], by_query: bool) -> str:
    """trec_eval's layout: ``measure<TAB>all<TAB>value`` lines, after one line per query and measure with ``by_query`` (-q)."""
    lines = []
    if by_query:
        for qid, values in per_query.items():
            lines += [_trec_line(name, qid, value) for name, value in values.items()]
    lines += [_trec_line(name, "all", value) for name, value in means(per_query).items()]
    return "\n".join(lines)


def _trec_line(name: str, qid: str, value: float) -> str:
    return f"{parse_measure(name).name:<{_TREC_NAME_WIDTH}}\t{qid}\t{value:.{TREC_DECIMALS}f}"

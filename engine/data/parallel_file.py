"""A parallel training file the user brings: JSON Lines or TSV, one (group, language) per line.

Fields: ``group`` (what is parallel: the same question in several
languages), ``language`` (any code :func:`vocabulary.languages.to_iso`
knows), ``query``, ``positive``, optional ``negative`` (a hard negative in
the line's language) and optional ``passage_id`` (the positive's id; lines
without one are identified by their text). A TSV has a header line naming
its columns (any order) and no quoting: a field ends at a tab. The file may
be plain, ``.gz`` or ``.xz``.

The file is read lazily (see :mod:`engine.data.stream`): a group's lines
must be consecutive, so a group is complete when the next one starts, and
size N reads about N groups. Validation is on the lines read, and names the
first bad line: a missing field, empty text, an unknown language, a
language twice in a group, a group's lines split apart, or (when the run
needs cross-lingual batches) a group with only one of the run's languages.
A file whose first group has one of the run's languages is a monolingual
source (an English-only QA set): it makes X-X batches only.
"""

from __future__ import annotations

import json
import lzma
from pathlib import Path
from typing import Any, Iterator, Sequence

from engine.data.errors import DataError, DataNotFoundError
from engine.data.files import capped_lines, label, logical_name, nfc, open_text, quoted
from engine.data.stream import StreamedTrainingSet
from vocabulary.languages import to_iso
from vocabulary.records import ParallelGroup

DATASET = "file"
REQUIRED: tuple[str, ...] = ("group", "language", "query", "positive")
OPTIONAL: tuple[str, ...] = ("negative", "passage_id")
FORMATS: tuple[str, ...] = (".jsonl", ".tsv")

Line = tuple[int, dict[str, str]]


def load_training_set(languages: Sequence[str], split: str = "train", path: str | None = None) -> StreamedTrainingSet:
    """The user's file at ``path`` as a lazily read source of the run's ``languages``."""
    if split != "train":
        raise DataError(f"{DATASET}: a training file has one split, 'train' (asked for {split!r})")
    if path is None:
        raise DataError(f"{DATASET}: give the file as 'file:PATH' (a .jsonl or .tsv parallel training file)")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataNotFoundError(f"{file}: no such file; give the path of your parallel training file")
    if not logical_name(file).endswith(FORMATS):
        raise DataError(f"{file.name}: a training file ends in .jsonl or .tsv (optionally .gz/.xz)")
    wanted = tuple(to_iso(code) for code in languages)
    first = next(read_groups(file, wanted, 1), None)  # reads the first group's lines only
    if first is None:
        raise DataError(f"{file.name}: no line in the run's languages ({', '.join(wanted)})")
    monolingual = len(first.languages) == 1
    return StreamedTrainingSet(
        name=f"file:{file.name}", languages=wanted,
        read=lambda min_languages: read_groups(file, wanted, 1 if monolingual else min_languages),
        count=lambda: sum(1 for _ in read_groups(file, wanted, 1)),
        monolingual=monolingual,
    )


def read_groups(path: Path, languages: Sequence[str], min_languages: int = 1) -> Iterator[ParallelGroup]:
    """The file's groups in file order, keeping the lines in ``languages``; DataError at the first bad line."""
    wanted = set(languages)
    seen: set[str] = set()
    current: list[Line] = []
    for number, record in _records(path):
        line = _checked(record, path, number)
        if current and line["group"] != current[0][1]["group"]:
            group = _group(current, wanted, min_languages, path)
            if group is not None:
                yield group
            current = []
        if not current:
            if line["group"] in seen:
                raise DataError(f"{label(path)} line {number}: group {line['group']!r} appears again after other "
                                "groups; keep each group's lines together")
            seen.add(line["group"])
        for earlier, other in current:
            if other["language"] == line["language"]:
                raise DataError(f"{label(path)} line {number}: group {line['group']!r} has language "
                                f"{line['language']!r} twice (also line {earlier}); keep one")
        current.append((number, line))
    if not seen:
        raise DataError(f"{label(path)} is empty; it needs one line per group and language")
    group = _group(current, wanted, min_languages, path)
    if group is not None:
        yield group


def _group(lines: list[Line], wanted: set[str], min_languages: int, path: Path) -> ParallelGroup | None:
    """The group of consecutive ``lines`` in the run's languages; None when it has none of them."""
    kept = [line for _, line in lines if line["language"] in wanted]
    if not kept:
        return None
    if len(kept) < min_languages:
        have = ", ".join(line["language"] for line in kept)
        raise DataError(f"{label(path)} line {lines[0][0]}: group {kept[0]['group']!r} has one of the run's languages "
                        f"({have}); cross-lingual batches need two: add its translation or train it with strategy mono")
    return ParallelGroup(
        id=kept[0]["group"],
        queries={line["language"]: line["query"] for line in kept},
        passages={line["language"]: line["positive"] for line in kept},
        passage_ids={line["language"]: line["passage_id"] for line in kept if line.get("passage_id")},
        negatives={line["language"]: line["negative"] for line in kept if line.get("negative")},
    )


def _checked(record: dict[str, Any], path: Path, number: int) -> dict[str, str]:
    """The line's fields as NFC text: required ones present and non-empty, the language an ISO code."""
    line: dict[str, str] = {}
    for name in REQUIRED + OPTIONAL:
        value = record.get(name)
        if value is None or value == "":
            if name in REQUIRED:
                what = "missing field" if value is None else "empty field"
                raise DataError(f"{label(path)} line {number}: {what} {name!r}")
            continue
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise DataError(f"{label(path)} line {number}: field {name!r} must be text, got {quoted(value)}")
        text = nfc(str(value)).strip()
        if not text:
            raise DataError(f"{label(path)} line {number}: field {name!r} is only whitespace")
        line[name] = text
    try:
        line["language"] = to_iso(line["language"])
    except ValueError as exc:
        raise DataError(f"{label(path)} line {number}: {exc}") from None
    return line


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, field -> value) for each non-blank line, from JSON Lines or a headed TSV."""
    tsv = logical_name(path).endswith(".tsv")
    header: list[str] | None = None
    with open_text(path) as stream:
        try:
            for number, raw in enumerate(capped_lines(stream, label(path)), start=1):
                text = raw.rstrip("\r\n")
                if not text.strip():
                    continue
                if not tsv:
                    yield number, _json_object(text, path, number)
                elif header is None:
                    header = [name.strip() for name in text.split("\t")]
                    missing = [name for name in REQUIRED if name not in header]
                    if missing:
                        raise DataError(f"{label(path)} line {number}: the header lacks column {missing[0]!r} "
                                        f"(it has {', '.join(header)})")
                else:
                    cells = text.split("\t")
                    if len(cells) != len(header):
                        raise DataError(f"{label(path)} line {number}: {len(cells)} fields, the header has "
                                        f"{len(header)}")
                    yield number, dict(zip(header, cells))
        except (UnicodeDecodeError, EOFError, lzma.LZMAError, OSError) as exc:
            raise DataError(f"{label(path)}: cannot be read as UTF-8 text ({type(exc).__name__}); re-export it") from None


def _json_object(text: str, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{label(path)} line {number}: not valid JSON ({exc.msg}); fix the line") from None
    if not isinstance(record, dict):
        raise DataError(f"{label(path)} line {number}: expected a JSON object, got {type(record).__name__}")
    return record

"""Reading the data files: plain, ``.xz`` or ``.gz``, always NFC, with one-line errors.

Every loader reads through these functions so that three upstream traps are
handled in one place: shipped files are xz-compressed while a user's copy is
plain (or gzipped, as MIRACL's corpus is), line endings differ (NTREX is
CRLF), and Unicode normalisation is mixed (Yoruba tone marks arrive both
precomposed and combining, so equal strings would compare unequal).
"""

from __future__ import annotations

import csv
import gzip
import json
import lzma
import stat
import unicodedata
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import assets.data
from engine.data.errors import DataError, DataNotFoundError

#: The shipped dataset subset (assets/data/<source>), the default root of every loader.
DATA_ROOT = Path(assets.data.__file__).resolve().parent
#: Compressed variants a file may be stored as, tried in this order after the plain name.
COMPRESSED_SUFFIXES: tuple[str, ...] = (".xz", ".gz")
#: Longest line a line-oriented reader takes: 50x the longest line of the shipped data, and small enough
#: that a wrong file (one 2 GB line) is refused before it is held in memory.
MAX_LINE_CHARS = 2**20
#: Characters of an offending value a message quotes (the value itself may be megabytes).
QUOTED_CHARS = 80


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def source_root(source: str, path: str | Path | None) -> Path:
    """The folder a loader reads: ``path`` when given, else the shipped ``assets/data/<source>``."""
    root = Path(path).expanduser() if path is not None else DATA_ROOT / source
    if not root.is_dir():
        raise DataNotFoundError(f"{root}: no such folder; give the folder that holds the {source} files")
    return root


def quoted(value: object) -> str:
    """``repr(value)``, cut to :data:`QUOTED_CHARS` characters with the full length said."""
    text = repr(value)
    return text if len(text) <= QUOTED_CHARS else f"{text[:QUOTED_CHARS]}... ({len(text):,} characters)"


def capped_lines(stream: IO[str], name: str, limit: int = MAX_LINE_CHARS) -> Iterator[str]:
    """The stream's lines; a line longer than ``limit`` characters is a :class:`DataError` before it is read whole."""
    for number, line in enumerate(iter(lambda: stream.readline(limit + 1), ""), start=1):
        if len(line) > limit and not line.endswith("\n"):
            raise DataError(f"{name} line {number}: longer than {limit:,} characters ({line[:QUOTED_CHARS]!r}...); "
                            "is it the right file?")
        yield line


def label(path: Path) -> str:
    """How messages name a file: folder and name (FLORES has a ``test.tsv`` per language)."""
    return f"{path.parent.name}/{path.name}"


def logical_name(path: Path) -> str:
    """The file's name without a compression suffix: ``xquad.en.json.xz`` -> ``xquad.en.json``."""
    for suffix in COMPRESSED_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.name


def file_kind(path: Path) -> str | None:
    """What ``path`` is when it exists but is not a regular file (``a FIFO``): a reader would block on a FIFO or
    read ``/dev/zero`` forever, and "no such file" would be wrong. None for a regular or a missing file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), None)


def not_a_file(path: Path, what: str) -> DataError | None:
    """The error for ``path`` when it exists as something a loader cannot read as ``what`` (a FIFO, a device)."""
    kind = file_kind(path)
    return None if kind in (None, "a folder") else DataError(f"{path}: {kind}, not {what}; give a regular file")


def find_file(folder: Path, name: str) -> Path:
    """``folder/name`` or its compressed variant, whichever exists."""
    for candidate in (name, *(name + suffix for suffix in COMPRESSED_SUFFIXES)):
        if (folder / candidate).is_file():
            return folder / candidate
    raise DataNotFoundError(f"{name}: no such file in {folder} (also looked for {name}.xz and {name}.gz)")


def open_text(path: Path) -> IO[str]:
    """A UTF-8 text stream; only ``\\n`` ends a line, so a stray ``\\r`` inside a field survives."""
    opener = {".xz": lzma.open, ".gz": gzip.open}.get(path.suffix, open)
    try:
        return opener(path, "rt", encoding="utf-8-sig", newline="\n")
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: no such file") from None


def read_lines(path: Path) -> list[str]:
    """The file's lines, CR/LF stripped and NFC-normalised; an empty file is an error."""
    lines = [nfc(line.rstrip("\r\n")) for line in _iterate(path)]
    if not lines:
        raise DataError(f"{label(path)} is empty; re-download or re-export it")
    return lines


def read_json(path: Path, *, normalise: bool = True) -> Any:
    """The parsed file, every string NFC; ``normalise=False`` keeps the raw strings
    for callers that must apply character offsets first (SQuAD ``answer_start``)."""
    text = "".join(_iterate(path, limit=None))  # a JSON document may be one line (SQuAD's files are)
    if not text.strip():
        raise DataError(f"{label(path)} is empty; re-download or re-export it")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{label(path)} line {exc.lineno}: not valid JSON ({exc.msg}); fix or re-download the file") from None
    return nfc_strings(data) if normalise else data


def nfc_strings(value: Any) -> Any:
    """``value`` with every string inside it (keys too) NFC-normalised."""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, list):
        return [nfc_strings(item) for item in value]
    if isinstance(value, dict):
        return {nfc_strings(key): nfc_strings(item) for key, item in value.items()}
    return value


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file."""
    return jsonl_records(_iterate(path), label(path))


def jsonl_records(lines: Iterable[str], name: str, *, normalise: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of JSON Lines ``lines`` (read with :func:`capped_lines`),
    its strings NFC unless ``normalise`` is False; messages call the file ``name``."""
    seen = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{name} line {number}: not valid JSON ({exc.msg}); fix or re-download the file") from None
        if not isinstance(record, dict):
            raise DataError(f"{name} line {number}: expected a JSON object, got {type(record).__name__}")
        seen = True
        yield number, nfc_strings(record) if normalise else record
    if not seen:
        raise DataError(f"{name} is empty; re-download or re-export it")


def read_tsv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a headed, CSV-quoted TSV (pandas ``to_csv(sep='\\t')`` style), NFC, as dicts of ``columns``."""
    with open_text(path) as stream:
        try:
            rows = list(csv.reader(capped_lines(stream, label(path)), delimiter="\t"))
        except (UnicodeDecodeError, EOFError, lzma.LZMAError, OSError) as exc:
            raise _unreadable(path, exc) from None
    if not rows:
        raise DataError(f"{label(path)} is empty; re-download or re-export it")
    header = rows[0]
    for column in columns:
        if column not in header:
            raise DataError(f"{label(path)}: missing column {column!r} in the header ({', '.join(header)})")
    index = {column: header.index(column) for column in columns}
    records = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{label(path)} line {number}: {len(row)} fields, the header has {len(header)}")
        records.append({column: nfc(row[i]) for column, i in index.items()})
    return records


def field(record: dict[str, Any], name: str, path: Path, number: int) -> Any:
    """``record[name]``, or a DataError naming the file, line and missing field."""
    try:
        return record[name]
    except KeyError:
        raise DataError(f"{label(path)} line {number}: missing field {name!r}") from None


def text_field(record: dict[str, Any], name: str, path: Path, number: int, *, optional: bool = False) -> str:
    """``record[name]`` as text: a string, or a number (an id); null is an error unless ``optional`` (then "")."""
    value = record.get(name) if optional else field(record, name, path, number)
    if value is None and optional:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        shown = "null" if value is None else type(value).__name__
        raise DataError(f"{label(path)} line {number}: field {name!r} is {shown}, not text; fix or re-download the file")
    return str(value)


def _iterate(path: Path, limit: int | None = MAX_LINE_CHARS) -> Iterator[str]:
    with open_text(path) as stream:
        try:
            yield from stream if limit is None else capped_lines(stream, label(path), limit)
        except (UnicodeDecodeError, EOFError, lzma.LZMAError, OSError) as exc:
            raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> DataError:
    return DataError(f"{label(path)}: cannot be read as UTF-8 text ({type(exc).__name__}: {exc}); re-download it")

"""Hugging Face hub datasets, read from their data files, online or from a local copy in the hub's layout.

Several upstream repos (``miracl/miracl-corpus``, ``CIRAL/ciral-corpus``,
``unicamp-dl/mmarco``) ship a loading script, which ``datasets`` 4 and later
refuse to run. So no loader calls ``load_dataset(REPO)``: each names the
files it reads (:class:`HubFiles`, a repo and a path inside it, globs
allowed), and those are streamed from ``hf://datasets/REPO/PATH`` (JSON
Lines through ``huggingface_hub``'s file system, Parquet through
``datasets``' builder), or from the same PATH under a local folder that
holds the repo's files in the hub's layout. Both go through :func:`rows`
and the same line reader, so tests on local folders exercise the hub
path's parsing; only the opening of the file differs.

A local copy is found in three ways: a loader's ``path`` pointing at the
repo's folder; or a data folder (``hybridscale data download --to DIR``
writes ``DIR/<owner>/<name>/...``) named by the environment variable
:data:`DATA_DIR_ENV` (``hybridscale submit --data-dir`` sets it), for
compute nodes without internet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from engine.data.errors import DataError, DataNotFoundError
from engine.data.files import (
    COMPRESSED_SUFFIXES,
    capped_lines,
    jsonl_records,
    label,
    nfc_strings,
    open_text,
    text_field,
)

#: The folder holding downloaded hub repos (``DIR/<owner>/<name>/<path>``); unset: read the hub.
DATA_DIR_ENV = "HYBRIDSCALE_DATA_DIR"


@dataclass(frozen=True)
class HubFiles:
    """Files of one hub dataset repo: ``path`` is relative to the repo root and may hold globs."""

    repo: str
    path: str

    @property
    def url(self) -> str:
        return f"hf://datasets/{self.repo}/{self.path}"


def data_dir() -> Path | None:
    """The downloaded-data folder named by :data:`DATA_DIR_ENV`, or None."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def locate(files: HubFiles, root: Path | None = None) -> list[str]:
    """The files to read: those matching ``files.path`` under ``root`` (a local copy of the repo; default
    the data folder's copy, when one is set), else the hub URL.

    A local match may also carry a ``.gz`` or ``.xz`` suffix; none at all is a
    DataNotFoundError naming the expected layout.
    """
    if root is None:
        base = data_dir()
        if base is None:
            return [files.url]
        root = base / files.repo
    if not root.is_dir():
        raise DataNotFoundError(f"{root}: no such folder; give a copy of hub repo {files.repo} in its layout "
                                f"(with {files.path}), e.g. from 'hybridscale data download'")
    patterns = (files.path, *(files.path + suffix for suffix in COMPRESSED_SUFFIXES))
    found = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    if not found:
        raise DataNotFoundError(f"{root}: no {files.path} in it; it is not laid out like hub repo {files.repo} "
                                "(see 'hybridscale data list')")
    return [str(p) for p in found]


def rows(file: str, *, normalise: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """(record number, record) of one data file, local or ``hf://``; strings NFC unless ``normalise`` is False
    (SQuAD offsets index the raw text). An unreadable file is one DataError or DataNotFoundError naming it.

    JSON Lines (``.jsonl``, also gzipped or xz'd: every passage corpus) is read a line at a time, through
    ``huggingface_hub``'s file system for ``hf://``, each line capped at
    :data:`engine.data.files.MAX_LINE_CHARS`, so a wrong file (one line of hundreds of MB) is one error
    naming its line instead of a full read into memory (``datasets``' json builder grows its read block
    until a whole line fits); the record number is the line. ``.parquet`` goes through ``datasets``'
    ``parquet`` builder, other ``.json`` (a SQuAD document may be one line) through its ``json`` builder.
    """
    remote = file.startswith("hf://")
    if not remote and not Path(file).is_file():
        raise DataNotFoundError(f"{file}: no such file")
    lines = _is_json_lines(file)
    builder = "parquet" if file.endswith(".parquet") else "json"
    try:
        if lines:
            yield from _json_lines(file, remote, normalise)
            return
        import datasets

        records = datasets.load_dataset(builder, data_files={"train": file}, split="train", streaming=True)
        for number, row in enumerate(records, start=1):
            yield number, nfc_strings(row) if normalise else row
    except (DataError, DataNotFoundError, GeneratorExit):
        raise
    except Exception as exc:  # offline, a moved file, broken JSON: one line naming the file
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = (f"go online, or download it with 'hybridscale data download' and set {DATA_DIR_ENV}" if remote
                else "fix or re-download the file")
        kind = DataNotFoundError if remote else DataError
        what = "JSON Lines" if lines else f"{builder} records"
        raise kind(f"{file}: cannot be read as {what} ({type(exc).__name__}: {cause}); {hint}") from None


def _is_json_lines(file: str) -> bool:
    name = file
    for suffix in COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    return name.endswith(".jsonl")


def _json_lines(file: str, remote: bool, normalise: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """The records of a JSON Lines file, a capped line at a time (:func:`engine.data.files.capped_lines`)."""
    if not remote:
        with open_text(Path(file)) as stream:
            yield from jsonl_records(capped_lines(stream, label(Path(file))), label(Path(file)), normalise=normalise)
        return
    import fsspec  # hf:// is huggingface_hub's HfFileSystem

    opened = fsspec.open_files(file, "rt", encoding="utf-8", newline="\n", compression="infer")  # globs expanded
    if not opened:
        raise DataNotFoundError(f"{file}: no such file on the hub; see 'hybridscale data list'")
    for one in opened:
        with one as stream:
            name = label(Path(one.path))
            yield from jsonl_records(capped_lines(stream, name), name, normalise=normalise)


def hub_passages(files: HubFiles, root: Path | None = None, instead: str = "") -> Iterator[tuple[str, str, str]]:
    """(docid, title, text) of every passage file of ``files`` (:func:`locate`: under ``root``, in the data
    folder, else on the hub). A file or folder that cannot be found is one DataNotFoundError, led by
    ``instead`` (what else the user can give) when the loader says one."""
    try:
        for file in locate(files, root):
            yield from passages(file)
    except DataNotFoundError as exc:
        if not instead:
            raise
        raise DataNotFoundError(f"{instead}; {exc}") from None


def passages(file: str) -> Iterator[tuple[str, str, str]]:
    """(docid, title, text) of a passage-corpus JSON Lines file (MIRACL, CIRAL and AfriQA's collection share
    these fields); a null title is an empty one, a missing or null docid or text names the file and record."""
    where = Path(file)
    for number, row in rows(file):
        yield (text_field(row, "docid", where, number), text_field(row, "title", where, number, optional=True),
               text_field(row, "text", where, number))

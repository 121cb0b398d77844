"""Cheap checks of a study's local passage corpora, made when it is submitted rather than when a run reads them.

A CIRAL or MIRACL evaluation reads its corpus (``EvalSpec.path``) only when
its run evaluates, which may be hours of training after ``submit``; a folder
in the wrong layout or a file whose lines lack ``docid``/``text`` should be
said at once, in one line naming the file. So ``hybridscale submit`` and the
setup form run :func:`check_corpus` on every evaluation with a ``path``.

Only what costs next to nothing is checked, since a corpus may hold a
million passages: where the files are (through the loaders' own layout
functions, so that the check and the later read find the same files) and the
first record of each JSON Lines file. A bad line further down is still found
by the loader, when the run reads it. TSV corpora (MIRACL) are not opened here.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from engine.data import ciral, miracl
from engine.data.errors import DataError, DataNotFoundError
from engine.data.files import logical_name, read_jsonl
from engine.data.hub import locate
from vocabulary.config import EvalSpec

#: The fields every passage of a CIRAL or MIRACL corpus must have (``title`` may be missing or null).
REQUIRED_FIELDS = ("docid", "text")


def check_corpus(spec: EvalSpec) -> None:
    """Raise DataError or DataNotFoundError, one line naming the file and what to do, when the local corpus of
    ``spec`` is not where or what its loader expects; nothing for an evaluation without a local corpus."""
    if spec.path is None or spec.dataset not in _CORPUS_FILES:
        return
    for lang in spec.languages:
        for file in _CORPUS_FILES[spec.dataset](lang, Path(spec.path).expanduser(), len(spec.languages)):
            check_first_record(file, spec.dataset)


def check_first_record(file: Path, dataset: str) -> None:
    """The first record of a JSON Lines corpus file has a ``docid`` and a ``text`` (other files are not read)."""
    if not logical_name(file).endswith(".jsonl"):
        return
    with closing(read_jsonl(file)) as records:  # reads up to the first non-blank line only
        number, record = next(records)
    missing = [name for name in REQUIRED_FIELDS if record.get(name) is None]
    if missing:
        raise DataError(f"{file} line {number}: no {' or '.join(map(repr, missing))}; each line of a {dataset} "
                        "corpus is a JSON object with docid, text (and title): fix the file or give the hub's copy")


def _ciral_files(lang: str, path: Path, language_count: int) -> list[Path]:
    """The files :func:`engine.data.ciral.corpus` reads for ``lang`` from ``path`` (one file, or a repo copy).

    A path that is not there at all may have been meant as a file: the loader
    would call it "no such folder", so this says both."""
    if not path.exists():
        raise DataNotFoundError(f"{path}: no such file or folder; give a copy of hub repo {ciral.HUB_REPO} (a folder "
                                "with passages-v1.0/) or one JSON Lines corpus file")
    if path.is_file():
        return [ciral.corpus_file(path, language_count)]
    return [Path(file) for file in locate(ciral.hub_files(lang), path)]


def _miracl_files(lang: str, path: Path, language_count: int) -> list[Path]:
    """The files :mod:`engine.data.miracl` reads for ``lang`` from ``path``: a copy of the hub repo, or the
    user's files and folders (its own layout rules, :func:`engine.data.miracl._corpus_files`)."""
    hub = miracl.hub_files(lang)
    if path.is_dir() and any(path.glob(hub.path)):
        return [Path(file) for file in locate(hub, path)]
    return miracl._corpus_files(path, lang, language_count)


_CORPUS_FILES = {ciral.DATASET: _ciral_files, miracl.DATASET: _miracl_files}

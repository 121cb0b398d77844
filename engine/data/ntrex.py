"""NTREX-128 news (WMT19 newstest English and its sw/yo translations): bitext retrieval.

Files (shipped, or an ``NTREX-128`` folder as ``path``):
``newstest2019-src.eng.txt`` and ``newstest2019-ref.<code>.txt``, one
segment per line, CRLF, line i parallel in every file. The item key is the
0-based line number, so ids are ``sw:0``, ``en:0``, ... and, as for FLORES,
a sentence is a query and a passage under the same id.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.data.errors import DataError, check_languages, check_split
from engine.data.evalset import bitext_eval_set
from engine.data.files import logical_name, read_lines, source_root
from vocabulary.config import EvalSpec
from vocabulary.languages import to_iso
from vocabulary.records import EvalSet

DATASET = "ntrex"
_FILE_NAME = re.compile(r"^newstest2019-(?:src|ref)\.(?P<code>[A-Za-z-]+)\.txt$")


def load_eval_set(spec: EvalSpec) -> EvalSet:
    check_split(DATASET, spec.split)
    root = source_root(DATASET, spec.path)
    files = _language_files(root)
    codes = check_languages(DATASET, spec.languages, files, where=f" in {root}")
    lines = {lang: read_lines(files[lang]) for lang in codes}
    counts = {lang: len(text) for lang, text in lines.items()}
    if len(set(counts.values())) > 1:
        found = ", ".join(f"{lang} {n}" for lang, n in counts.items())
        raise DataError(f"{DATASET}: the files are not line-parallel (lines: {found}); re-download them")
    sentences = {lang: {str(i): line for i, line in enumerate(text)} for lang, text in lines.items()}
    return bitext_eval_set(spec, codes, sentences)


def _language_files(root: Path) -> dict[str, Path]:
    """ISO code -> file, for the files whose NTREX code we map (``eng-GB`` and the like are skipped)."""
    files = {}
    for candidate in sorted(root.iterdir()):
        match = _FILE_NAME.match(logical_name(candidate))
        if match:
            try:
                files[to_iso(match["code"])] = candidate
            except ValueError:
                continue
    return files

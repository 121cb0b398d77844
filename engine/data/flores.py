"""FLORES-200 sentences as packaged by SIB-200: parallel sentence retrieval and bitext training.

Layout (shipped, or a SIB-200 ``data/annotated`` folder as ``path``):
``<flores code>/<split>.tsv`` with header ``index_id, category, text``,
written by pandas so quoted fields are CSV-quoted. ``index_id`` is the same
sentence in every language, so it is the group key and, prefixed by the
language, the id: ``sw:1523``. Split ``all`` is the three shipped splits
together (1,004 sentences per language): the hardest pool for a model that
did not train on FLORES (config validation refuses it for one that did).

Bitext convention (the evaluator relies on it): a sentence is both a query
and a passage under the SAME id; its relevant set is its translations in the
OTHER chosen languages, and the evaluator never retrieves a passage whose id
equals the query id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from engine.data.errors import DataError, check_languages, check_split
from engine.data.evalset import bitext_eval_set
from engine.data.files import find_file, label, read_tsv, source_root
from vocabulary.config import EvalSpec
from vocabulary.languages import to_iso
from vocabulary.records import EvalSet, ParallelGroup, TrainingSet

DATASET = "flores"
COLUMNS = ("index_id", "text")
#: The files of split ``all``, in order.
ALL_SPLITS = ("train", "dev", "test")


def load_eval_set(spec: EvalSpec) -> EvalSet:
    check_split(DATASET, spec.split)
    codes, sentences = read_parallel(spec.languages, spec.split, spec.path)
    return bitext_eval_set(spec, codes, sentences)


def load_training_set(languages: Sequence[str], split: str = "train", path: str | None = None) -> TrainingSet:
    """One group per ``index_id``: the sentence in each language is both its query and its passage."""
    check_split(DATASET, split)
    codes, sentences = read_parallel(languages, split, path)
    groups = tuple(
        ParallelGroup(id=key, queries={lang: sentences[lang][key] for lang in codes},
                      passages={lang: sentences[lang][key] for lang in codes})
        for key in sentences[codes[0]]
    )
    return TrainingSet(name=f"{DATASET}/{split}", languages=codes, groups=groups)


def read_parallel(
    languages: Sequence[str], split: str, path: str | None
) -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
    """(ISO codes, code -> index_id -> NFC text), checked to hold the same ids in every language."""
    root = source_root(DATASET, path)
    folders = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            folders[to_iso(folder.name)] = folder
        except ValueError:
            continue  # not a language folder
    codes = check_languages(DATASET, languages, folders, where=f" in {root}")
    sentences = {lang: _read_splits(folders[lang], ALL_SPLITS if split == "all" else (split,)) for lang in codes}
    reference = codes[0]
    for lang in codes[1:]:
        if set(sentences[lang]) != set(sentences[reference]):
            missing = sorted(set(sentences[reference]) ^ set(sentences[lang]), key=int)[:5]
            raise DataError(
                f"{DATASET} {split}: {lang} and {reference} hold different index_ids (e.g. {', '.join(missing)}); "
                "the files must be parallel"
            )
    return codes, sentences


def _read_splits(folder: Path, splits: Sequence[str]) -> dict[str, str]:
    """index_id -> text over the split files of one language; an index_id in two of them is an error."""
    sentences: dict[str, str] = {}
    for split in splits:
        path = find_file(folder, f"{split}.tsv")
        part = _read_split(path)
        twice = sorted(set(part) & set(sentences), key=int)
        if twice:
            raise DataError(f"{label(path)}: index_id {twice[0]} is also in another split; the splits must not overlap")
        sentences.update(part)
    return sentences


def _read_split(path: Path) -> dict[str, str]:
    rows = read_tsv(path, COLUMNS)
    sentences: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        key = row["index_id"].strip()
        if not key.isdigit():
            raise DataError(f"{label(path)} line {number}: index_id {key!r} is not a number")
        if key in sentences:
            raise DataError(f"{label(path)} line {number}: index_id {key} appears twice")
        sentences[key] = row["text"]
    if not sentences:
        raise DataError(f"{label(path)} is empty: a header but no sentences")
    return sentences

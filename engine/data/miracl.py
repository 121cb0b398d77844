"""MIRACL v1.0 sw/yo: shipped topics and qrels, and a passage corpus from a local file or the hub.

Topics (``qid<TAB>query``) and qrels (``qid<TAB>Q0<TAB>docid<TAB>relevance``)
are shipped for sw dev/train and yo dev (MIRACL has no yo train). Explicit
negatives (relevance 0) are kept: metrics ignore them, but they are real
judgements. Ids are prefixed with the language (``yo:10020#0``), since sw and
yo Wikipedia docids can coincide.

The corpus (~132k sw, ~49k yo passages) is not shipped. ``spec.path`` gives it:

* a JSONL file (``docid``, ``text``, optional ``title``, MIRACL corpus style)
  or a TSV file (``docid<TAB>title<TAB>text`` or ``docid<TAB>text``), plain,
  ``.gz`` or ``.xz``; only with one chosen language;
* a folder of such files; or a folder with one such folder per language,
  named ``sw``/``yo`` or ending in ``-sw``/``-yo``;
* a copy of the hub repo ``miracl/miracl-corpus``: its layout, from the repo's
  file tree and the MIRACL README (gzipped JSON Lines), is
  ``miracl-corpus-v1.0-<lang>/docs-<n>.jsonl.gz`` (sw and yo: ``docs-0`` only).

Without a path, those files are read from the hub (or from a data folder,
:mod:`engine.data.hub`) by the hub's JSON Lines reader, as is a local
copy in the hub's layout; the repo's loading script, which ``datasets`` 4
refuses, is never run. Judgements of passages
that a partial local corpus lacks are kept: the evaluator counts a relevant
one as relevant and never retrieved, and warns with the count. A passage
whose ``docid`` or ``text`` is null is an error naming its file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from engine.data.errors import DataError, DataNotFoundError, check_languages, check_split
from engine.data.evalset import build_eval_set
from engine.data.files import (
    find_file,
    label,
    logical_name,
    not_a_file,
    read_jsonl,
    read_lines,
    source_root,
    text_field,
)
from engine.data.hub import HubFiles, hub_passages
from vocabulary.config import EvalSpec
from vocabulary.records import EvalSet, Passage, Query

DATASET = "miracl"
HUB_CORPUS = "miracl/miracl-corpus"
CORPUS_SUFFIXES: tuple[str, ...] = (".jsonl", ".tsv")
OFFLINE_HINT = "corpus not available offline: pass --corpus PATH (hybridscale submit; in the GUI: its 'Local files')"


def load_eval_set(spec: EvalSpec) -> EvalSet:
    check_split(DATASET, spec.split)
    codes = check_languages(DATASET, spec.languages)
    root = source_root(DATASET, None)
    queries: list[Query] = []
    qrels: dict[str, dict[str, int]] = {}
    for lang in codes:
        topics, judgements = _read_topics(root, lang, spec.split)
        queries.extend(Query(f"{lang}:{qid}", text, lang) for qid, text in topics)
        for qid, docid, relevance in judgements:
            qrels.setdefault(f"{lang}:{qid}", {})[f"{lang}:{docid}"] = relevance
    passages = (
        Passage(f"{lang}:{docid}", text, lang, title)
        for lang in codes
        for docid, title, text in _corpus(lang, spec.path, len(codes))
    )
    return build_eval_set(spec.label, queries, passages, qrels, max_queries=spec.max_queries)


def _read_topics(root: Path, lang: str, split: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    """(qid, query) pairs and (qid, docid, relevance) judgements of one language and split."""
    name = f"miracl-v1.0-{lang}-{split}.tsv"
    try:
        topics_path = find_file(root, f"topics.{name}")
        qrels_path = find_file(root, f"qrels.{name}")
    except DataNotFoundError:
        have = sorted(logical_name(p)[len("topics.miracl-v1.0-") : -len(".tsv")] for p in root.glob("topics.*"))
        raise DataNotFoundError(
            f"{DATASET}: no {lang} {split} topics; available: {', '.join(h.replace('-', ' ') for h in have)}"
        ) from None
    topics = [tuple(_fields(line, 2, topics_path, number, "qid<TAB>query")) for number, line in _numbered(topics_path)]
    judgements = []
    for number, line in _numbered(qrels_path):
        qid, _, docid, relevance = _fields(line, 4, qrels_path, number, "qid<TAB>Q0<TAB>docid<TAB>relevance")
        try:
            judgements.append((qid, docid, int(relevance)))
        except ValueError:
            raise DataError(f"{label(qrels_path)} line {number}: relevance {relevance!r} is not a number") from None
    return topics, judgements


def hub_files(lang: str) -> HubFiles:
    """The corpus files of ``lang`` in the hub repo."""
    return HubFiles(HUB_CORPUS, f"miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz")


def _corpus(lang: str, path: str | None, language_count: int) -> Iterator[tuple[str, str, str]]:
    """(docid, title, text) of the language's passages, from ``path`` or the hub."""
    if path is None:
        return _hub_corpus(lang, None)
    root = Path(path).expanduser()
    if root.is_dir() and list(root.glob(hub_files(lang).path)):
        return _hub_corpus(lang, root)
    files = _corpus_files(root, lang, language_count)
    return (doc for file in files for doc in _read_corpus_file(file))


def _hub_corpus(lang: str, root: Path | None) -> Iterator[tuple[str, str, str]]:
    """The hub repo's files for ``lang`` (online, in a data folder, or under ``root``), through datasets."""
    return hub_passages(hub_files(lang), root,
                        instead=f"{DATASET} {lang}: {OFFLINE_HINT} (a MIRACL-style JSONL/TSV file or folder)")


def _corpus_files(path: Path, lang: str, language_count: int) -> list[Path]:
    if path.is_file():
        if language_count > 1:
            raise DataError(f"{DATASET}: {path} is one corpus file but {language_count} languages are chosen; "
                            "pass a folder with one subfolder per language (sw/, yo/)")
        return [path]
    if not path.is_dir():
        raise not_a_file(path, "a corpus file") or DataNotFoundError(
            f"{path}: no such corpus file or folder; {OFFLINE_HINT}")
    per_language = [d for d in sorted(path.iterdir()) if d.is_dir() and (d.name == lang or d.name.endswith(f"-{lang}"))]
    if per_language:
        path = per_language[0]
    elif language_count > 1:
        raise DataNotFoundError(f"{path}: no {lang}/ (or *-{lang}/) corpus folder for language {lang!r}")
    files = [f for f in sorted(path.iterdir()) if f.is_file() and Path(logical_name(f)).suffix in CORPUS_SUFFIXES]
    if not files:
        raise DataNotFoundError(f"{path}: no *.jsonl or *.tsv corpus files (plain, .gz or .xz) for {lang}")
    return files


def _read_corpus_file(path: Path) -> Iterator[tuple[str, str, str]]:
    if logical_name(path).endswith(".jsonl"):
        for number, record in read_jsonl(path):
            yield (text_field(record, "docid", path, number), text_field(record, "title", path, number, optional=True),
                   text_field(record, "text", path, number))
        return
    for number, line in _numbered(path):
        parts = line.split("\t")
        if number == 1 and parts[0].lower() in ("docid", "id"):
            continue  # a header row
        if len(parts) == 3:
            yield parts[0], parts[1], parts[2]
        elif len(parts) == 2:
            yield parts[0], "", parts[1]
        else:
            raise DataError(f"{label(path)} line {number}: {len(parts)} fields; expected docid<TAB>title<TAB>text or docid<TAB>text")


def _numbered(path: Path) -> Iterable[tuple[int, str]]:
    """(line number, line) of the non-blank lines."""
    return ((number, line) for number, line in enumerate(read_lines(path), start=1) if line.strip())


def _fields(line: str, count: int, path: Path, number: int, layout: str) -> list[str]:
    parts = line.split("\t")
    if len(parts) != count:
        raise DataError(f"{label(path)} line {number}: {len(parts)} fields; expected {layout}")
    return parts

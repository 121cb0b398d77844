"""CIRAL v1.0 sw/yo (FIRE 2023, SIGIR 2024): English questions, Swahili / Yoruba news passages, human judgements.

Topics and qrels ship in ``assets/data/ciral`` (anserini-tools' copies,
byte for byte): ``topics/topics.ciral-v1.0-<lang>-<split>.tsv`` holds the
English questions (``qid<TAB>query``), ``...-<split>-native.tsv`` the same
questions in sw / yo, and ``qrels/qrels.ciral-v1.0-<lang>-<split>.tsv`` the
judgements (``qid Q0 docid relevance``, space- or tab-separated, so read on
whitespace). Splits: ``test-a``, ``test-b``, ``test-a-pools`` (test-a's
questions judged on the shared task's deeper pools) and ``dev`` (native
questions only: upstream has no English dev topics).

Queries: each English question is an ``en`` query ``en:<lang>:<qid>`` (the
cross-lingual setting, ``en -> sw/yo``); each native one a ``<lang>`` query
``<lang>:<qid>`` (the monolingual setting, pyserini's "BM25 QT" reference).
Passages are ``<lang>:<docid>``. A judged docid that the corpus lacks is
kept in the language of the corpus it belongs to (``absent_languages``), so
the evaluator counts it as relevant and never retrieved, with a warning.

The corpus is not shipped (sw 949,013 passages, yo 82,095). Its hub layout,
from the file tree of ``CIRAL/ciral-corpus`` (huggingface.co, folder
``passages-v1.0``) and the upstream README's field list, is one JSON Lines
file per language, ``passages-v1.0/<name>_passages.jsonl`` with ``<name>``
``swahili`` / ``yoruba`` (fields ``docid``, ``title``, ``text``, ``url``).
The repo's loading script (``ciral-corpus.py``) is never run:
:mod:`engine.data.hub` reads these files from ``hf://datasets/CIRAL/ciral-corpus``,
from a data folder, or from ``spec.path``, which is a local copy of the repo
(a folder with ``passages-v1.0/``) or one JSON Lines file (one language).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

from engine.data.errors import DataError, DataNotFoundError, check_languages, check_split
from engine.data.evalset import build_eval_set
from engine.data.files import find_file, label, read_lines, source_root
from engine.data.hub import HubFiles, hub_passages, passages
from vocabulary.config import EvalSpec
from vocabulary.records import EvalSet, Passage, Query

log = logging.getLogger(__name__)

DATASET = "ciral"
HUB_REPO = "CIRAL/ciral-corpus"
#: ISO 639-1 -> the language name in the hub's file names.
NAMES = {"sw": "swahili", "yo": "yoruba"}
#: The query language of the English topics.
ENGLISH = "en"


def hub_files(lang: str) -> HubFiles:
    """The corpus file of ``lang`` in the hub repo."""
    return HubFiles(HUB_REPO, f"passages-v1.0/{NAMES[lang]}_passages.jsonl")


def load_eval_set(spec: EvalSpec) -> EvalSet:
    check_split(DATASET, spec.split)
    codes = check_languages(DATASET, spec.languages)
    queries, qrels, absent = _questions(source_root(DATASET, None), codes, spec.split)
    passages = (Passage(f"{lang}:{docid}", text, lang, title)
                for lang in codes for docid, title, text in corpus(lang, spec.path, len(codes)))
    return build_eval_set(spec.label, queries, passages, qrels, max_queries=spec.max_queries,
                          absent_languages=absent)


def _questions(root: Path, codes: tuple[str, ...], split: str
               ) -> tuple[list[Query], dict[str, dict[str, int]], dict[str, str]]:
    """The English and native queries of the split, their judgements, and the language of each judged passage."""
    queries: list[Query] = []
    qrels: dict[str, dict[str, int]] = {}
    absent: dict[str, str] = {}
    for lang in codes:
        judgements = _read_qrels(find_file(root / "qrels", f"qrels.ciral-v1.0-{lang}-{split}.tsv"))
        for query_language, path in _topic_files(root, lang, split):
            prefix = f"{ENGLISH}:{lang}" if query_language == ENGLISH else lang
            topic_ids = set()
            for qid, text in _read_topics(path):
                queries.append(Query(f"{prefix}:{qid}", text, query_language))
                topic_ids.add(qid)
            for qid, docid, relevance in judgements:
                if qid in topic_ids:
                    qrels.setdefault(f"{prefix}:{qid}", {})[f"{lang}:{docid}"] = relevance
                    absent[f"{lang}:{docid}"] = lang
            _warn_unmatched(path, topic_ids, {qid for qid, _, _ in judgements})
    return queries, qrels, absent


def _warn_unmatched(topics: Path, topic_ids: set[str], judged_ids: set[str]) -> None:
    """Log topics without judgements (never scored) and judged qids without a topic (sw test-b has one)."""
    for ids, what in ((topic_ids - judged_ids, "topics without judgements (not scored)"),
                      (judged_ids - topic_ids, "judged query ids without a topic (ignored)")):
        if ids:
            log.warning("%s: %d %s, e.g. %s", label(topics), len(ids), what, sorted(ids)[0])


def _topic_files(root: Path, lang: str, split: str) -> list[tuple[str, Path]]:
    """(query language, topics file) of the split: the English topics where upstream has them, the native ones."""
    topics_split = "test-a" if split == "test-a-pools" else split
    found = []
    for query_language, suffix in ((ENGLISH, ""), (lang, "-native")):
        try:
            found.append((query_language, find_file(root / "topics", f"topics.ciral-v1.0-{lang}-{topics_split}{suffix}.tsv")))
        except DataNotFoundError:
            if suffix:
                raise
    return found


def _read_topics(path: Path) -> list[tuple[str, str]]:
    """(qid, question) pairs; a repeated qid keeps its first question, with a warning (upstream's sw test-b
    native topics give 237 twice, the second where the English topics have 238)."""
    topics: dict[str, str] = {}
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip():
            raise DataError(f"{label(path)} line {number}: {len(parts)} fields; expected qid<TAB>query")
        qid = parts[0].strip()
        if qid in topics:
            log.warning("%s line %d: query id %s again; its first question is kept, this one left out",
                        label(path), number, qid)
            continue
        topics[qid] = parts[1].strip()
    return list(topics.items())


def _read_qrels(path: Path) -> list[tuple[str, str, int]]:
    judgements = []
    for number, line in enumerate(read_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DataError(f"{label(path)} line {number}: {len(parts)} fields; expected qid Q0 docid relevance")
        try:
            judgements.append((parts[0], parts[2], int(parts[3])))
        except ValueError:
            raise DataError(f"{label(path)} line {number}: relevance {parts[3]!r} is not a number") from None
    return judgements


def corpus(lang: str, path: str | None, language_count: int) -> Iterator[tuple[str, str, str]]:
    """(docid, title, text) of the language's passages: from ``path`` (a repo copy or one JSONL file), a data
    folder, or the hub."""
    local = Path(path).expanduser() if path is not None else None
    if local is None or not local.is_file():
        return hub_passages(hub_files(lang), local)
    return passages(str(corpus_file(local, language_count)))


def corpus_file(file: Path, language_count: int) -> Path:
    """``file`` as the one JSON Lines corpus of a study's one language; DataError when it has several."""
    if language_count > 1:
        raise DataError(f"{DATASET}: {file} is one corpus file but {language_count} languages are chosen; "
                        f"pass a copy of {HUB_REPO} (a folder with passages-v1.0/)")
    return file

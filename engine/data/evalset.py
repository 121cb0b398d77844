"""Assembling an EvalSet: unique ids, a non-empty corpus, the ``max_queries`` subset, bitext sets.

Every eval loader ends here, so the subset rule is the same for all of them:
queries are grouped (a group is one item and its translations: a FLORES
``index_id``, an XQuAD question id, an AfriQA question and its English
translation; a query without translations is its own group), groups are
ordered by the SHA-256 of their key, and the first ``max_queries`` groups are
kept. The order is a fixed pseudo-random shuffle, so a subset spreads over a
file sorted by topic (SIB-200 sorts by category), is the same on every machine
and Python version, keeps every language of a kept item, and grows by nesting
(the subset of N groups is inside the subset of N+1). The passage corpus is
never cut: only queries and their qrels are dropped. It is kept on disk
(:class:`engine.data.corpus.StoredPassages`), written as the loader reads it,
so a large corpus's texts are never all in memory.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Iterable, Mapping, Sequence

from engine.data.corpus import stored
from engine.data.errors import DataError
from vocabulary.config import EvalSpec
from vocabulary.records import EvalSet, Passage, Query


def build_eval_set(
    name: str,
    queries: Sequence[Query],
    passages: Iterable[Passage],
    qrels: Mapping[str, Mapping[str, int]],
    groups: Mapping[str, str] | None = None,
    max_queries: int | None = None,
    absent_languages: Mapping[str, str] | None = None,
    bitext: bool = False,
) -> EvalSet:
    """The EvalSet, after checking ids and keeping the first ``max_queries`` groups.

    ``passages`` is read once (a loader may stream them) into a stored corpus;
    ``groups`` maps a query id to its group key (default: the query id);
    ``absent_languages`` and ``bitext`` are passed on (see :class:`vocabulary.records.EvalSet`).
    """
    _check_unique(name, "query", [q.id for q in queries])
    passages = stored(passages)
    _check_unique(name, "passage", [p.id for p in passages])
    if not passages:
        raise DataError(f"{name}: the passage corpus is empty; check the data folder and languages")
    if not queries:
        raise DataError(f"{name}: no queries; check the data folder, languages and split")
    if max_queries is not None:
        if max_queries < 1:
            raise DataError(f"{name}: max_queries must be at least 1, got {max_queries}")
        queries = subset_queries(queries, groups or {}, max_queries)
    kept = {q.id for q in queries}
    return EvalSet(
        name=name,
        queries=tuple(queries),
        passages=passages,
        qrels={qid: dict(judged) for qid, judged in qrels.items() if qid in kept},
        absent_languages=dict(absent_languages or {}),
        bitext=bitext,
    )


def bitext_eval_set(spec: EvalSpec, codes: tuple[str, ...], sentences: Mapping[str, Mapping[str, str]]) -> EvalSet:
    """Bitext retrieval, shared by the line-parallel sources (FLORES, NTREX).

    Every sentence is both a query and a passage under the SAME id
    (``sw:1523``); its relevant set is its translations in the OTHER chosen
    languages. The set is marked ``bitext``, so the evaluator never retrieves
    the passage whose id equals the query id. ``sentences`` maps language -> item key ->
    text with the same keys in every language; the key is the group.
    """
    if len(codes) < 2:
        raise DataError(f"{spec.dataset}: bitext retrieval needs at least two languages, got {', '.join(codes)}")
    keys = list(sentences[codes[0]])
    queries, passages, groups = [], [], {}
    qrels: dict[str, dict[str, int]] = {}
    for lang in codes:
        for key in keys:
            item_id = f"{lang}:{key}"
            queries.append(Query(item_id, sentences[lang][key], lang))
            passages.append(Passage(item_id, sentences[lang][key], lang))
            qrels[item_id] = {f"{other}:{key}": 1 for other in codes if other != lang}
            groups[item_id] = key
    return build_eval_set(spec.label, queries, passages, qrels, groups, spec.max_queries, bitext=True)


def subset_queries(queries: Sequence[Query], groups: Mapping[str, str], max_queries: int) -> list[Query]:
    """The queries of the first ``max_queries`` groups in SHA-256 order, in their original order."""
    keys = {groups.get(q.id, q.id) for q in queries}
    chosen = set(sorted(keys, key=lambda key: (hashlib.sha256(key.encode("utf-8")).hexdigest(), key))[:max_queries])
    return [q for q in queries if groups.get(q.id, q.id) in chosen]


def _check_unique(name: str, kind: str, ids: Sequence[str]) -> None:
    duplicates = [i for i, count in Counter(ids).items() if count > 1]
    if duplicates:
        raise DataError(f"{name}: {kind} id {duplicates[0]!r} appears {ids.count(duplicates[0])} times; ids must be unique")

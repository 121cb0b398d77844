"""Evaluate an encoder on an EvalSet: encode once, search the FULL corpus with FAISS, score.

Settings (arXiv 2408.10536):

* ``mono``: the queries of language X against the passages of X only.
* ``cross``: the queries of X against the passages of Y only, for each X != Y.
* ``multi``: every query against one pool of all languages' passages. The
  language-bias measures ``LangBias`` and ``MeanRank`` (see
  :mod:`engine.metrics`) come from this setting.

In mono and cross the judgements are restricted to the searched language. A
cell (X, Y) is scored over the X queries that have a relevant passage in Y,
and it is skipped (no row, never a NaN) when there are none. The ``all`` row of
a setting is the micro average: every judged (query, cell) pair counts once.

The whole corpus is always searched, never only the judged passages. Bitext
sets (FLORES, NTREX) give a sentence the same id as query and as passage, so
a query never retrieves the passage that has its own id, and judgements of it
are dropped. ``top_k`` is the ranking depth for the IR measures; AP is
computed over that depth too, so use top_k=1000 for MAP on LAReQA-style sets,
where every query has a relevant answer in each language. Passages are
encoded once per call, or once per model and corpus with an
:class:`EmbeddingCache`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

import faiss
import numpy as np

from engine.metrics import best_rank_per_language, compute_per_query, exact_ranks, parse_measure, rank_distance
from engine.state import Progress, RunState, Slice, TaskState, check_cancelled
from engine.trec import write_qrels, write_run
from vocabulary.records import ALL, DEFAULT_MEASURES, SETTINGS, EvalSet, MetricRow, Passage, Query

log = logging.getLogger(__name__)

INDEX_KINDS: tuple[str, ...] = ("flat", "hnsw", "ivf")
#: Largest (queries x passages) float32 score block held at once for exact ranks: 64 MiB.
_SCORE_BLOCK_BYTES = 64 * 2**20
#: Queries checked by approximate_recall when evaluate uses an approximate index.
_RECALL_SAMPLE = 200

_PLURAL = {"query": "queries", "passage": "passages"}
#: Share of an evaluation's progress bar given to the searches (the rest is encoding, by text count).
_SEARCH_SHARE = 0.1


class Encoder(Protocol):
    """What the evaluator needs of :class:`engine.model.Encoder`: L2-normalised float32 vectors."""

    def encode(
        self, texts: Sequence[str], kind: str, batch_size: int = ..., progress: Callable[[int, int], None] | None = ...
    ) -> np.ndarray: ...


class EvalSetError(ValueError):
    """An eval set cannot be evaluated as given (no queries, no judgements, duplicate ids)."""


# ---- encoding and the passage cache -----------------------------------------


def passage_text(passage: Passage) -> str:
    """The text a passage is encoded from: its title, when it has one, then its text."""
    return f"{passage.title} {passage.text}" if passage.title else passage.text


def encode_texts(
    encoder: Encoder, texts: Sequence[str], kind: str, batch_size: int, state: RunState | None = None
) -> np.ndarray:
    """float32 vectors in input order; after each batch the state hears the share done and may cancel."""
    state = state or TaskState()
    phase = f"encoding {_PLURAL[kind]}"

    def after_batch(done: int, total: int) -> None:
        state.report(Progress(phase, done / max(total, 1)))
        check_cancelled(state, phase)

    vectors = encoder.encode(list(texts), kind, batch_size=batch_size, progress=after_batch)
    return np.ascontiguousarray(vectors, dtype=np.float32)


#: Probe texts whose embeddings identify a model: the long one (over 512 tokens)
#: makes the truncation length part of the identity, the prefixes enter through ``kind``.
_PROBE_TEXTS = ("hybridscale cache probe: Habari ya asubuhi. Ẹ káàárọ̀.", "Mvua ilinyesha usiku kucha. " * 120)


def model_identity(encoder: Encoder) -> str:
    """A digest of the encoder's outputs on fixed probe texts.

    It changes whenever the weights, pooling, prefixes or truncation change, so
    a cached embedding is never served for a model it did not come from, even
    after training in place, and it needs nothing from the encoder but ``encode``.
    """
    digest = hashlib.sha256()
    for kind in ("query", "passage"):
        vectors = np.asarray(encoder.encode(list(_PROBE_TEXTS), kind, batch_size=2), dtype=np.float32)
        digest.update(np.round(vectors, 4).tobytes())
    return digest.hexdigest()[:24]


def corpus_fingerprint(passages: Sequence[Passage]) -> str:
    digest = hashlib.sha256()
    for p in passages:
        digest.update(f"{p.id}\0{p.language}\0{passage_text(p)}\n".encode("utf-8"))
    return digest.hexdigest()[:24]


class EmbeddingCache:
    """Passage embeddings per (model identity, corpus fingerprint), in memory and optionally on disk.

    Several eval sets, settings and query sets over one corpus then encode it
    once per model. With a ``directory``, embeddings are also kept there as
    ``.npy`` files, so a later process with the same model reuses them.
    """

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory is not None else None
        self._memory: dict[str, np.ndarray] = {}

    def passage_embeddings(
        self, encoder: Encoder, passages: Sequence[Passage], batch_size: int, state: RunState | None = None
    ) -> np.ndarray:
        key = f"{model_identity(encoder)}-{corpus_fingerprint(passages)}"
        if key in self._memory:
            return self._memory[key]
        path = self.directory / f"{key}.npy" if self.directory else None
        if path is not None and path.is_file():
            embeddings = np.load(path)
        else:
            embeddings = encode_texts(encoder, [passage_text(p) for p in passages], "passage", batch_size, state)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".partial.npy")
                np.save(partial, embeddings)
                partial.replace(path)
        self._memory[key] = embeddings
        return embeddings


# ---- FAISS search -------------------------------------------------------------


def build_index(embeddings: np.ndarray, kind: str = "flat") -> faiss.Index:
    """Exact inner product (``flat``), or HNSW (M=32, efSearch=128) or IVF (about 4*sqrt(N) lists, nprobe=16)."""
    dim = embeddings.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
    elif kind == "ivf":
        lists = max(1, min(int(4 * len(embeddings) ** 0.5), len(embeddings) // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(embeddings)
        index.nprobe = min(16, lists)
    else:
        raise ValueError(f"unknown index {kind!r}: use one of {', '.join(INDEX_KINDS)}")
    index.add(embeddings)
    return index


def search(
    index: faiss.Index, queries: np.ndarray, query_ids: Sequence[str], passage_ids: Sequence[str], k: int
) -> dict[str, dict[str, float]]:
    """Top-k passages per query, never the passage whose id is the query's own (bitext self-match)."""
    depth = min(k + 1, index.ntotal)
    scores, hits = index.search(queries, depth)
    run: dict[str, dict[str, float]] = {}
    for qid, row_scores, row_hits in zip(query_ids, scores, hits):
        ranking: dict[str, float] = {}
        for score, hit in zip(row_scores, row_hits):
            if len(ranking) == k:
                break
            if hit >= 0 and passage_ids[hit] != qid:
                ranking[passage_ids[hit]] = float(score)
        run[qid] = ranking
    return run


def approximate_recall(queries: np.ndarray, passages: np.ndarray, kind: str, k: int) -> float:
    """Mean share of the exact top-k that the ``kind`` index finds (1.0 for ``flat``)."""
    k = min(k, len(passages))
    _, exact = build_index(passages, "flat").search(queries, k)
    _, approx = build_index(passages, kind).search(queries, k)
    found = [len(set(e.tolist()) & set(a.tolist())) / k for e, a in zip(exact, approx)]
    return float(np.mean(found))


# ---- evaluation ---------------------------------------------------------------


@dataclass(frozen=True)
class _Pool:
    """The passages one search runs over: their ids and embeddings."""

    ids: list[str]
    embeddings: np.ndarray

    def subset(self, keep: np.ndarray) -> "_Pool":
        return _Pool([pid for pid, kept in zip(self.ids, keep) if kept], self.embeddings[keep])


class _Scores:
    """Per-query values of each (setting, query language, passage language, metric) cell."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)

    def add(self, setting: str, x: str, y: str, metric: str, values: list[float], all_y: str = ALL) -> None:
        """Add to the cell (x, y) and to the setting's all row (all, ``all_y``)."""
        self.cells[(setting, x, y, metric)] += values
        self.cells[(setting, ALL, all_y, metric)] += values

    def rows(self, label: str) -> list[MetricRow]:
        """Settings in order, languages sorted with 'all' last, metrics in the order they were added."""

        def order(key: tuple[str, str, str, str]) -> tuple:
            setting, x, y, _metric = key
            return (SETTINGS.index(setting), x == ALL, x, y == ALL, y)

        return [
            MetricRow(label, setting, x, y, metric, float(np.mean(values)), len(values))
            for (setting, x, y, metric), values in sorted(self.cells.items(), key=lambda kv: order(kv[0]))
        ]


def evaluate(
    encoder: Encoder,
    eval_set: EvalSet,
    label: str,
    *,
    measures: Sequence[str] = DEFAULT_MEASURES,
    top_k: int = 100,
    batch_size: int = 64,
    settings: Sequence[str] = SETTINGS,
    cache: EmbeddingCache | None = None,
    run_dir: Path | None = None,
    state: RunState | None = None,
    index: str = "flat",
) -> list[MetricRow]:
    """Score ``encoder`` on ``eval_set`` in each setting; one row per cell and metric, plus ``all`` rows.

    The state hears the progress after each encoder batch and before each
    search, and may cancel there (:class:`engine.state.Cancelled`).
    ``index`` picks exact search (``flat``) or an approximate one, whose
    recall@top_k against exact search is logged.
    """
    state = state or TaskState()
    names = _check_arguments(label, measures, top_k, settings, index)
    judged = _judgements(eval_set, label)
    queries = [q for q in eval_set.queries if q.id in judged]
    query_vectors, passage_vectors = _encode(encoder, queries, eval_set.passages, batch_size, cache, state)
    corpus = _Pool([p.id for p in eval_set.passages], passage_vectors)
    scorer = _CellScorer(names, judged, {q.id: q.language for q in eval_set.queries}, run_dir)
    query_row = {q.id: i for i, q in enumerate(queries)}
    languages = np.array([p.language for p in eval_set.passages])
    searches = _plan(settings, eval_set.passage_languages, judged, scorer.query_language)
    searching = Slice(state, 1.0 - _SEARCH_SHARE, _SEARCH_SHARE)
    for done, (y, qids) in enumerate(searches):
        searching.report(Progress("searching", done / len(searches)))
        check_cancelled(state, f"searching {label}")
        pool = corpus.subset(np.ones(len(corpus.ids), dtype=bool) if y == ALL else languages == y)
        vectors = query_vectors[[query_row[q] for q in qids]]
        run = search(build_index(pool.embeddings, index), vectors, qids, pool.ids, top_k)
        if index != "flat":
            recall = approximate_recall(vectors[:_RECALL_SAMPLE], pool.embeddings, index, top_k)
            log.info("%s, passages %s: %s index recall@%d vs exact search = %.4f", label, y, index, top_k, recall)
        scorer.score(y, qids, run)
        if y == ALL:
            _add_bias(scorer.scores, pool, vectors, qids, judged, scorer.query_language)
    searching.report(Progress("searching", 1.0))
    return scorer.scores.rows(label)


def _encode(
    encoder: Encoder, queries: Sequence[Query], passages: Sequence[Passage], batch_size: int,
    cache: EmbeddingCache | None, state: RunState,
) -> tuple[np.ndarray, np.ndarray]:
    """Query and passage vectors; the encoding share of the progress bar is split by text count."""
    encoding = 1.0 - _SEARCH_SHARE
    query_share = encoding * len(queries) / max(len(queries) + len(passages), 1)
    query_vectors = encode_texts(encoder, [q.text for q in queries], "query", batch_size,
                                 Slice(state, 0.0, query_share))
    on_passages = Slice(state, query_share, encoding - query_share)
    if cache is None:
        passage_vectors = encode_texts(encoder, [passage_text(p) for p in passages], "passage", batch_size,
                                       on_passages)
    else:
        passage_vectors = cache.passage_embeddings(encoder, passages, batch_size, on_passages)
    return query_vectors, passage_vectors


class _CellScorer:
    """Scores one search's ranking in every (query language, passage language) cell it covers."""

    def __init__(self, measures: list[str], judged: Mapping[str, Mapping[str, Mapping[str, int]]],
                 query_language: Mapping[str, str], run_dir: Path | None):
        self.measures = measures
        self.judged = judged
        self.query_language = query_language
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.scores = _Scores()

    def score(self, y: str, qids: Sequence[str], run: Mapping[str, Mapping[str, float]]) -> None:
        for x, cell_qids in _by_language(qids, self.query_language).items():
            setting = _setting(x, y)
            cell_qrels = {q: _restrict(self.judged[q], y) for q in cell_qids}
            cell_run = {q: run[q] for q in cell_qids}
            per_query = compute_per_query(cell_qrels, cell_run, self.measures)
            for name in self.measures:
                self.scores.add(setting, x, y, name, [per_query[q][name] for q in cell_qids])
            if self.run_dir is not None:
                _write_cell(self.run_dir, setting, x, y, cell_qrels, cell_run)


def _by_language(qids: Sequence[str], query_language: Mapping[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for qid in qids:
        groups[query_language[qid]].append(qid)
    return dict(sorted(groups.items()))


def _check_arguments(
    label: str, measures: Sequence[str], top_k: int, settings: Sequence[str], index: str
) -> list[str]:
    """Validate the options; return the measures' canonical names."""
    if top_k < 1:
        raise ValueError(f"{label}: top_k must be at least 1")
    for setting in settings:
        if setting not in SETTINGS:
            raise ValueError(f"{label}: unknown setting {setting!r}; use one of {', '.join(SETTINGS)}")
    if index not in INDEX_KINDS:
        raise ValueError(f"{label}: unknown index {index!r}; use one of {', '.join(INDEX_KINDS)}")
    parsed = [parse_measure(name) for name in measures]
    for measure in parsed:
        if measure.cutoff is not None and measure.cutoff > top_k:
            raise ValueError(
                f"{label}: {measure.name} needs a ranking of depth {measure.cutoff}, but top_k is {top_k}; raise top_k"
            )
    return [measure.name for measure in parsed]


def _judgements(eval_set: EvalSet, label: str) -> dict[str, dict[str, dict[str, int]]]:
    """Query id -> passage language -> passage id -> relevance, for queries with a relevant passage.

    Judgements of the query's own id (bitext self-match) are dropped, and so
    are judgements of passages missing from the corpus (logged): nothing can
    retrieve them.
    """
    if not eval_set.queries:
        raise EvalSetError(f"{label}: the eval set has no queries; check its languages and max_queries")
    for kind, ids in (("query", [q.id for q in eval_set.queries]), ("passage", [p.id for p in eval_set.passages])):
        duplicates = [i for i, n in Counter(ids).items() if n > 1]
        if duplicates:
            raise EvalSetError(f"{label}: {kind} id {duplicates[0]!r} appears more than once; ids must be unique")
    passage_language = {p.id: p.language for p in eval_set.passages}
    judged: dict[str, dict[str, dict[str, int]]] = {}
    missing = 0
    for query in eval_set.queries:
        by_language: dict[str, dict[str, int]] = defaultdict(dict)
        for pid, relevance in eval_set.qrels.get(query.id, {}).items():
            if pid == query.id:
                continue
            if pid not in passage_language:
                missing += 1
                continue
            by_language[passage_language[pid]][pid] = relevance
        if any(rel > 0 for judgements in by_language.values() for rel in judgements.values()):
            judged[query.id] = dict(by_language)
    if missing:
        log.warning("%s: %d judgements name passages that are not in the corpus; they are ignored", label, missing)
    if not judged:
        raise EvalSetError(
            f"{label}: no query has a relevant passage (relevance > 0) in the corpus; check the loader's qrels and passages"
        )
    return judged


def _setting(query_language: str, pool: str) -> str:
    if pool == ALL:
        return "multi"
    return "mono" if query_language == pool else "cross"


def _plan(
    settings: Sequence[str],
    passage_languages: Sequence[str],
    judged: Mapping[str, Mapping[str, Mapping[str, int]]],
    query_language: Mapping[str, str],
) -> list[tuple[str, list[str]]]:
    """The searches to run: (passage language, or 'all' for the pool; the judged query ids).

    Mono and cross share one index per passage language, searched once with
    every query judged against that language (its own-language queries for
    mono, the others for cross).
    """
    plan = []
    for y in passage_languages:
        qids = [
            q for q, by_language in judged.items()
            if _setting(query_language[q], y) in settings and any(r > 0 for r in by_language.get(y, {}).values())
        ]
        if qids:
            plan.append((y, qids))
    if "multi" in settings:
        plan.append((ALL, list(judged)))
    return plan


def _restrict(judgements: Mapping[str, Mapping[str, int]], language: str) -> dict[str, int]:
    if language == ALL:
        return {pid: rel for by_id in judgements.values() for pid, rel in by_id.items()}
    return dict(judgements.get(language, {}))


def _write_cell(run_dir: Path, setting: str, x: str, y: str, qrels: Mapping, run: Mapping) -> None:
    """``<setting>.<X>-<Y>.run`` and its judgements, so ``hybridscale metrics`` reproduces the row."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run(run_dir / f"{setting}.{x}-{y}.run", run, f"hybridscale-{setting}")
    write_qrels(run_dir / f"{setting}.{x}-{y}.qrels", qrels)


def _add_bias(
    scores: _Scores,
    pool: _Pool,
    query_vectors: np.ndarray,
    qids: Sequence[str],
    judged: Mapping[str, Mapping[str, Mapping[str, int]]],
    query_language: Mapping[str, str],
) -> None:
    """LangBias and MeanRank from exact full-pool ranks (relevant passages beyond top_k included)."""
    position = {pid: i for i, pid in enumerate(pool.ids)}
    id_order = np.argsort(np.argsort(np.array(pool.ids)))
    rows_per_block = max(1, _SCORE_BLOCK_BYTES // (4 * len(pool.ids)))
    for start in range(0, len(qids), rows_per_block):
        block = qids[start : start + rows_per_block]
        block_scores = query_vectors[start : start + len(block)] @ pool.embeddings.T
        for qid, row in zip(block, block_scores):
            if qid in position:
                row[position[qid]] = -np.inf
            relevant = [(pid, lang) for lang, by_id in judged[qid].items() for pid, rel in by_id.items() if rel > 0]
            ranks = exact_ranks(row, id_order, np.array([position[pid] for pid, _ in relevant]))
            best = best_rank_per_language(ranks.tolist(), [lang for _, lang in relevant])
            x = query_language[qid]
            for y, rank in best.items():
                scores.add("multi", x, y, "MeanRank", [rank], all_y=y)
            distance = rank_distance(best)
            if distance is not None:
                scores.add("multi", x, ALL, "LangBias", [distance])

"""Evaluate an encoder on an EvalSet: encode once, rank the FULL corpus, score.

Settings (arXiv 2408.10536):

* ``mono``: the queries of language X against the passages of X only.
* ``cross``: the queries of X against the passages of Y only, for each X != Y.
* ``multi``: every query against one pool of all languages' passages. The
  language-bias measures ``LangBias`` and ``MeanRank`` (see
  :mod:`engine.metrics`) come from this setting.

Cells. In mono and cross the judgements are restricted to the searched
language. A cell (X, Y) holds the X queries with a judgement of a Y passage;
one judged with nothing relevant scores 0 there, as in trec_eval. A cell
without such queries is skipped (no row, never a NaN). A judged passage that
the corpus lacks stays judged: a relevant one counts as relevant and never
retrieved, and the result carries a warning with the count. It belongs to
the language the eval set's ``absent_languages`` gives, else to the query's
own (MIRACL, whose corpus can be partial, is monolingual).

Averages. The ``all`` row of a metric is the macro average, the mean of the
setting's cells: over language pairs in mono and cross, over query languages
in the pool, as the paper averages. ``<metric> (micro)`` is the micro
average, over every (query, cell) pair.

Ranking. The whole corpus is always searched, never only the judged
passages. Each query's scores against every passage of the searched pool
are computed in blocks; its top ``top_k`` in trec_eval's order (score
descending, then id descending) is the run that the measures with a cutoff
are computed from (by pytrec_eval), and the exact rank of each relevant
passage gives the full-depth measures (``AP``, ``RR``, ``nDCG``) and the bias
measures. An approximate index (``hnsw``, ``ivf``) gives the top ``top_k``
instead, and its recall against exact search is logged; the full-depth and
bias measures stay exact. Bitext sets (FLORES, NTREX) give a sentence the
same id as query and as passage, so a query never retrieves the passage that
has its own id, and judgements of it are dropped (only there: the eval set
says it is ``bitext``; MIRACL yo query ids coincide with passage ids).

Lexical pools. :func:`evaluate_lexical` takes a pool that scores query
texts itself (BM25, :mod:`engine.bm25`) through the same searches, cells,
measures, run files and per-query values, so BM25 and a dense model are
scored by identical code.

Encoding. Queries get the ``query`` prefix and the encoder's own length;
passages the ``passage`` prefix and ``passage_max_length`` tokens (512 by
default, not the training length). A ``symmetric`` set (bitext) encodes both
sides as queries at ``passage_max_length``, as the multilingual-e5 card asks
for bitext mining. Passages are encoded once per call, or once per model,
encoding and corpus with an :class:`EmbeddingCache`.

Files. With a ``run_dir``, each searched pool gets its judgements
(``qrels.<Y>.txt``, ``qrels.all.txt`` for the multilingual pool) and each cell
its top ``top_k`` (``<setting>.<X>-<Y>.run.gz``), so ``hybridscale metrics
--qrels qrels.<Y>.txt --run <setting>.<X>-<Y>.run.gz`` reproduces the cell's
measures with a cutoff. The full-depth ones need ranks below ``top_k``, which
the file does not hold; the per-query values of every measure are in
:attr:`Evaluation.per_query`. ``texts.jsonl.gz`` holds the text of every
query and of each passage that is relevant or in some cell's top 5, so the
app can show a query beside what each model found without the eval set.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

import faiss
import numpy as np

from engine.checked_files import matches_checksum, save_matrix, write_atomically
from engine.finite import require_finite
from engine.metrics import (
    Measure,
    best_rank_per_language,
    compute_per_query,
    exact_ranks,
    full_depth_values,
    mean,
    parse_measure,
    rank_distance,
    trec_order,
)
from engine.state import Progress, RunState, Slice, TaskState, check_cancelled
from engine.trec import write_qrels, write_run
from vocabulary.eval_specs import INDEX_KINDS, VECTOR_TYPES
from vocabulary.records import (
    ALL,
    DEFAULT_MEASURES,
    SETTINGS,
    EvalSet,
    MetricRow,
    Passage,
    Query,
    QueryValues,
    micro_name,
)
from vocabulary.run_files import SHOWN_DEPTH, TEXTS_FILE

log = logging.getLogger(__name__)

#: Passages tokenised and encoded at once (their vectors are kept, their tokens dropped).
PASSAGE_SHARD = 8192
#: Largest (queries x passages) float32 score block held at once: 64 MiB.
_SCORE_BLOCK_BYTES = 64 * 2**20
#: float16 passage vectors made float32 at once when scored (numpy has no fast float16 product).
_WIDENED_ROWS = 16384
#: Queries checked by approximate_recall when evaluate uses an approximate index.
_RECALL_SAMPLE = 200

_PLURAL = {"query": "queries", "passage": "passages"}
#: Share of an evaluation's progress bar given to the searches (the rest is encoding, by text count).
_SEARCH_SHARE = 0.1
#: Judgements: query id -> passage language -> passage id -> relevance.
Judgements = Mapping[str, Mapping[str, Mapping[str, int]]]


class Encoder(Protocol):
    """What the evaluator needs of :class:`engine.model.Encoder`: L2-normalised float32 vectors."""

    def encode(
        self, texts: Sequence[str], kind: str, batch_size: int = ...,
        progress: Callable[[int, int], None] | None = ..., max_length: int | None = ...,
    ) -> np.ndarray: ...


class EvalSetError(ValueError):
    """An eval set cannot be evaluated as given (no queries, no judgements, duplicate ids)."""


@dataclass
class Evaluation:
    """What evaluating produces: aggregate rows, the per-query values behind every cell, and warnings."""

    rows: list[MetricRow] = field(default_factory=list)
    per_query: list[QueryValues] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: "Evaluation") -> None:
        self.rows += other.rows
        self.per_query += other.per_query
        self.warnings += other.warnings


@dataclass(frozen=True)
class TextEncoding:
    """How an eval set's texts are encoded (see the module docstring)."""

    passage_max_length: int | None = None
    symmetric: bool = False

    @property
    def passage_kind(self) -> str:
        return "query" if self.symmetric else "passage"

    @property
    def query_max_length(self) -> int | None:
        return self.passage_max_length if self.symmetric else None


# ---- encoding and the passage cache -----------------------------------------


def passage_text(passage: Passage) -> str:
    """The text a passage is encoded from: its title, when it has one, then its text."""
    return f"{passage.title} {passage.text}" if passage.title else passage.text


class PassageTexts(Sequence[str]):
    """The passages' :func:`passage_text`, made when read: with a stored corpus (:mod:`engine.data.corpus`)
    a large corpus's texts are never all in memory (the BM25 index reads each once, in order)."""

    def __init__(self, passages: Sequence[Passage]):
        self._passages = passages

    def __len__(self) -> int:
        return len(self._passages)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [passage_text(p) for p in self._passages[index]]
        return passage_text(self._passages[index])


def encode_texts(
    encoder: Encoder, texts: Sequence[str], kind: str, batch_size: int, state: RunState | None = None,
    max_length: int | None = None, phase: str | None = None, items_before: int = 0,
) -> np.ndarray:
    """float32 vectors in input order; after each batch the state hears the share done and may cancel.

    ``phase`` names the work in progress reports (default ``encoding queries`` / ``encoding passages`` by ``kind``);
    ``items_before`` counts the texts of this phase encoded before these (earlier shards), so a phase's
    ``items`` keep growing across shards.
    """
    state = state or TaskState()
    phase = phase or f"encoding {_PLURAL[kind]}"

    def after_batch(done: int, total: int) -> None:
        state.report(Progress(phase, done / max(total, 1), items=items_before + done))
        check_cancelled(state, phase)

    if items_before == 0:
        state.report(Progress(phase, 0.0, items=0))  # the phase starts now, not when its first batch is done
    vectors = encoder.encode(list(texts), kind, batch_size=batch_size, progress=after_batch, max_length=max_length)
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
    """Passage embeddings per (model identity, encoding, vector type, corpus fingerprint), in memory and
    optionally on disk.

    Several eval sets, settings and query sets over one corpus then encode it
    once per model and encoding (prefix kind and token length). With a
    ``directory``, embeddings are also kept there as ``.npy`` files, so a
    later process with the same model reuses them. Each file has a ``.json``
    beside it with its shape, dtype and the XXH3 checksum of its bytes
    (:mod:`engine.checked_files`, as the frozen-prefix cache): a file that is
    damaged, cut short or without its checksum file is never used, but
    encoded again (with a warning).
    """

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory is not None else None
        self._memory: dict[str, np.ndarray] = {}

    def passage_embeddings(
        self, encoder: Encoder, passages: Sequence[Passage], batch_size: int, state: RunState | None = None,
        encoding: TextEncoding = TextEncoding(), vectors: str = "float32",
    ) -> np.ndarray:
        key = (f"{model_identity(encoder)}-{encoding.passage_kind}{encoding.passage_max_length or ''}-"
               f"{'' if vectors == 'float32' else vectors + '-'}{corpus_fingerprint(passages)}")
        if key in self._memory:
            return self._memory[key]
        path = self.directory / f"{key}.npy" if self.directory else None
        embeddings = _read_checked(path) if path is not None and path.is_file() else None
        if embeddings is None:
            embeddings = encode_passages(encoder, passages, batch_size, state, encoding, vectors)
            if path is not None:
                _write_checked(path, embeddings)
        self._memory[key] = embeddings
        return embeddings


def _write_checked(path: Path, embeddings: np.ndarray) -> None:
    """``path`` (``.npy``) and, beside it, its shape, dtype and checksum (:mod:`engine.checked_files`), each
    under its name only when whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    checksum = write_atomically(path, lambda partial: save_matrix(partial, embeddings))
    expected = {"shape": list(embeddings.shape), "dtype": embeddings.dtype.name, "xxh3": checksum}
    write_atomically(path.with_suffix(".json"), lambda partial: partial.write_text(json.dumps(expected)))


def _read_checked(path: Path) -> np.ndarray | None:
    """The cached embeddings at ``path``, or None (with a warning) when they fail their checksum file."""
    try:
        expected = json.loads(path.with_suffix(".json").read_text())
        if matches_checksum(path, expected["xxh3"]):
            embeddings = np.load(path, allow_pickle=False)
            if list(embeddings.shape) == expected["shape"] and embeddings.dtype.name == expected["dtype"]:
                return embeddings
        problem = "it does not match its checksum"
    except (OSError, ValueError, KeyError, TypeError) as exc:  # missing, unreadable, cut short, not JSON
        problem = f"it cannot be read ({type(exc).__name__}: {exc})"
    log.warning("cached embeddings %s are not used: %s; encoding the passages again", path, problem)
    return None


def encode_passages(
    encoder: Encoder, passages: Sequence[Passage], batch_size: int, state: RunState | None, encoding: TextEncoding,
    vectors: str = "float32",
) -> np.ndarray:
    """Vectors of the passages (float32, or float16 when ``vectors`` says so), encoded :data:`PASSAGE_SHARD`
    at a time.

    The encoder tokenises all it is given before its first batch, which for a
    large corpus costs far more memory than the vectors themselves; so it is
    given a shard at a time, and the peak grows with the vectors (plus the
    token ids the encoder's memo keeps, bounded in bytes: engine.memo). A
    corpus of one shard is encoded exactly as before.
    """
    state = state or TaskState()
    stored: np.ndarray | None = None
    for start in range(0, len(passages), PASSAGE_SHARD):
        shard = passages[start : start + PASSAGE_SHARD]
        share = Slice(state, start / len(passages), len(shard) / len(passages))
        encoded = encode_texts(encoder, [passage_text(p) for p in shard], encoding.passage_kind, batch_size, share,
                               max_length=encoding.passage_max_length, phase="encoding passages", items_before=start)
        if stored is None:
            stored = np.empty((len(passages), encoded.shape[1]), dtype=np.dtype(vectors))
        stored[start : start + len(shard)] = encoded
    if stored is None:
        return encode_texts(encoder, [], encoding.passage_kind, batch_size, state).astype(np.dtype(vectors))
    return stored


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
    index: faiss.Index, queries: np.ndarray, query_ids: Sequence[str], passage_ids: Sequence[str], k: int,
    bitext: bool = False,
) -> dict[str, dict[str, float]]:
    """Top-k passages per query; in a ``bitext`` set never the passage whose id is the query's own."""
    depth = min(k + 1, index.ntotal)
    scores, hits = index.search(queries, depth)
    run: dict[str, dict[str, float]] = {}
    for qid, row_scores, row_hits in zip(query_ids, scores, hits):
        ranking: dict[str, float] = {}
        for score, hit in zip(row_scores, row_hits):
            if len(ranking) == k:
                break
            if hit >= 0 and not (bitext and passage_ids[hit] == qid):
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


class Pool(Protocol):
    """What one search runs over: passage ids, the part of them in one language, every passage's score per query.

    A dense pool scores by inner product (:class:`_Pool`); BM25
    (:class:`engine.bm25.BM25Pool`) indexes each subset anew, so its document
    frequencies and lengths are those of the passages searched. A score of
    -inf means the passage is not retrieved (it still gets a rank, after every
    retrieved passage, for the full-depth and bias measures).
    """

    ids: list[str]

    def subset(self, keep: np.ndarray) -> "Pool": ...

    def scores(self, queries: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class _Pool:
    """The passages one dense search runs over: their ids and embeddings (float32, or float16 to halve them)."""

    ids: list[str]
    embeddings: np.ndarray

    def subset(self, keep: np.ndarray) -> "_Pool":
        if keep.all():  # a one-language corpus, or the multilingual pool: no copy of the vectors
            return self
        return _Pool([pid for pid, kept in zip(self.ids, keep) if kept], self.embeddings[keep])

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """(queries x passages) float32 inner products of L2-normalised vectors: cosine similarity.

        float16 vectors are widened :data:`_WIDENED_ROWS` at a time, so the
        products are float32 sums of the float16 values and no float32 copy
        of the corpus is made.
        """
        if self.embeddings.dtype == np.float32:
            return queries @ self.embeddings.T
        block = np.empty((len(queries), len(self.embeddings)), dtype=np.float32)
        for start in range(0, len(self.embeddings), _WIDENED_ROWS):
            part = self.embeddings[start : start + _WIDENED_ROWS].astype(np.float32)
            block[:, start : start + len(part)] = queries @ part.T
        return block


@dataclass
class _Ranked:
    """One search: each query's top ``top_k`` (id -> score) and the exact rank of its relevant passages."""

    run: dict[str, dict[str, float]] = field(default_factory=dict)
    ranks: dict[str, dict[str, int]] = field(default_factory=dict)


class _Scores:
    """Per-query values of each (setting, query language, passage language, metric) cell."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, str, str], tuple[list[str], list[float]]] = {}
        self.all_of: dict[tuple[str, str, str, str], str] = {}

    def add(self, setting: str, x: str, y: str, metric: str, query_ids: Sequence[str], values: Sequence[float],
            all_y: str = ALL) -> None:
        """Add to the cell (x, y); its setting's ``all`` rows average it under passage language ``all_y``."""
        key = (setting, x, y, metric)
        cell_ids, cell_values = self.cells.setdefault(key, ([], []))
        cell_ids.extend(query_ids)
        cell_values.extend(float(v) for v in values)
        self.all_of[key] = all_y

    def rows(self, label: str) -> list[MetricRow]:
        """Cells, then per setting the macro and micro ``all`` rows; languages sorted, metrics as added."""
        rows = []
        groups: dict[tuple[str, str, str], list[tuple[list[str], list[float]]]] = defaultdict(list)
        for (setting, x, y, metric), (ids, values) in self.cells.items():
            rows.append(MetricRow(label, setting, x, y, metric, mean(values), len(values)))
            groups[(setting, self.all_of[(setting, x, y, metric)], metric)].append((ids, values))
        for (setting, y, metric), cells in groups.items():
            count = sum(len(values) for _, values in cells)
            rows.append(MetricRow(label, setting, ALL, y, metric, mean([mean(v) for _, v in cells]), count))
            rows.append(MetricRow(label, setting, ALL, y, micro_name(metric),
                                  mean([value for _, values in cells for value in values]), count))
        order = {name: i for i, name in enumerate(dict.fromkeys(row.metric for row in rows))}
        return sorted(rows, key=lambda r: (SETTINGS.index(r.setting), r.query_language == ALL, r.query_language,
                                           r.passage_language == ALL, r.passage_language, order[r.metric]))

    def per_query(self, label: str) -> list[QueryValues]:
        return [QueryValues(label, setting, x, y, metric, tuple(ids), tuple(values))
                for (setting, x, y, metric), (ids, values) in self.cells.items()]


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
    passage_max_length: int | None = None,
    symmetric: bool = False,
    vectors: str = "float32",
) -> Evaluation:
    """Score ``encoder`` on ``eval_set`` in each setting: a row per cell and metric, the ``all`` rows,
    the per-query values of each cell, and warnings (a corpus missing relevant passages).

    The state hears the progress after each encoder batch and before each
    search, and may cancel there (:class:`engine.state.Cancelled`).
    ``index`` picks exact search (``flat``) or an approximate one, whose
    recall@top_k against exact search is logged. ``passage_max_length`` and
    ``symmetric`` choose the encoding (module docstring; None keeps the
    encoder's own length). ``vectors`` ``float16`` keeps the passage vectors
    in half the memory, for exact search only; a score then differs from
    the float32 one by at most 2**-11 (each unit-vector component is
    rounded to 11 significant bits), which can swap near ties.
    """
    state = state or TaskState()
    parsed = _check_arguments(label, measures, top_k, settings, index, vectors)
    judged, warnings = _judgements(eval_set, label)
    encoding = TextEncoding(passage_max_length, symmetric)
    queries = [q for q in eval_set.queries if q.id in judged]
    query_vectors, passage_vectors = _encode(encoder, queries, eval_set.passages, batch_size, cache, state, encoding,
                                             vectors)
    where = f"{getattr(encoder, 'spec', type(encoder).__name__)} on {label}"
    require_finite(query_vectors, "query vectors", where)
    require_finite(passage_vectors, "passage vectors", where)
    corpus = _Pool([p.id for p in eval_set.passages], passage_vectors)
    searching = Slice(state, 1.0 - _SEARCH_SHARE, _SEARCH_SHARE)
    return _search_and_score(corpus, query_vectors, queries, eval_set, label, judged, warnings, parsed, settings,
                             top_k, index, run_dir, searching)


def evaluate_lexical(
    corpus: Pool,
    eval_set: EvalSet,
    label: str,
    *,
    measures: Sequence[str] = DEFAULT_MEASURES,
    top_k: int = 100,
    settings: Sequence[str] = SETTINGS,
    run_dir: Path | None = None,
    state: RunState | None = None,
) -> Evaluation:
    """As :func:`evaluate`, for a pool that scores query texts itself (BM25), with exact search.

    ``corpus`` holds every passage of ``eval_set``, in its order; its
    ``scores`` receives an object array of query texts.
    """
    parsed = _check_arguments(label, measures, top_k, settings, "flat", "float32")
    judged, warnings = _judgements(eval_set, label)
    queries = [q for q in eval_set.queries if q.id in judged]
    texts = np.array([q.text for q in queries], dtype=object)
    return _search_and_score(corpus, texts, queries, eval_set, label, judged, warnings, parsed, settings, top_k,
                             "flat", run_dir, state or TaskState())


def _search_and_score(
    corpus: Pool, query_vectors: np.ndarray, queries: Sequence[Query], eval_set: EvalSet, label: str,
    judged: Judgements, warnings: list[str], parsed: list[Measure], settings: Sequence[str], top_k: int, index: str,
    run_dir: Path | None, searching: RunState,
) -> Evaluation:
    """Every search of the plan over ``corpus``, scored in each cell, with the run files and bias measures."""
    query_language = {q.id: q.language for q in eval_set.queries}
    scorer = _CellScorer(parsed, judged, query_language, Path(run_dir) if run_dir is not None else None)
    query_row = {q.id: i for i, q in enumerate(queries)}
    languages = np.array([p.language for p in eval_set.passages])
    searches = _plan(settings, judged, query_language)
    for done, (y, qids) in enumerate(searches):
        searching.report(Progress("searching", done / len(searches)))
        check_cancelled(searching, f"searching {label}")
        pool = corpus.subset(np.ones(len(corpus.ids), dtype=bool) if y == ALL else languages == y)
        vectors = query_vectors[[query_row[q] for q in qids]]
        relevant = {q: _relevant(judged[q], y) for q in qids}
        ranked = _rank(pool, vectors, qids, relevant, top_k, index, eval_set.bitext)
        if index != "flat" and pool.ids:
            recall = approximate_recall(vectors[:_RECALL_SAMPLE], pool.embeddings, index, top_k)
            log.info("%s, passages %s: %s index recall@%d vs exact search = %.4f", label, y, index, top_k, recall)
        scorer.score(y, qids, ranked)
        if y == ALL:
            _add_bias(scorer.scores, qids, ranked, judged, query_language)
    searching.report(Progress("searching", 1.0))
    if run_dir is not None:
        write_texts(Path(run_dir) / TEXTS_FILE, queries, eval_set.passages, judged, scorer.shown)
    return Evaluation(scorer.scores.rows(label), scorer.scores.per_query(label), warnings)


def _encode(
    encoder: Encoder, queries: Sequence[Query], passages: Sequence[Passage], batch_size: int,
    cache: EmbeddingCache | None, state: RunState, encoding: TextEncoding, vectors: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Query and passage vectors; the encoding share of the progress bar is split by text count.

    A symmetric set encodes both sides alike, so a query whose text is a
    passage's (a bitext sentence) takes that passage's vector instead of
    being encoded a second time.
    """
    reused: dict[int, int] = {}  # query position -> passage position
    if encoding.symmetric:
        row_of = {passage_text(p): i for i, p in enumerate(passages)}
        reused = {i: row_of[q.text] for i, q in enumerate(queries) if q.text in row_of}
    to_encode = [q.text for i, q in enumerate(queries) if i not in reused]
    share = 1.0 - _SEARCH_SHARE
    query_share = share * len(to_encode) / max(len(to_encode) + len(passages), 1)
    encoded = encode_texts(encoder, to_encode, "query", batch_size, Slice(state, 0.0, query_share),
                           max_length=encoding.query_max_length)
    on_passages = Slice(state, query_share, share - query_share)
    if cache is None:
        passage_vectors = encode_passages(encoder, passages, batch_size, on_passages, encoding, vectors)
    else:
        passage_vectors = cache.passage_embeddings(encoder, passages, batch_size, on_passages, encoding, vectors)
    if not reused:
        return encoded, passage_vectors
    query_vectors = np.empty((len(queries), passage_vectors.shape[1]), dtype=np.float32)
    own = [i for i in range(len(queries)) if i not in reused]
    query_vectors[own] = encoded.reshape(len(own), passage_vectors.shape[1])
    query_vectors[list(reused)] = passage_vectors[list(reused.values())]
    return query_vectors, passage_vectors


def _relevant(judgements: Mapping[str, Mapping[str, int]], pool: str) -> dict[str, str]:
    """Relevant judged passage id -> its language, among the passages of ``pool``."""
    languages = judgements if pool == ALL else {pool: judgements.get(pool, {})}
    return {pid: lang for lang, by_id in languages.items() for pid, rel in by_id.items() if rel > 0}


def _rank(pool: Pool, vectors: np.ndarray, qids: Sequence[str], relevant: Mapping[str, Mapping[str, str]],
          top_k: int, index: str, bitext: bool) -> _Ranked:
    """Score blocks of queries against the whole pool: top ``top_k`` in trec order and exact relevant ranks.

    In a bitext set a query's own id is masked (self-match). Relevant passages
    the pool lacks (missing from the corpus) get no rank.
    """
    ranked = _Ranked()
    if index != "flat" and pool.ids:
        ranked.run = search(build_index(pool.embeddings, index), vectors, qids, pool.ids, top_k, bitext)
    position = {pid: i for i, pid in enumerate(pool.ids)}
    id_order = np.argsort(np.argsort(np.array(pool.ids, dtype=str)))
    rows_per_block = max(1, _SCORE_BLOCK_BYTES // (4 * max(len(pool.ids), 1)))
    for start in range(0, len(qids), rows_per_block):
        block = qids[start : start + rows_per_block]
        block_scores = pool.scores(vectors[start : start + len(block)])
        for qid, row in zip(block, block_scores):
            if bitext and qid in position:
                row[position[qid]] = -np.inf
            if index == "flat":
                ranked.run[qid] = {pool.ids[i]: float(row[i]) for i in _top_k(row, id_order, top_k)}
            present = [pid for pid in relevant[qid] if pid in position]
            ranks = exact_ranks(row, id_order, np.array([position[pid] for pid in present], dtype=int))
            ranked.ranks[qid] = dict(zip(present, ranks.tolist()))
    return ranked


def _top_k(row: np.ndarray, id_order: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best scores in trec order (score, then id, descending), masked (-inf) ones left out."""
    n = len(row)
    if k < n:
        threshold = np.partition(row, n - k)[n - k]
        candidates = np.flatnonzero(row >= threshold)  # every tie at the threshold, so trec order decides the cut
    else:
        candidates = np.arange(n)
    candidates = candidates[np.isfinite(row[candidates])]
    order = np.lexsort((-id_order[candidates], -row[candidates]))
    return candidates[order[:k]]


class _CellScorer:
    """Scores one search in every (query language, passage language) cell it covers, and writes its files."""

    def __init__(self, measures: list[Measure], judged: Judgements, query_language: Mapping[str, str],
                 run_dir: Path | None):
        self.names = [m.name for m in measures]
        self.cutoff = [m.name for m in measures if not m.full_depth]
        self.full_depth = [m for m in measures if m.full_depth]
        self.judged = judged
        self.query_language = query_language
        self.run_dir = run_dir
        self.scores = _Scores()
        #: Passages in some query's top SHOWN_DEPTH of a written run file (their texts are written too).
        self.shown: set[str] = set()

    def score(self, y: str, qids: Sequence[str], ranked: _Ranked) -> None:
        qrels = {q: _restrict(self.judged[q], y) for q in qids}
        run = {q: ranked.run.get(q, {}) for q in qids}  # every judged query ranked (trec_eval -c)
        values = compute_per_query(qrels, run, self.cutoff) if self.cutoff else {q: {} for q in qids}
        for q in qids:
            values[q].update(full_depth_values(qrels[q], ranked.ranks[q], self.full_depth))
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_qrels(self.run_dir / f"qrels.{y}.txt", qrels)
            self.shown.update(pid for q in qids for pid, _score in trec_order(run[q])[:SHOWN_DEPTH])
        for x, cell in _by_language(qids, self.query_language).items():
            setting = _setting(x, y)
            for name in self.names:
                self.scores.add(setting, x, y, name, cell, [values[q][name] for q in cell])
            if self.run_dir is not None:
                write_run(self.run_dir / f"{setting}.{x}-{y}.run.gz", {q: run[q] for q in cell}, f"hybridscale-{setting}")


def write_texts(path: Path, queries: Sequence[Query], passages: Sequence[Passage], judged: Judgements,
                shown: set[str]) -> None:
    """One JSON line per query (``{"query": id, "language", "text"}``) and per passage that is relevant
    to one of them or in ``shown`` (``{"passage": id, "language", "text"}``, the text it was encoded from)."""
    wanted = shown | {pid for q in queries for by_id in judged[q.id].values() for pid, rel in by_id.items() if rel > 0}
    lines = [{"query": q.id, "language": q.language, "text": q.text} for q in queries]
    lines += [{"passage": p.id, "language": p.language, "text": passage_text(p)} for p in passages if p.id in wanted]
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=3) as handle:
        handle.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def _by_language(qids: Sequence[str], query_language: Mapping[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for qid in qids:
        groups[query_language[qid]].append(qid)
    return dict(sorted(groups.items()))


def _check_arguments(
    label: str, measures: Sequence[str], top_k: int, settings: Sequence[str], index: str, vectors: str
) -> list[Measure]:
    """Validate the options; return the measures, parsed."""
    if top_k < 1:
        raise ValueError(f"{label}: top_k must be at least 1")
    for setting in settings:
        if setting not in SETTINGS:
            raise ValueError(f"{label}: unknown setting {setting!r}; use one of {', '.join(SETTINGS)}")
    if index not in INDEX_KINDS:
        raise ValueError(f"{label}: unknown index {index!r}; use one of {', '.join(INDEX_KINDS)}")
    if vectors not in VECTOR_TYPES:
        raise ValueError(f"{label}: unknown vector type {vectors!r}; use one of {', '.join(VECTOR_TYPES)}")
    if vectors != "float32" and index != "flat":
        raise ValueError(f"{label}: {vectors} vectors are for exact search: use index 'flat', or float32 vectors")
    parsed = [parse_measure(name) for name in measures]
    if not parsed:
        raise ValueError(f"{label}: no measures asked for: give at least one, e.g. nDCG@10")
    for measure in parsed:
        if measure.cutoff is not None and measure.cutoff > top_k:
            raise ValueError(
                f"{label}: {measure.name} needs a ranking of depth {measure.cutoff}, but top_k is {top_k}; raise top_k"
            )
    return list({m.name: m for m in parsed}.values())


def _judgements(eval_set: EvalSet, label: str) -> tuple[dict[str, dict[str, dict[str, int]]], list[str]]:
    """Query id -> passage language -> passage id -> relevance for every judged query, and warnings.

    In a bitext set, judgements of the query's own id (self-match) are dropped.
    Judgements of passages missing from the corpus are kept (under the
    language ``absent_languages`` gives, else the query's own): a relevant one
    is never retrieved and lowers the scores, and the warning says how many
    there are.
    """
    if not eval_set.queries:
        raise EvalSetError(f"{label}: the eval set has no queries; check its languages and max_queries")
    for kind, ids in (("query", [q.id for q in eval_set.queries]), ("passage", [p.id for p in eval_set.passages])):
        duplicates = [i for i, n in Counter(ids).items() if n > 1]
        if duplicates:
            raise EvalSetError(f"{label}: {kind} id {duplicates[0]!r} appears more than once; ids must be unique")
    passage_language = {p.id: p.language for p in eval_set.passages}
    judged: dict[str, dict[str, dict[str, int]]] = {}
    relevant = missing = 0
    for query in eval_set.queries:
        by_language: dict[str, dict[str, int]] = defaultdict(dict)
        for pid, relevance in eval_set.qrels.get(query.id, {}).items():
            if eval_set.bitext and pid == query.id:
                continue
            language = passage_language.get(pid)
            if relevance > 0:
                relevant += 1
                missing += language is None
            by_language[language or eval_set.absent_languages.get(pid, query.language)][pid] = int(relevance)
        if by_language:
            judged[query.id] = dict(by_language)
    if not relevant:
        raise EvalSetError(
            f"{label}: no query has a relevant passage (relevance > 0); check the loader's qrels and passages"
        )
    warnings = []
    if missing:
        warnings.append(
            f"{label}: {missing} of {relevant} relevant judgements name passages missing from the corpus; they count "
            "as relevant and never retrieved, so every score is a lower bound: give the whole corpus"
        )
        log.warning("%s", warnings[-1])
    return judged, warnings


def _setting(query_language: str, pool: str) -> str:
    if pool == ALL:
        return "multi"
    return "mono" if query_language == pool else "cross"


def _plan(settings: Sequence[str], judged: Judgements, query_language: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """The searches to run: (passage language, or 'all' for the pool; the judged query ids).

    Mono and cross share one search per passage language, with every query
    judged against that language (its own-language queries for mono, the
    others for cross).
    """
    plan = []
    for y in sorted({lang for by_language in judged.values() for lang in by_language}):
        qids = [q for q, by_language in judged.items() if y in by_language and _setting(query_language[q], y) in settings]
        if qids:
            plan.append((y, qids))
    if "multi" in settings:
        plan.append((ALL, list(judged)))
    return plan


def _restrict(judgements: Mapping[str, Mapping[str, int]], language: str) -> dict[str, int]:
    if language == ALL:
        return {pid: rel for by_id in judgements.values() for pid, rel in by_id.items()}
    return dict(judgements.get(language, {}))


def _add_bias(scores: _Scores, qids: Sequence[str], ranked: _Ranked, judged: Judgements,
              query_language: Mapping[str, str]) -> None:
    """LangBias and MeanRank from the exact full-pool ranks (relevant passages beyond top_k included)."""
    for qid in qids:
        relevant = _relevant(judged[qid], ALL)
        ranks = ranked.ranks[qid]
        best = best_rank_per_language([ranks[p] for p in ranks], [relevant[p] for p in ranks])
        x = query_language[qid]
        for y, rank in best.items():
            scores.add("multi", x, y, "MeanRank", [qid], [rank], all_y=y)
        distance = rank_distance(best)
        if distance is not None:
            scores.add("multi", x, ALL, "LangBias", [qid], [distance])

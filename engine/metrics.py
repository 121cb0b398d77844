"""Retrieval measures with trec_eval semantics, and the language-bias measures.

IR measures (names as in ir_measures): ``nDCG`` / ``nDCG@k``, ``R@k``, ``RR`` /
``RR@k``, ``AP`` / ``AP@k``, ``P@k``, ``Success@k``. The tests check every one
against ir_measures 0.4.3 (pytrec_eval-terrier 0.5.11) on hundreds of random
runs. The semantics, spelled out because each one changes numbers:

* Order: score descending, ties broken by document id descending (trec_eval's
  order, which pytrec_eval keeps). The rank column of a run file is ignored,
  as trec_eval ignores it.
* Relevance: a judgement > 0 is relevant, <= 0 is judged non-relevant. The
  nDCG gain is the relevance itself (a negative one counts as 0), discounted by
  log2(rank + 1); the ideal ranking holds every relevant judged document of the
  query, retrieved or not.
* P@k divides by k even when fewer than k documents were retrieved; R@k and
  AP / AP@k divide by the number of relevant documents of the query.
* Which queries are averaged: every query of the qrels with at least one
  relevant document. If the run has no ranking for one, it scores 0 on every
  measure (ir_measures' default, like ``trec_eval -c``). Queries that the run
  ranks but the qrels do not judge are ignored.
* Two deliberate differences from ir_measures:
  - Queries whose judgements are all <= 0 are left out. ir_measures averages
    them in as 0. Nothing can answer such a query, so it says nothing about the
    system, and counting it would make a mean depend on how many unanswerable
    queries a loader kept. The per-query values of every other query are
    identical.
  - ir_measures computes ``RR@k`` with its msmarco provider, which breaks ties
    by document id *ascending*. Here every measure uses the trec_eval order, so
    RR@k is RR when the first relevant rank is <= k, else 0.

Language bias (arXiv 2408.10536). The paper measures language bias in the
multilingual pool, where all languages' passages share one index, by a rank
distance. The paper's text could not be read from this machine, so this is
the definition implemented here, and the GUI and CSVs use it:

* ``MeanRank`` (the heatmap): for query language X and passage language Y, the
  mean over X's queries of the exact 1-based rank, in the FULL ranking of the
  pool, of the best-ranked relevant passage in language Y. Passages below the
  top_k cut get their exact rank from the scores; they are not dropped.
* ``LangBias``: for each query with relevant passages in at least two
  languages, the rank of its worst-placed language minus the rank of its
  best-placed language (each language represented by its best-ranked relevant
  passage), averaged over those queries. 0 means that every language's copy of
  the answer is ranked side by side. Lower means less language bias.
* Ranks use the same tie order as the IR measures (higher document id first).
* Whether the query's own language takes part depends on the judgements. In
  XQuAD-R (LAReQA) the answer sentence in the query's own language is a
  different passage and is relevant, so it is included. In bitext sets
  (FLORES, NTREX) the query's own-language copy is the query itself: the
  evaluator removes it from the pool, so it is not ranked and takes no part
  in either measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from vocabulary.records import Qrels

#: Run: query id -> document id -> score (higher is better).
Run = Mapping[str, Mapping[str, float]]

#: Measure family -> whether it needs a cutoff (``P@k``) or may go without (``AP``).
_FAMILIES: dict[str, bool] = {
    "nDCG": False,
    "R": True,
    "RR": False,
    "AP": False,
    "P": True,
    "Success": True,
}
_SUPPORTED = "nDCG, nDCG@k, R@k, RR, RR@k, AP, AP@k, P@k, Success@k (k a whole number >= 1)"
#: Queries scored per block, to bound the (queries x depth) matrices.
_BLOCK = 2048


class UnknownMeasureError(ValueError):
    """A measure name is not one we compute."""


class NoJudgedQueriesError(ValueError):
    """No query of the qrels has a relevant document, so there is nothing to average."""


@dataclass(frozen=True)
class Measure:
    family: str
    cutoff: int | None = None

    @property
    def name(self) -> str:
        return self.family if self.cutoff is None else f"{self.family}@{self.cutoff}"


def parse_measure(name: str) -> Measure:
    """``'nDCG@10'`` -> Measure('nDCG', 10). Families match case-insensitively."""
    family_text, _, cutoff_text = name.strip().partition("@")
    family = next((f for f in _FAMILIES if f.lower() == family_text.lower()), None)
    if family is None:
        raise UnknownMeasureError(f"unknown measure {name!r}: supported are {_SUPPORTED}")
    if not cutoff_text:
        if _FAMILIES[family]:
            raise UnknownMeasureError(f"measure {name!r} needs a cutoff, e.g. {family}@10")
        return Measure(family)
    if not cutoff_text.isdigit() or int(cutoff_text) < 1:
        raise UnknownMeasureError(f"measure {name!r}: the cutoff must be a whole number >= 1, e.g. {family}@10")
    return Measure(family, int(cutoff_text))


def compute(qrels: Qrels, run: Run, measures: Sequence[str]) -> dict[str, float]:
    """Mean of each measure over the judged queries (see the module docstring)."""
    per_query = _score(qrels, run, [parse_measure(m) for m in measures])
    return {name: float(values.mean()) for name, values in per_query[1].items()}


def compute_per_query(qrels: Qrels, run: Run, measures: Sequence[str]) -> dict[str, dict[str, float]]:
    """Query id -> measure name -> value, for every query that is averaged."""
    query_ids, values = _score(qrels, run, [parse_measure(m) for m in measures])
    return {qid: {name: float(v[i]) for name, v in values.items()} for i, qid in enumerate(query_ids)}


def _score(qrels: Qrels, run: Run, measures: list[Measure]) -> tuple[list[str], dict[str, np.ndarray]]:
    if not measures:
        raise ValueError("no measures asked for: give at least one, e.g. nDCG@10")
    query_ids = [qid for qid, judged in qrels.items() if any(rel > 0 for rel in judged.values())]
    if not query_ids:
        raise NoJudgedQueriesError("no query in the qrels has a relevant document (relevance > 0): nothing to average")
    cutoffs = [m.cutoff for m in measures]
    depth = None if None in cutoffs else max(c for c in cutoffs if c is not None)
    values = {m.name: np.empty(len(query_ids)) for m in measures}
    for start in range(0, len(query_ids), _BLOCK):
        block = query_ids[start : start + _BLOCK]
        gains, ideal, num_rel = _gain_matrices(qrels, run, block, depth)
        for m in measures:
            values[m.name][start : start + len(block)] = _measure(m, gains, ideal, num_rel)
    return query_ids, values


def _ranked_gains(judged: Mapping[str, int], ranking: Mapping[str, float], query_id: str) -> list[float]:
    for doc, score in ranking.items():
        if math.isnan(score):
            raise ValueError(f"query {query_id!r}, document {doc!r}: the score is NaN; fix the run")
    ordered = sorted(ranking.items(), key=lambda item: (item[1], item[0]), reverse=True)
    return [max(judged.get(doc, 0), 0) for doc, _ in ordered]


def _gain_matrices(
    qrels: Qrels, run: Run, query_ids: list[str], depth: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gains in rank order, ideal gains and relevant counts, zero-padded to one width."""
    ranked = [_ranked_gains(qrels[q], run.get(q, {}), q)[:depth] for q in query_ids]
    ideal_rows = [sorted((rel for rel in qrels[q].values() if rel > 0), reverse=True) for q in query_ids]
    gains = np.zeros((len(query_ids), max(1, max(map(len, ranked)))))
    ideal = np.zeros((len(query_ids), max(map(len, ideal_rows))))
    for i, (row, ideal_row) in enumerate(zip(ranked, ideal_rows)):
        gains[i, : len(row)] = row
        ideal[i, : len(ideal_row)] = ideal_row
    num_rel = np.array([len(row) for row in ideal_rows], dtype=float)
    return gains, ideal, num_rel


def _discounts(width: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, width + 2))


def _measure(measure: Measure, gains: np.ndarray, ideal: np.ndarray, num_rel: np.ndarray) -> np.ndarray:
    top = gains[:, : measure.cutoff] if measure.cutoff else gains
    relevant = top > 0
    family = measure.family
    if family == "P":
        return relevant.sum(axis=1) / measure.cutoff
    if family == "R":
        return relevant.sum(axis=1) / num_rel
    if family == "Success":
        return relevant.any(axis=1).astype(float)
    if family == "RR":
        first = relevant.argmax(axis=1)
        return np.where(relevant.any(axis=1), 1.0 / (first + 1), 0.0)
    if family == "AP":
        precision = np.cumsum(relevant, axis=1) / np.arange(1, top.shape[1] + 1)
        return (precision * relevant).sum(axis=1) / num_rel
    # nDCG
    best = ideal[:, : measure.cutoff] if measure.cutoff else ideal
    dcg = (top * _discounts(top.shape[1])).sum(axis=1)
    return dcg / (best * _discounts(best.shape[1])).sum(axis=1)


# ---- language bias ----------------------------------------------------------


def exact_ranks(scores: np.ndarray, id_order: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based ranks of the passages ``targets`` in one query's full ranking.

    ``scores`` holds the query's score for every passage of the pool (-inf for
    a masked one), ``id_order`` each passage's position in ascending id order,
    so ties rank the higher id first, as trec_eval does.
    """
    target_scores = scores[targets][:, None]
    above = (scores[None, :] > target_scores).sum(axis=1)
    tied_above = ((scores[None, :] == target_scores) & (id_order[None, :] > id_order[targets][:, None])).sum(axis=1)
    return 1 + above + tied_above


def best_rank_per_language(ranks: Sequence[int], languages: Sequence[str]) -> dict[str, int]:
    """Each language's best (smallest) rank among a query's relevant passages."""
    best: dict[str, int] = {}
    for rank, language in zip(ranks, languages):
        best[language] = min(rank, best.get(language, rank))
    return best


def rank_distance(best_ranks: Mapping[str, int]) -> int | None:
    """Worst minus best language rank, or None when fewer than two languages are relevant."""
    if len(best_ranks) < 2:
        return None
    return max(best_ranks.values()) - min(best_ranks.values())

"""Retrieval measures with trec_eval's semantics, computed by trec_eval's own code, and the bias measures.

IR measures (names as in ir_measures): ``nDCG`` / ``nDCG@k``, ``R@k``, ``RR`` /
``RR@k``, ``AP`` / ``AP@k``, ``P@k``, ``Success@k``. Every one with a cutoff
is computed by pytrec_eval (trec_eval's C code): ``ndcg_cut.k``, ``recall.k``,
``map_cut.k``, ``P.k``, ``success.k``. trec_eval has no cutoff for the
reciprocal rank, so ``RR@k`` is its ``recip_rank`` on the run cut to its top
k in trec_eval's own order. The semantics, spelled out because each one
changes numbers:

* Which queries count: every query that is in both the qrels and the run.
  A query judged with nothing relevant scores 0 on every measure and counts
  in the mean; a query the qrels do not judge is skipped. A judged query
  that the run lacks is skipped too (trec_eval without ``-c``): the
  evaluator always gives every judged query a ranking (possibly empty), so
  its means are trec_eval ``-c`` means; ``complete_run`` does the same for
  run files.
* Order: score descending, ties broken by document id descending (string
  order), as trec_eval sorts; the rank column of a run file is ignored.
* Relevance: a judgement >= 1 is relevant. The nDCG gain is the judgement
  itself (a negative one counts 0), discounted by log2(rank + 1); the ideal
  ranking holds every relevant judged document, retrieved or not. Negative
  judgements reach pytrec_eval as 0, which every measure here treats alike:
  trec_eval indexes its relevance-level table by the judgement, so a
  negative one reads outside it (we saw nDCG hang on it, depending on what
  the process had evaluated before).
* P@k divides by k even when fewer than k documents were retrieved; R@k and
  AP divide by the number of relevant judged documents of the query.

Measures without a cutoff (``AP``, ``RR``, ``nDCG``) are at full depth.
Given a run, pytrec_eval computes them over the run as far as it goes. The
evaluator ranks the whole pool but keeps only the top ``top_k`` of it, so it
computes them with :func:`full_depth_values` from the exact rank of every
relevant passage instead: the same numbers trec_eval gives on the complete
ranking (the tests check that), without materialising it. This is the
paper's mAP (arXiv 2408.10536 scores XQuAD-R over the whole candidate pool,
as LAReQA does); ``AP@100`` is trec_eval's ``map_cut.100``.

Language bias (arXiv 2408.10536, §4.1 and footnote 6, after Huang et al.
2023): measured in the multilingual pool, where all languages' passages
share one index.

* ``MeanRank`` (the heatmap): for query language X and passage language Y, the
  mean over X's queries of the exact 1-based rank, in the FULL ranking of the
  pool, of the best-ranked relevant passage in language Y. Passages below the
  top_k cut get their exact rank from the scores; they are not dropped.
* ``LangBias``: the paper's rank distance. For each query with relevant
  passages in at least two languages, the rank of its worst-placed language
  minus the rank of its best-placed language (each language represented by
  its best-ranked relevant passage; XQuAD-R has one per language), averaged
  over those queries. 0 means that every language's copy of the answer is
  ranked side by side. Lower means less language bias.
* Ranks use the same tie order as the IR measures (higher document id first).
* Whether the query's own language takes part depends on the judgements. In
  XQuAD-R (LAReQA) the answer sentence in the query's own language is a
  different passage and is relevant, so it is included. In bitext sets
  (FLORES, NTREX) the query's own-language copy is the query itself: the
  evaluator removes it from the pool, so it is not ranked and takes no part
  in either measure. A relevant passage missing from the corpus has no rank
  and takes no part either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pytrec_eval

from vocabulary.records import Qrels

#: Run: query id -> document id -> score (higher is better).
Run = Mapping[str, Mapping[str, float]]

#: Measure family -> (needs a cutoff, trec_eval measure with a cutoff, trec_eval measure without one).
_FAMILIES: dict[str, tuple[bool, str | None, str | None]] = {
    "nDCG": (False, "ndcg_cut", "ndcg"),
    "R": (True, "recall", None),
    "RR": (False, None, "recip_rank"),
    "AP": (False, "map_cut", "map"),
    "P": (True, "P", None),
    "Success": (True, "success", None),
}
_SUPPORTED = "nDCG, nDCG@k, R@k, RR, RR@k, AP, AP@k, P@k, Success@k (k a whole number >= 1)"


class UnknownMeasureError(ValueError):
    """A measure name is not one we compute."""


class NoJudgedQueriesError(ValueError):
    """No query is both judged in the qrels and ranked in the run, so there is nothing to average."""


@dataclass(frozen=True)
class Measure:
    family: str
    cutoff: int | None = None

    @property
    def name(self) -> str:
        return self.family if self.cutoff is None else f"{self.family}@{self.cutoff}"

    @property
    def full_depth(self) -> bool:
        return self.cutoff is None

    @property
    def trec_measure(self) -> str:
        """The pytrec_eval measure that computes it (``RR@k``: ``recip_rank``, on the run cut to k)."""
        _, with_cutoff, without = _FAMILIES[self.family]
        if self.cutoff is None or with_cutoff is None:
            return without
        return f"{with_cutoff}.{self.cutoff}"

    @property
    def trec_key(self) -> str:
        """The key of its value in pytrec_eval's output (``ndcg_cut.10`` -> ``ndcg_cut_10``)."""
        return self.trec_measure.replace(".", "_")


def parse_measure(name: str) -> Measure:
    """``'nDCG@10'`` -> Measure('nDCG', 10). Families match case-insensitively."""
    family_text, _, cutoff_text = name.strip().partition("@")
    family = next((f for f in _FAMILIES if f.lower() == family_text.lower()), None)
    if family is None:
        raise UnknownMeasureError(f"unknown measure {name!r}: supported are {_SUPPORTED}")
    if not cutoff_text:
        if _FAMILIES[family][0]:
            raise UnknownMeasureError(f"measure {name!r} needs a cutoff, e.g. {family}@10")
        return Measure(family)
    if not cutoff_text.isdigit() or int(cutoff_text) < 1:
        raise UnknownMeasureError(f"measure {name!r}: the cutoff must be a whole number >= 1, e.g. {family}@10")
    return Measure(family, int(cutoff_text))


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean, summed exactly (so it does not depend on the order of the values)."""
    return math.fsum(values) / len(values)


def compute(qrels: Qrels, run: Run, measures: Sequence[str]) -> dict[str, float]:
    """Mean of each measure over the queries in both the qrels and the run (see the module docstring)."""
    per_query = compute_per_query(qrels, run, measures)
    names = [parse_measure(m).name for m in measures]
    return {name: mean([values[name] for values in per_query.values()]) for name in names}


def compute_per_query(qrels: Qrels, run: Run, measures: Sequence[str]) -> dict[str, dict[str, float]]:
    """Query id -> measure name -> value, for every query in both the qrels and the run, in qrels order."""
    parsed = [parse_measure(m) for m in measures]
    if not parsed:
        raise ValueError("no measures asked for: give at least one, e.g. nDCG@10")
    judged = {str(q): {str(d): max(int(rel), 0) for d, rel in docs.items()} for q, docs in qrels.items() if docs}
    ranked = {str(q): _scores(q, docs) for q, docs in run.items()}
    scored = [q for q in judged if q in ranked]
    if not scored:
        raise NoJudgedQueriesError("no query is both judged in the qrels and ranked in the run: nothing to average")
    values: dict[str, dict[str, float]] = {q: {} for q in scored}
    plain = [m for m in parsed if not (m.family == "RR" and m.cutoff is not None)]
    if plain:
        results = pytrec_eval.RelevanceEvaluator(judged, {m.trec_measure for m in plain}).evaluate(ranked)
        for q in scored:
            for m in plain:
                values[q][m.name] = float(results[q][m.trec_key])
    cut_rr = sorted({m.cutoff for m in parsed if m.family == "RR" and m.cutoff is not None})
    if cut_rr:
        reciprocal = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"})
        for k in cut_rr:
            results = reciprocal.evaluate(cut_like_trec_eval(ranked, k))
            for q in scored:
                values[q][f"RR@{k}"] = float(results[q]["recip_rank"])
    names = list(dict.fromkeys(m.name for m in parsed))
    return {q: {name: by_name[name] for name in names} for q, by_name in values.items()}


def _scores(query_id: object, ranking: Mapping[str, float]) -> dict[str, float]:
    """Python floats (pytrec_eval refuses float32), with NaN refused by name."""
    scores = {}
    for doc, score in ranking.items():
        value = float(score)
        if math.isnan(value):
            raise ValueError(f"query {query_id!r}, document {doc!r}: the score is NaN; fix the run")
        scores[str(doc)] = value
    return scores


def trec_order(ranking: Mapping[str, float]) -> list[tuple[str, float]]:
    """(document, score) in trec_eval's order: score descending, then document id descending."""
    return sorted(ranking.items(), key=lambda item: (item[1], item[0]), reverse=True)


def cut_like_trec_eval(run: Run, k: int) -> dict[str, dict[str, float]]:
    """Each query's top ``k`` in trec_eval's order (a naive cut would keep other tied documents)."""
    return {q: dict(trec_order(ranking)[:k]) for q, ranking in run.items()}


def complete_run(qrels: Qrels, run: Run) -> dict[str, dict[str, float]]:
    """``run`` plus an empty ranking for every judged query it lacks (trec_eval ``-c``: those score 0)."""
    return {**{q: {} for q, docs in qrels.items() if docs}, **run}


def full_depth_values(judged: Mapping[str, int], ranks: Mapping[str, int], measures: Sequence[Measure]) -> dict[str, float]:
    """AP, RR and nDCG of one query over its complete ranking, from its relevant passages' ranks.

    ``judged`` holds the query's judgements, ``ranks`` the exact 1-based rank
    of each relevant judged passage that the ranked pool holds; a relevant
    passage missing from it counts as never retrieved. These are trec_eval's
    ``map``, ``recip_rank`` and ``ndcg`` on the whole ranking.
    """
    gains = {doc: rel for doc, rel in judged.items() if rel > 0}
    found = sorted((ranks[doc], gains[doc]) for doc in gains if doc in ranks)
    values = {}
    for measure in measures:
        if not measure.full_depth:
            raise ValueError(f"{measure.name} has a cutoff: compute it from the top-k run")
        if measure.family == "AP":
            value = sum((i + 1) / rank for i, (rank, _) in enumerate(found)) / len(gains) if gains else 0.0
        elif measure.family == "RR":
            value = 1.0 / found[0][0] if found else 0.0
        else:  # nDCG
            ideal = sum(gain / math.log2(i + 2) for i, gain in enumerate(sorted(gains.values(), reverse=True)))
            value = sum(gain / math.log2(rank + 1) for rank, gain in found) / ideal if ideal else 0.0
        values[measure.name] = value
    return values


# ---- language bias ----------------------------------------------------------


def exact_ranks(scores: np.ndarray, id_order: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based ranks of the passages ``targets`` in one query's full ranking.

    ``scores`` holds the query's score for every passage of the pool (-inf for
    a masked one), ``id_order`` each passage's position in ascending id order,
    so ties rank the higher id first, as trec_eval does. A NaN or infinite
    score ranks with the masked ones, last: a comparison with NaN is false, so
    left as it is it would rank first.
    """
    scores = np.where(np.isfinite(scores), scores, -np.inf)
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

"""BM25, the lexical reference line of every scaling plot, through the ``bm25s`` library.

Scoring is Lucene's BM25 (``bm25s`` method ``lucene``: idf ``ln(1 + (N - df
+ 0.5) / (df + 0.5))``, term part ``tf / (tf + k1 (1 - b + b dl / avgdl))``)
with pyserini's parameters k1 = 0.9 and b = 0.4, the ones behind its MIRACL
BM25 baselines.

Tokenisation is ours, because pyserini's whitespace analyzer for sw and yo
keeps punctuation on words and is case-sensitive, and bm25s' default drops
English stop words, one-letter words and combining marks: here a token is a
maximal run of letters, marks and digits (``[\\p{L}\\p{M}\\p{N}]+``) of the
NFC, case-folded text, so Yoruba tone marks (``ọ̀``: a precomposed letter
plus a combining grave, which has no precomposed form) stay inside their
word, and there is no stemming or stop list for any language.

Scores are computed densely per query (``get_scores``), not with bm25s'
top-k selection, which orders tied documents arbitrarily; rankings then
break ties by passage id descending, as trec_eval does, and exact full-pool
ranks are available for the language-bias measures.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Sequence

import bm25s
import numpy as np
import regex

#: pyserini's defaults (``LuceneSearcher.set_bm25``), used for its MIRACL baselines.
K1 = 0.9
B = 0.4
_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")


def tokenize(text: str) -> list[str]:
    """Words of ``text``: runs of letters, combining marks and digits of its NFC case-folded form."""
    return _WORD.findall(unicodedata.normalize("NFC", text).casefold())


@dataclass
class BM25Pool:
    """A BM25 index over one pool of passages (ids in pool order)."""

    ids: list[str]
    retriever: bm25s.BM25

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], k1: float = K1, b: float = B) -> "BM25Pool":
        if len(ids) != len(texts) or not ids:
            raise ValueError("BM25 needs one text per passage id, and at least one passage")
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        retriever.index([tokenize(t) for t in texts], show_progress=False)
        return cls(list(ids), retriever)

    def scores(self, query: str) -> np.ndarray:
        """float64 score of every passage of the pool for ``query`` (0 where no word is shared)."""
        tokens = tokenize(query)
        if not tokens:
            return np.zeros(len(self.ids))
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float64)

    def search(self, query_ids: Sequence[str], queries: Sequence[str], k: int) -> dict[str, dict[str, float]]:
        """Top-k passages per query with a positive score, never the passage whose id is the query's own."""
        id_rank = np.argsort(np.argsort(np.array(self.ids)))  # position in ascending id order
        run: dict[str, dict[str, float]] = {}
        for qid, text in zip(query_ids, queries):
            row = self.scores(text)
            order = np.lexsort((-id_rank, -row))  # score descending, then id descending
            ranking: dict[str, float] = {}
            for index in order:
                if len(ranking) == k or row[index] <= 0:
                    break
                if self.ids[index] != qid:
                    ranking[self.ids[index]] = float(row[index])
            run[qid] = ranking
        return run

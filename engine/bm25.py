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
top-k selection, which orders tied documents arbitrarily; the evaluator
(:func:`engine.evaluate.evaluate_lexical`) ranks them like a dense model's,
ties by passage id descending as trec_eval does. A passage that shares no
word with the query is not retrieved (score -inf to the evaluator, as Lucene
returns only matching documents); it is ranked after every retrieved one,
in id order, only for the full-depth and bias measures.

Each pool searched (one language's passages, or all of them) gets its own
index, so document frequencies and the average length are those of the
passages searched, as with one Lucene index per language.

Memory: the index is built from int32 word ids (:func:`token_ids`), and its
sparse matrix by scipy (``csc_backend="scipy"``, 8 bytes a stored score
while it is built) rather than by bm25s' default numpy backend, which
without numba sorts packed int64 keys (24 bytes a stored score: 1.3 GB more
at peak for a million passages). Both give the same matrix.
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


def token_ids(texts: Sequence[str]) -> tuple[list[np.ndarray], dict[str, int]]:
    """Each text's words as int32 ids, and the word -> id vocabulary: what ``bm25s`` indexes.

    Lists of word strings for a whole corpus take several times the memory of
    its text; ids as one small array per passage take a few bytes a word, and
    bm25s scores them exactly as it scores the words.
    """
    vocabulary: dict[str, int] = {}
    ids = [np.fromiter((vocabulary.setdefault(word, len(vocabulary)) for word in tokenize(text)), dtype=np.int32)
           for text in texts]
    return ids, vocabulary


@dataclass
class BM25Pool:
    """A BM25 index over one pool of passages (ids and texts in pool order); a :class:`engine.evaluate.Pool`.

    ``texts`` is kept as given (it may make each text when read), for :meth:`subset`."""

    ids: list[str]
    texts: Sequence[str]
    retriever: bm25s.BM25

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], k1: float = K1, b: float = B) -> "BM25Pool":
        if len(ids) != len(texts):
            raise ValueError("BM25 needs one text per passage id")
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene", csc_backend="scipy")
        if ids:  # an empty pool (a language without passages) scores nothing
            retriever.index(token_ids(texts), show_progress=False)
        return cls(list(ids), texts, retriever)

    def subset(self, keep: np.ndarray) -> "BM25Pool":
        """A new index over the kept passages (their own document frequencies and average length); all kept: this one.

        The kept texts are read from this pool's as they are indexed, never gathered into a list."""
        if keep.all():
            return self
        kept = np.flatnonzero(keep)
        return BM25Pool.build([self.ids[i] for i in kept], _Taken(self.texts, kept), self.retriever.k1,
                              self.retriever.b)

    def score(self, query: str) -> np.ndarray:
        """float64 score of every passage of the pool for ``query`` (0 where no word is shared)."""
        tokens = tokenize(query)
        if not tokens or not self.ids:
            return np.zeros(len(self.ids))
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float64)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """(queries x passages) scores, -inf where a passage shares no word with the query (not retrieved)."""
        block = np.empty((len(queries), len(self.ids)), dtype=np.float64)
        for row, query in zip(block, queries):
            row[:] = self.score(query)
        block[block <= 0] = -np.inf
        return block


class _Taken(Sequence[str]):
    """The texts at ``positions`` (ascending) of ``texts``, read when asked."""

    def __init__(self, texts: Sequence[str], positions: np.ndarray):
        self._texts = texts
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self._texts[i] for i in self._positions[index].tolist()]
        return self._texts[int(self._positions[index])]

"""XQuAD-R, built the LAReQA way (Roy et al., 2020): answer-sentence retrieval across languages.

Candidates are the sentences of every context of the split's articles in all
chosen languages; a question's relevant set is its answer sentence in EVERY
chosen language (relevance 1), so a model that only finds same-language
answers is visibly penalised in the ``multi`` setting. The article split
comes from :mod:`engine.data.squad` (one split function), so XQuAD training
never sees an XQuAD-R eval article.

Two sources of sentences, and the eval set's label says which:

* The shipped XQuAD (no ``path``): our own rule-based splitter, on the 12
  held-out articles for split ``eval``. Not comparable with published
  XQuAD-R numbers, whose pool is all 48 articles (1,190 questions in each of
  11 languages) cut at LAReQA's sentence boundaries.
* LAReQA's ``xquad-r`` folder (``path``, files ``<lang>.json``): SQuAD JSON
  whose paragraphs hold ``sentence_breaks``; the sentences are cut exactly
  there, and split ``all`` is the published pool. Every paragraph must have
  them.
"""

from __future__ import annotations

from engine.data.errors import DataError
from engine.data.squad import qa_eval_set, read_squad
from vocabulary.config import EvalSpec
from vocabulary.records import EvalSet

DATASET = "xquad-r"


def load_eval_set(spec: EvalSpec) -> EvalSet:
    if spec.path is not None:
        _check_lareqa_files(spec)
    return qa_eval_set(spec, DATASET, "sentence")


def _check_lareqa_files(spec: EvalSpec) -> None:
    """A folder given for XQuAD-R must be LAReQA's: our splitter would silently stand in otherwise."""
    codes, articles = read_squad(DATASET, spec.languages, spec.path)
    for lang in codes:
        if any(p.breaks is None for article in articles[lang] for p in article.paragraphs):
            raise DataError(
                f"{DATASET}: the {lang} file in {spec.path} has paragraphs without sentence_breaks; give LAReQA's "
                "xquad-r folder (github.com/google-research-datasets/lareqa), or leave path empty for the shipped XQuAD"
            )

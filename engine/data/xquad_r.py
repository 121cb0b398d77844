"""XQuAD-R, built the LAReQA way (Roy et al., 2020): answer-sentence retrieval across languages.

Candidates are the sentences of every context of the split's articles in all
chosen languages; a question's relevant set is its answer sentence in EVERY
chosen language (relevance 1), so a model that only finds same-language
answers is visibly penalised in the ``multi`` setting. Sentences and the
article split come from :mod:`engine.data.squad` (one splitter, one split
function), so XQuAD training never sees an XQuAD-R eval article. Unlike the
published LAReQA files, sentence boundaries are our own rule-based splitter's,
so scores are close to, not identical with, published XQuAD-R numbers.
"""

from __future__ import annotations

from engine.data.squad import qa_eval_set
from vocabulary.config import EvalSpec
from vocabulary.records import EvalSet

DATASET = "xquad-r"


def load_eval_set(spec: EvalSpec) -> EvalSet:
    return qa_eval_set(spec, DATASET, "sentence")

"""Which measurement a study's answer is about: one rule for summary.md and the GUI's first view.

The research question is zero-shot cross-lingual retrieval, so the cross
setting comes first, then the multilingual pool, then monolingual search. Among
eval sets, those built for the question come first: CIRAL (human English
questions, human judgements of sw/yo news passages), then AfriQA (sw/yo
questions against English passages), MIRACL (sw/yo, monolingual), XQuAD-R;
bitext sentence retrieval (FLORES, NTREX) last, since multilingual encoders
nearly saturate it. Each eval set is read in its benchmark's headline measure
(the first of its dataset's ``measures``: nDCG@20 for CIRAL, as its published
baselines report, else nDCG@10), so an answer on CIRAL compares with the
published numbers.
"""

from __future__ import annotations

from vocabulary.datasets import DATASETS
from vocabulary.records import DEFAULT_MEASURES

ANSWER_SETTINGS: tuple[str, ...] = ("cross", "multi", "mono")
ANSWER_DATASETS: tuple[str, ...] = ("ciral", "afriqa", "miracl", "xquad-r", "flores", "ntrex")


def dataset_of(eval_set: str) -> str:
    """The dataset id of an eval set's label (``afriqa/test (gold passages only)`` -> ``afriqa``)."""
    return eval_set.split("/", 1)[0]


def headline_metric(eval_set: str) -> str:
    """The measure an eval set is reported in first (a dataset we do not know: the default nDCG@10)."""
    info = DATASETS.get(dataset_of(eval_set))
    return (info.measures if info is not None else DEFAULT_MEASURES)[0]


def answer_rank(eval_set: str, setting: str) -> tuple[int, int, str]:
    """Sort key: the smallest is what the answer is about (settings first, then eval sets, then the label)."""
    dataset = dataset_of(eval_set)
    setting_rank = ANSWER_SETTINGS.index(setting) if setting in ANSWER_SETTINGS else len(ANSWER_SETTINGS)
    dataset_rank = ANSWER_DATASETS.index(dataset) if dataset in ANSWER_DATASETS else len(ANSWER_DATASETS)
    return setting_rank, dataset_rank, eval_set

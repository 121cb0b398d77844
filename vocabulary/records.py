"""Plain typed records that flow between the data loaders, the sampler, the
trainer and the evaluator.

They are deliberately dumb (frozen dataclasses, no behaviour beyond small
derived views) so every room can depend on them without depending on each
other, and so tests can build them by hand.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Mapping, Sequence

#: qrels: query id -> passage id -> graded relevance (0 = judged non-relevant).
Qrels = Mapping[str, Mapping[str, int]]

#: Evaluation settings: X queries vs X passages, vs Y passages (X != Y), vs the pool of every language.
SETTINGS: tuple[str, ...] = ("mono", "cross", "multi")
#: The language value of a setting-wide average (query side) or of the multilingual pool (passage side).
ALL = "all"
#: What a run is scored with unless told otherwise (ir_measures names; ``AP`` is at full depth).
DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "R@100", "RR@10", "AP")
#: Appended to a metric's name in the ``all`` row that averages over queries (micro); the plain name's
#: ``all`` row is the mean over language pairs (macro), as arXiv 2408.10536 averages.
MICRO_SUFFIX = " (micro)"
#: Metrics where a smaller value is the better result (the language-bias measures: ranks and rank distances).
LOWER_IS_BETTER: frozenset[str] = frozenset({"LangBias", "MeanRank"})


def micro_name(metric: str) -> str:
    """The name of ``metric``'s micro-averaged ``all`` row: ``nDCG@10 (micro)``."""
    return metric + MICRO_SUFFIX


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    language: str


@dataclass(frozen=True)
class Passage:
    id: str
    text: str
    language: str
    title: str = ""


def normalise_passage(text: str) -> str:
    """The text two passages must share to be the same passage: NFC, whitespace collapsed, casefolded.

    Case and spacing differences do not make a different passage to a reader
    (nor to a retriever's false-negative problem), so they are folded away;
    punctuation and diacritics are kept, since they can change what a
    sentence says.
    """
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


@functools.lru_cache(maxsize=1 << 16)
def content_id(language: str, text: str) -> str:
    """A passage id from its normalised text (:func:`normalise_passage`), for sources that give none.

    ``<language>~<16 hex digits of SHA-1>``: per language (a translation is
    another passage), short enough to print, and 64 bits make an accidental
    collision among a training set's few thousand passages vanishingly rare.
    """
    digest = hashlib.sha1(normalise_passage(text).encode("utf-8")).hexdigest()[:16]
    return f"{language}~{digest}"


@dataclass(frozen=True)
class TrainingPair:
    """One (query, positive passage[, hard negative]) example, tagged with its parallel group.

    ``group`` is shared by the translations of the same question/passage, so
    a sampler can find the same example in another language and can refuse
    to put two members of one group into a batch (a false negative).
    ``passage_id`` names the positive passage (the source's id, else
    :func:`content_id`): the loss treats two columns with one id as the same
    passage. ``negative`` is the group's hard negative in the passage
    language, when the source provides one (the paper's triplets).
    """

    query: str
    passage: str
    query_language: str
    passage_language: str
    group: str
    passage_id: str = ""
    negative: str | None = None
    negative_id: str | None = None


@dataclass(frozen=True)
class ParallelGroup:
    """The same question and its positive passage in every language we have.

    ``context`` optionally holds the whole paragraph the positive sentence
    came from (SQuAD-style data), keyed by language like the other fields.
    ``passage_ids`` optionally holds the source's id of each positive (e.g.
    XQuAD sentence ids); a language without one is identified by content.
    ``negatives`` optionally holds one hard-negative passage per language
    (mMARCO-style triplets), with optional ``negative_ids``.
    """

    id: str
    queries: Mapping[str, str]
    passages: Mapping[str, str]
    context: Mapping[str, str] = field(default_factory=dict)
    passage_ids: Mapping[str, str] = field(default_factory=dict)
    negatives: Mapping[str, str] = field(default_factory=dict)
    negative_ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.queries) & set(self.passages)))

    def passage_id(self, language: str) -> str:
        """The id of the positive passage in ``language``: the source's, else its content id."""
        return self.passage_ids.get(language) or content_id(language, self.passages[language])

    def negative_id(self, language: str) -> str | None:
        if language not in self.negatives:
            return None
        return self.negative_ids.get(language) or content_id(language, self.negatives[language])

    def pair(self, query_language: str, passage_language: str) -> TrainingPair:
        return TrainingPair(
            query=self.queries[query_language],
            passage=self.passages[passage_language],
            query_language=query_language,
            passage_language=passage_language,
            group=self.id,
            passage_id=self.passage_id(passage_language),
            negative=self.negatives.get(passage_language),
            negative_id=self.negative_id(passage_language),
        )


@dataclass(frozen=True)
class TrainingSet:
    """Parallel groups available for training, in a stable order."""

    name: str
    languages: tuple[str, ...]
    groups: tuple[ParallelGroup, ...]

    def pairs(self) -> list[TrainingPair]:
        """Every monolingual pair (X-X) of every group, for inspection and export."""
        return [g.pair(lang, lang) for g in self.groups for lang in g.languages]


@dataclass(frozen=True)
class EvalSet:
    """Queries, the FULL passage corpus to search, and graded judgements.

    ``passages`` must be the whole collection a real system would search,
    never only the judged passages: ranking against judged passages alone
    inflates every metric. It is any sequence: the loaders give one kept on
    disk and read a shard at a time (:mod:`engine.data.corpus`), tests a
    tuple. Judgements may name passages that ``passages``
    lacks (a partial corpus): a relevant one counts as never retrieved.
    ``absent_languages`` gives the language of such a passage where it is not
    the query's own. ``bitext``: every query is also a passage under its own
    id (FLORES, NTREX), which the evaluator keeps out of its ranking and its
    judgements; elsewhere a query and a passage may share an id by chance
    (MIRACL yo) and are unrelated.
    """

    name: str
    queries: tuple[Query, ...]
    passages: Sequence[Passage]
    qrels: Qrels
    absent_languages: Mapping[str, str] = field(default_factory=dict)
    bitext: bool = False

    @property
    def query_languages(self) -> tuple[str, ...]:
        return tuple(sorted({q.language for q in self.queries}))

    @property
    def passage_languages(self) -> tuple[str, ...]:
        return tuple(sorted({p.language for p in self.passages}))


@dataclass(frozen=True)
class MetricRow:
    """One aggregate value of a run: what the evaluator returns and storage keeps."""

    eval_set: str  # EvalSpec.label, e.g. "flores/test"
    setting: str  # one of SETTINGS
    query_language: str  # ISO code, or ALL for the average over the setting's cells
    passage_language: str  # ISO code; ALL for the multilingual pool (MeanRank keeps the ISO code)
    metric: str  # ir_measures name, or LangBias / MeanRank; micro_name(...) in a micro-averaged all row
    value: float
    num_queries: int


@dataclass(frozen=True)
class QueryValues:
    """The per-query values behind one cell's MetricRow (whose value is their mean), in query order."""

    eval_set: str
    setting: str
    query_language: str
    passage_language: str
    metric: str
    query_ids: tuple[str, ...]
    values: tuple[float, ...]

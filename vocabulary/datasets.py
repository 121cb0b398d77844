"""Which datasets exist, what they hold, what they can be used for, and where their loader is.

Importing this module is cheap (no loader runs, no file is read), so config
validation, the GUI's pick lists and its cost estimate use it freely. Each
entry declares its facts once: languages, splits, the parallel groups of
each training split (the largest training size) and the rough number of
texts per language of each eval split; ``tests/vocabulary`` checks them
against the shipped files. Loaders are named by ``module:function`` and
imported by :mod:`engine.data.load` only when a dataset is actually loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

from vocabulary.languages import LANGUAGE_NAMES
from vocabulary.records import DEFAULT_MEASURES

Role = Literal["train", "eval"]

#: The split an eval set uses when none is named: the first of these the dataset has.
EVAL_SPLIT_PREFERENCE: tuple[str, ...] = ("test", "test-a", "eval", "dev")


@dataclass(frozen=True)
class DatasetInfo:
    """One data source.

    ``train_groups``: split -> parallel question groups (what a training size
    counts). ``eval_texts``: split -> (queries, passages) per evaluated
    language, about (languages differ a little), for the form's cost estimate.
    ``dev_split``: the split of held-out training-source groups that the dev
    loss and ``select: best_dev`` use (never an evaluation split); None when
    the source has none.
    ``symmetric``: queries and passages are the same kind of text (bitext
    sentences), so an eval set encodes both sides alike by default.
    ``source``: the data its texts come from; an eval split of the same source
    as the training set must not include the training split.
    """

    id: str
    description: str
    languages: tuple[str, ...]
    splits: tuple[str, ...]
    train_loader: str | None = None
    eval_loader: str | None = None
    train_groups: Mapping[str, int] = field(default_factory=dict)
    eval_texts: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    dev_split: str | None = None
    symmetric: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        if not self.source:
            object.__setattr__(self, "source", self.id)
    #: Every group has one language: the source can only make X-X (monolingual) batches.
    monolingual: bool = False
    #: (split without the dev articles, every split) that training may use when no eval set in
    #: ``held_out_for`` is evaluated: the dev split stays out while a dev loss is computed on it.
    wider_train_splits: tuple[str, str] | None = None
    held_out_for: tuple[str, ...] = ()
    #: The source has no default copy: a training source names its file or folder (``NAME:PATH``).
    needs_path: bool = False
    #: A copy of the source (or of its topics and judgements) ships in assets/; False: Hub or the user's files only.
    shipped: bool = True
    #: What its eval sets are scored with (ir_measures names): the defaults, plus the measures of the
    #: dataset's published baselines where they differ, so our rows sit beside theirs.
    measures: tuple[str, ...] = DEFAULT_MEASURES
    #: Passages of the full corpus an evaluation searches, per language, where it is not shipped (a run reads
    #: every one of them, and the setup form shows the count); ``corpus_source`` says where the counts are published.
    corpus_passages: Mapping[str, int] = field(default_factory=dict)
    corpus_source: str = ""

    def corpus_text(self) -> str:
        """The corpus sizes in words (``sw 949,013 and yo 82,095 passages``); empty where none is declared."""
        if not self.corpus_passages:
            return ""
        sizes = [f"{lang} {count:,}" for lang, count in self.corpus_passages.items()]
        return f"{' and '.join(sizes)} passages"

    def loader_name(self, role: Role) -> str:
        """``module:function`` of the loader for ``role``; ValueError when the dataset has none."""
        target = self.train_loader if role == "train" else self.eval_loader
        if target is None:
            raise ValueError(f"dataset {self.id!r} cannot be used for {role}ing")
        return target

    def train_split(self, evaluated: set[str], dev_loss: bool) -> str:
        """The split a run trains on: ``train``, or a wider one when no eval set needs the held-out articles."""
        if self.wider_train_splits is None or evaluated.intersection(self.held_out_for):
            return "train"
        return self.wider_train_splits[0] if dev_loss else self.wider_train_splits[1]

    @property
    def default_eval_split(self) -> str:
        return next((s for s in EVAL_SPLIT_PREFERENCE if s in self.splits), self.splits[0])


_XQUAD_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
_FLORES_LANGUAGES = (
    "ar", "de", "en", "es", "hi", "ig", "ln", "ru", "rw", "sw", "th", "tr", "wo", "xh", "yo", "zh", "zu",
)

DATASETS: dict[str, DatasetInfo] = {
    info.id: info
    for info in (
        DatasetInfo(
            "xquad",
            "XQuAD (SQuAD v1.1 format, 12 parallel languages): question -> answer sentence",
            _XQUAD_LANGUAGES,
            ("train", "dev", "eval", "nodev", "all"),
            train_loader="engine.data.squad:load_training_set",
            eval_loader="engine.data.squad:load_eval_set",
            train_groups={"train": 698, "dev": 210, "eval": 282, "nodev": 980, "all": 1190},
            eval_texts={"train": (698, 135), "dev": (210, 45), "eval": (282, 60), "nodev": (980, 195),
                        "all": (1190, 240)},
            dev_split="dev",
            # Its eval articles are XQuAD-R's (and its own eval set's): free for training when neither is evaluated.
            wider_train_splits=("nodev", "all"),
            held_out_for=("xquad", "xquad-r"),
        ),
        DatasetInfo(
            "mmarco",
            "mMARCO v2 (MS MARCO passage triples, 14 languages; streamed from the Hub or a local copy)",
            ("ar", "de", "en", "es", "fr", "hi", "id", "it", "ja", "nl", "pt", "ru", "vi", "zh"),
            ("train",),
            train_loader="engine.data.mmarco:load_training_set",
            # Groups are query ids; their number is counted from the triples file when needed.
            shipped=False,
        ),
        DatasetInfo(
            "miracl-train",
            "MIRACL sw train: queries with a judged positive and negative (monolingual; yo has no train split)",
            ("sw",),
            ("train",),
            train_loader="engine.data.miracl_train:load_training_set",
            train_groups={"train": 801},
            monolingual=True,
            source="miracl",
        ),
        DatasetInfo(
            "file",
            "your parallel training file (JSONL or TSV: group, language, query, positive[, negative, passage_id])",
            tuple(LANGUAGE_NAMES),
            ("train",),
            train_loader="engine.data.parallel_file:load_training_set",
            needs_path=True,
            shipped=False,
        ),
        DatasetInfo(
            "xquad-r",
            "XQuAD-R (LAReQA): answer-sentence retrieval over every language's sentences",
            _XQUAD_LANGUAGES,
            ("train", "eval", "all"),
            eval_loader="engine.data.xquad_r:load_eval_set",
            eval_texts={"train": (698, 732), "eval": (282, 326), "all": (1190, 1306)},
            source="xquad",
        ),
        DatasetInfo(
            "flores",
            "FLORES-200 (SIB-200 subset): parallel sentence retrieval; split 'all' is train+dev+test",
            _FLORES_LANGUAGES,
            ("train", "dev", "test", "all"),
            train_loader="engine.data.flores:load_training_set",
            eval_loader="engine.data.flores:load_eval_set",
            train_groups={"train": 701, "dev": 99, "test": 204, "all": 1004},
            eval_texts={"train": (701, 701), "dev": (99, 99), "test": (204, 204), "all": (1004, 1004)},
            dev_split="dev",
            symmetric=True,
        ),
        DatasetInfo(
            "afriqa",
            "AfriQA: sw/yo questions -> English Wikipedia passages (the gold ones, or a collection)",
            ("sw", "yo"),
            ("train", "test"),
            eval_loader="engine.data.afriqa:load_eval_set",
            # Per chosen language: its native questions and their English translations; the gold passages.
            eval_texts={"train": (494, 246), "test": (548, 271)},
        ),
        DatasetInfo(
            "miracl",
            "MIRACL sw/yo (monolingual): topics and qrels shipped; passage corpus from the hub's files or a local copy",
            ("sw", "yo"),
            ("train", "dev"),
            eval_loader="engine.data.miracl:load_eval_set",
            # sw dev 482 / yo dev 119 topics; passages: the corpora below.
            eval_texts={"train": (1901, 131_924), "dev": (300, 90_000)},
            corpus_passages={"sw": 131_924, "yo": 49_043},
            corpus_source=("sw: the corpus table of the MIRACL README (assets/data/miracl/UPSTREAM_README.miracl.md); "
                           "yo: the row count on the hub card of Cohere/miracl-yo-corpus-22-12, a copy of MIRACL's yo "
                           "corpus"),
        ),
        DatasetInfo(
            "ciral",
            "CIRAL sw/yo news: English questions -> sw/yo passages (cross-lingual), native questions (monolingual)",
            ("sw", "yo"),
            ("test-a", "test-b", "test-a-pools", "dev"),
            eval_loader="engine.data.ciral:load_eval_set",
            # English + native topics per language (yo test-b: 554 each); passages: about the two corpora's mean.
            eval_texts={"test-a": (185, 500_000), "test-b": (667, 500_000), "test-a-pools": (185, 500_000),
                        "dev": (10, 500_000)},
            corpus_passages={"sw": 949_013, "yo": 82_095},
            corpus_source=("the corpus table of the CIRAL README (assets/data/ciral/UPSTREAM_README.ciral.md, "
                           "passages-v1.0)"),
            # pyserini's 2CR for CIRAL reports nDCG@20 and R@100 (trec_eval -c).
            measures=("nDCG@20", "R@100", *(m for m in DEFAULT_MEASURES if m != "R@100")),
        ),
        DatasetInfo(
            "ntrex",
            "NTREX-128 news: en/sw/yo bitext retrieval",
            ("en", "sw", "yo"),
            ("test",),
            eval_loader="engine.data.ntrex:load_eval_set",
            eval_texts={"test": (1997, 1997)},
            symmetric=True,
        ),
    )
}


def dataset_ids(role: Role | None = None) -> tuple[str, ...]:
    """Dataset ids usable for ``role`` ('train' or 'eval'), or all of them."""
    if role is None:
        return tuple(DATASETS)
    attribute = "train_loader" if role == "train" else "eval_loader"
    return tuple(i for i, info in DATASETS.items() if getattr(info, attribute))


def dataset_info(dataset_id: str) -> DatasetInfo:
    try:
        return DATASETS[dataset_id]
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset_id!r}: use one of {', '.join(DATASETS)}"
        ) from None


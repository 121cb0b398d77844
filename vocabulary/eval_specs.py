"""One evaluation set of a run (:class:`EvalSpec`), the default ones, and reading one from a settings file."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from vocabulary.checks import ConfigError, check_languages, check_types, dataset_entry, known_datasets
from vocabulary.languages import PAPER_TRAIN_LANGUAGES, TARGET_LANGUAGES

#: How the passages are searched: exactly (``flat``, the default), or by an approximate FAISS index.
INDEX_KINDS: tuple[str, ...] = ("flat", "hnsw", "ivf")
#: How the passage vectors are kept: float32 (the default), or float16 in half the memory.
VECTOR_TYPES: tuple[str, ...] = ("float32", "float16")


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation set of a run.

    ``max_queries`` keeps a deterministic subset of queries (for CPU demos);
    the passage corpus is never cut. ``path`` points a loader at local files
    (e.g. a MIRACL passage corpus, the LAReQA XQuAD-R files) instead of the
    shipped or online copy. ``corpus`` is AfriQA's Wikipedia passage
    collection (a ``corpus.jsonl`` file or folder, or ``hf:NAME``) to search
    instead of its gold passages alone.

    ``passage_max_length`` is the token length passages are cut to when
    evaluating, independent of the training ``max_length``. ``symmetric``
    encodes queries and passages alike (the ``query: `` prefix and
    ``passage_max_length`` on both sides), as the multilingual-e5 card asks
    for bitext mining; ``None`` takes the dataset's default (on for the
    bitext sets FLORES and NTREX), resolved when the spec is made.

    ``index`` and ``vectors`` are opt-in trades of exactness for memory or
    time on a large corpus (:func:`engine.evaluate.evaluate`): an
    approximate index (``hnsw``, ``ivf``) for the top ``top_k``, or the
    passage vectors kept as ``float16``. Either one is named in the label,
    so every row, CSV and plot of such an evaluation says it.
    """

    dataset: str
    languages: tuple[str, ...]
    split: str = "test"
    max_queries: int | None = None
    path: str | None = None
    passage_max_length: int = 512
    symmetric: bool | None = None
    corpus: str | None = None
    index: str = "flat"
    vectors: str = "float32"

    def __post_init__(self) -> None:
        if self.symmetric is None:
            from vocabulary.datasets import DATASETS

            info = DATASETS.get(self.dataset)
            if info is not None:
                object.__setattr__(self, "symmetric", info.symmetric)

    def validate(self) -> None:
        known = known_datasets("eval")
        if self.dataset not in known:
            raise ConfigError(
                "evaluations", f"unknown eval set {self.dataset!r}; allowed: {', '.join(known)}"
            )
        where = f"evaluations[{self.dataset}]"
        check_languages(f"{where}.languages", self.languages)
        info = dataset_entry(self.dataset)
        if self.split not in info.splits:
            raise ConfigError(f"{where}.split", f"{self.dataset} has no split {self.split!r}; use one of "
                              f"{', '.join(info.splits)}")
        # A local copy (``path``) may hold other languages; the loader checks those against the files.
        missing = [lang for lang in self.languages if lang not in info.languages]
        if missing and self.path is None:
            raise ConfigError(f"{where}.languages", f"{self.dataset} has no language {missing[0]!r}; available: "
                              f"{', '.join(info.languages)}")
        if self.max_queries is not None and self.max_queries < 1:
            raise ConfigError(f"{where}.max_queries", "must be at least 1")
        if not 8 <= self.passage_max_length <= 512:
            raise ConfigError(f"{where}.passage_max_length", "must be between 8 and 512 tokens")
        if self.corpus is not None and self.dataset != "afriqa":
            hint = "; MIRACL takes its corpus as path" if self.dataset == "miracl" else ""
            raise ConfigError(f"{where}.corpus", f"only AfriQA takes a passage collection{hint}")
        if self.index not in INDEX_KINDS:
            raise ConfigError(f"{where}.index", f"unknown index {self.index!r}; use one of {', '.join(INDEX_KINDS)}")
        if self.vectors not in VECTOR_TYPES:
            raise ConfigError(f"{where}.vectors", f"unknown vector type {self.vectors!r}; use one of "
                              f"{', '.join(VECTOR_TYPES)}")
        if self.vectors != "float32" and self.index != "flat":
            raise ConfigError(f"{where}.vectors", f"{self.vectors} vectors are for exact search: set index to 'flat' "
                              "or vectors to 'float32'")

    @property
    def label(self) -> str:
        """The name metrics are stored under, e.g. ``flores/test``; it says what a plot shows.

        AfriQA says whether its corpus is the gold passages alone (a closed,
        easy set) or a Wikipedia collection; XQuAD-R says whose sentence
        boundaries it uses (ours are not the published LAReQA pool). A
        search that is not exact float32 says so: ``miracl/dev (hnsw index)``.
        """
        parts = [*_label_qualifiers(self), *_search_qualifiers(self)]
        return f"{self.dataset}/{self.split}" + (f" ({', '.join(parts)})" if parts else "")


def _label_qualifiers(spec: EvalSpec) -> list[str]:
    if spec.dataset == "afriqa":
        return ["gold passages only" if spec.corpus is None else "Wikipedia collection, answer match"]
    if spec.dataset == "xquad-r":
        if spec.path is not None:
            return ["LAReQA sentences"]
        return [f"{'held-out articles, ' if spec.split == 'eval' else ''}own sentence splitter"]
    return []


def _search_qualifiers(spec: EvalSpec) -> list[str]:
    return ([f"{spec.index} index"] if spec.index != "flat" else []) + \
        ([f"{spec.vectors} vectors"] if spec.vectors != "float32" else [])


#: The languages of the paper's XQuAD-R pool (el and vi are its unseen-language check).
XQUAD_R_LANGUAGES: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")

DEFAULT_EVALUATIONS: tuple[EvalSpec, ...] = (
    # Every shipped sentence (train+dev+test) of the targets and the training languages: one hard pool.
    EvalSpec("flores", TARGET_LANGUAGES + PAPER_TRAIN_LANGUAGES, "all"),
    EvalSpec("afriqa", TARGET_LANGUAGES, "test"),
    EvalSpec("xquad-r", XQUAD_R_LANGUAGES, "eval"),
)


def eval_spec_from(data: Mapping[str, Any]) -> EvalSpec:
    """An eval set from its JSON object; ConfigError naming the setting that is unknown or of the wrong type."""
    if not isinstance(data, Mapping):
        raise ConfigError("evaluations", f"each eval set is an object like {{\"dataset\": \"flores\", ...}}, got {data!r}")
    values = dict(data)
    unknown = set(values) - {f.name for f in dataclasses.fields(EvalSpec)}
    if unknown:
        raise ConfigError("evaluations", f"{sorted(unknown)[0]!r} is not an eval-set setting")
    check_types(EvalSpec, values, where=f"evaluations[{values.get('dataset', '?')}].")
    values["languages"] = tuple(values.get("languages", ()))
    return EvalSpec(**values)

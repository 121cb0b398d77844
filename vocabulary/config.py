"""The one settings object of a run, and of a study that expands into runs.

A :class:`RunConfig` travels unchanged from the GUI form to the database to
the worker to the engine, so it must be immutable, JSON round-trippable and
self-validating. Its :attr:`RunConfig.run_id` is a stable hash of the fields
that change results, so resubmitting the same settings reuses finished work.

This module imports nothing heavy (no torch, no Qt): the GUI validates forms
with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from vocabulary.budget import BUDGETS, budget_label
from vocabulary.languages import LANGUAGE_NAMES, PAPER_TRAIN_LANGUAGES, TARGET_LANGUAGES
from vocabulary.model_specs import BM25_SPEC, bm25_label, canonical_bm25_spec, check_model_spec, is_bm25_spec
from vocabulary.printable import check_printable
from vocabulary.sources import (
    SOURCE_SAMPLINGS,
    describe_split,
    parse_source,
    split_size,
    trained_eval_languages,
    zero_shot_note,
)
from vocabulary.strategies import NO_TRAINING, STRATEGY_NAMES, strategy, strategy_label

#: Pooling modes, named as sentence-transformers names them (its ``1_Pooling/config.json``).
POOLINGS: tuple[str, ...] = ("mean", "cls", "max", "lasttoken", "mean_sqrt_len_tokens", "weightedmean")
DEFAULT_MODEL = "embedded:e5-small"
#: Where each encoder setting a run used came from, in the order they are consulted.
SOURCE_RUN = "run"
SOURCE_MODEL = "model folder"
SOURCE_CARD = "model card"
SOURCE_DEFAULT = "hybridscale default"
#: Which checkpoint a run keeps: its last one, or the one with the lowest dev loss (early stopping).
SELECTIONS: tuple[str, ...] = ("last", "best_dev")
#: Part of every training run's identity. Bumped when the same settings start to train something
#: else, so a finished run of the old procedure is never reused as if it were the new one. 2: batches
#: without shared positives, an exact hybrid share, no step at learning rate 0, XQuAD's dev articles
#: held out of its training split.
TRAINING_PROCEDURE = 2
#: Part of every run's identity, for the same reason: bumped when the same eval settings start to measure
#: something else. 2: trec_eval's own measures and query rule, full-depth AP, passages at their own length,
#: symmetric bitext encoding, macro "all" rows.
EVALUATION_PROCEDURE = 2

#: arXiv 2408.10536 as stated (§2.1 Eq. 1, §3.1): batch 100, AdamW lr 3e-5 and weight decay 0.01,
#: cosine similarity with no temperature (t = 1 in our InfoNCE), and the checkpoint with the lowest
#: validation loss. The paper gives no validation interval: ``dev_every`` 50 is ours.
PAPER_PRESET: Mapping[str, Any] = {
    "batch_size": 100, "learning_rate": 3e-5, "weight_decay": 0.01, "temperature": 1.0,
    "select": "best_dev", "dev_every": 50,
}
#: Named sets of training settings a study file can start from (``"template": {"preset": "paper", ...}``);
#: the model presets are :data:`vocabulary.models.PRESETS`.
TRAINING_PRESETS: Mapping[str, Mapping[str, Any]] = {"paper": PAPER_PRESET}
#: Seeds are stored in a SQL INTEGER column (signed 32 bits on PostgreSQL) and seed numpy (32 bits).
MAX_SEED = 2**31 - 1
#: A study name is repeated on every row of the CSV report; longer names are refused at submit.
MAX_STUDY_NAME = 500
#: What :attr:`RunConfig.run_id` makes: 16 lowercase hexadecimal digits.
_RUN_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class EncoderSettings:
    """How texts become vectors. ``None`` means "the base model's own".

    A sentence-transformers model folder defines its own pooling, Dense
    layers, normalisation, prompts and maximum length; a plain transformers
    folder gets :data:`PLAIN_MODEL_SETTINGS`. A value set here (by a run)
    overrides the model's (:func:`resolve_encoder_settings`).
    """

    pooling: str | None = None
    normalize: bool | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    max_length: int | None = None


#: A model without sentence-transformers files: the E5 recipe (mean pooling incl. ``<s>``/``</s>``,
#: L2, "query: "/"passage: ", 128 tokens), as every model was encoded before modules were read.
PLAIN_MODEL_SETTINGS = EncoderSettings("mean", True, "query: ", "passage: ", 128)


def resolve_encoder_settings(
    layers: Sequence[tuple[str, EncoderSettings]],
) -> tuple[EncoderSettings, dict[str, str]]:
    """Each setting from the first ``(source, settings)`` layer that sets it, and which source that was.

    Layers are given most authoritative first (the run, the model folder,
    the model card, the default); a setting no layer sets stays None.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for field_info in dataclasses.fields(EncoderSettings):
        for source, settings in layers:
            value = getattr(settings, field_info.name)
            if value is not None:
                values[field_info.name], sources[field_info.name] = value, source
                break
    return EncoderSettings(**values), sources


class ConfigError(ValueError):
    """A setting is invalid. ``field`` names it so a form can show the message beside it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Field annotation -> (test, what to say) for the settings a JSON file can get the type of wrong.
_TYPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "text"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "float": (_is_number, "a number"),
    "int | None": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "a whole number or null"),
    "float | None": (lambda v: v is None or _is_number(v), "a number or null"),
    "str | None": (lambda v: v is None or isinstance(v, str), "text or null"),
    "bool | None": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "str | tuple[str, ...]": (lambda v: isinstance(v, str) or (isinstance(v, (list, tuple)) and bool(v)
                                                               and all(isinstance(x, str) for x in v)),
                              "a text or a non-empty list of texts"),
    "tuple[str, ...]": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v),
                        "a list of texts"),
    "tuple[int, ...]": (lambda v: isinstance(v, (list, tuple))
                        and all(isinstance(x, int) and not isinstance(x, bool) for x in v), "a list of whole numbers"),
    "tuple[float, ...]": (lambda v: isinstance(v, (list, tuple)) and all(_is_number(x) for x in v),
                          "a list of numbers"),
}


def _check_types(cls: type, values: Mapping[str, Any], where: str = "") -> None:
    """Name the first setting of a JSON object whose value has the wrong type (before it fails obscurely)."""
    for field_info in dataclasses.fields(cls):
        check = _TYPE_CHECKS.get(str(field_info.type))
        if check is not None and field_info.name in values and not check[0](values[field_info.name]):
            raise ConfigError(f"{where}{field_info.name}", f"must be {check[1]}, got {values[field_info.name]!r}")


def _known_datasets(role: str) -> tuple[str, ...]:
    from vocabulary.datasets import dataset_ids

    return dataset_ids(role)


def _dataset_info(dataset: str):
    from vocabulary.datasets import dataset_info

    return dataset_info(dataset)


def _check_finite(cls: type, instance: object) -> None:
    """Refuse NaN and infinite numbers (JSON gives ``1e400`` as inf), which no range check below would."""
    for field_info in dataclasses.fields(cls):
        value = getattr(instance, field_info.name)
        if str(field_info.type) in ("float", "float | None") and value is not None and not math.isfinite(value):
            raise ConfigError(field_info.name, f"must be a finite number, got {value!r}")


def is_run_id(value: object) -> bool:
    """Whether ``value`` has the form of a :attr:`RunConfig.run_id` (safe as a folder name or URL part)."""
    return isinstance(value, str) and _RUN_ID.fullmatch(value) is not None


def check_run_id(value: object) -> str:
    """``value`` when it is a run id; otherwise ConfigError, before it can become a path or a URL."""
    if not is_run_id(value):
        raise ConfigError(
            "run_id", f"{value!r} is not a run id (16 hexadecimal digits, as hybridscale makes them): "
            "the database row was changed outside hybridscale; delete that run"
        )
    return value


def _check_languages(field_name: str, languages: tuple[str, ...]) -> None:
    if not languages:
        raise ConfigError(field_name, "choose at least one language")
    for lang in languages:
        if lang not in LANGUAGE_NAMES:
            raise ConfigError(
                field_name,
                f"unknown language {lang!r}; allowed: {', '.join(sorted(LANGUAGE_NAMES))}",
            )
    if len(set(languages)) != len(languages):
        raise ConfigError(field_name, "a language is listed twice")


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
    """

    dataset: str
    languages: tuple[str, ...]
    split: str = "test"
    max_queries: int | None = None
    path: str | None = None
    passage_max_length: int = 512
    symmetric: bool | None = None
    corpus: str | None = None

    def __post_init__(self) -> None:
        if self.symmetric is None:
            from vocabulary.datasets import DATASETS

            info = DATASETS.get(self.dataset)
            if info is not None:
                object.__setattr__(self, "symmetric", info.symmetric)

    def validate(self) -> None:
        known = _known_datasets("eval")
        if self.dataset not in known:
            raise ConfigError(
                "evaluations", f"unknown eval set {self.dataset!r}; allowed: {', '.join(known)}"
            )
        where = f"evaluations[{self.dataset}]"
        _check_languages(f"{where}.languages", self.languages)
        info = _dataset_info(self.dataset)
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

    @property
    def label(self) -> str:
        """The name metrics are stored under, e.g. ``flores/test``; it says what a plot shows.

        AfriQA says whether its corpus is the gold passages alone (a closed,
        easy set) or a Wikipedia collection; XQuAD-R says whose sentence
        boundaries it uses (ours are not the published LAReQA pool).
        """
        return f"{self.dataset}/{self.split}{_label_qualifier(self)}"


def _label_qualifier(spec: EvalSpec) -> str:
    if spec.dataset == "afriqa":
        return " (gold passages only)" if spec.corpus is None else " (Wikipedia collection, answer match)"
    if spec.dataset == "xquad-r":
        if spec.path is not None:
            return " (LAReQA sentences)"
        articles = "held-out articles, " if spec.split == "eval" else ""
        return f" ({articles}own sentence splitter)"
    return ""


#: The languages of the paper's XQuAD-R pool (el and vi are its unseen-language check).
XQUAD_R_LANGUAGES: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")

DEFAULT_EVALUATIONS: tuple[EvalSpec, ...] = (
    # Every shipped sentence (train+dev+test) of the targets and the training languages: one hard pool.
    EvalSpec("flores", TARGET_LANGUAGES + PAPER_TRAIN_LANGUAGES, "all"),
    EvalSpec("afriqa", TARGET_LANGUAGES, "test"),
    EvalSpec("xquad-r", XQUAD_R_LANGUAGES, "eval"),
)

#: Fields that change how a run is executed or stored, not what it computes.
_OPERATIONAL_FIELDS = frozenset({"checkpoint_every", "eval_batch_size", "compile", "keep_model"})
#: Fields that matter for an evaluation-only run (everything else is training).
_EVAL_ONLY_FIELDS = frozenset(
    {"model", "pooling", "query_prefix", "passage_prefix", "max_length", "evaluations", "top_k"}
)
#: Fields that also matter for an evaluation-only run that evaluates through the frozen-prefix cache.
_FROZEN_CACHE_FIELDS = frozenset({"frozen_cache", "trainable_layers"})


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training + evaluation run.

    ``train_size`` counts parallel question groups: with L training languages
    a size of N makes N x L (question, passage) pairs available. Size 0 means
    no training (strategy ``none``): the run only evaluates ``model``.
    """

    model: str = DEFAULT_MODEL
    strategy: str = "hybrid"
    alpha: float | None = 0.5
    train_size: int = 675
    #: Batch order, initialisation noise and dropout.
    seed: int = 0
    #: Which groups a size draws (nested across sizes); None: the same as ``seed``, as before it existed.
    data_seed: int | None = None
    #: One training source or several, each ``NAME`` or ``NAME:PATH`` (vocabulary.sources); one is kept as text.
    train_dataset: str | tuple[str, ...] = "xquad"
    #: How a run with several sources picks each batch's source: ``proportional`` to size, or ``round_robin``.
    source_sampling: str = "proportional"
    #: Training on an evaluated language on purpose (the "in-language data" ablation): labelled as such,
    #: not as "not zero-shot".
    ablation: bool = False
    train_languages: tuple[str, ...] = PAPER_TRAIN_LANGUAGES
    evaluations: tuple[EvalSpec, ...] = DEFAULT_EVALUATIONS
    # Optimisation. The paper's (arXiv 2408.10536): learning_rate, weight_decay (and AdamW). Ours, for a
    # CPU: batch_size 32 (the paper's 100 is PAPER_PRESET) and temperature 0.05 (sentence-transformers'
    # scale 20; the paper has none, i.e. 1.0). Ours because the paper states none: the budget, warm-up,
    # gradient clipping and max_length.
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    batch_size: int = 32
    temperature: float = 0.05
    #: How much to train (vocabulary.budget): ``epochs`` of the subset, a fixed number of ``steps``, or of ``pairs``.
    budget: str = "epochs"
    epochs: float = 1.0
    steps: int | None = None
    pairs: int | None = None
    #: A cap on any budget.
    max_steps: int | None = None
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    symmetric_loss: bool = False
    #: lambda of the semantic contrastive term; used (and part of the identity) by ``contrastive`` runs only.
    contrastive_weight: float | None = 0.1  # null (older files) means the default
    #: Add the source's hard negative of each pair to the loss, where the training source provides them.
    hard_negatives: bool = True
    #: Steps between dev-loss evaluations on held-out groups of the training source (None: no dev loss).
    dev_every: int | None = None
    #: ``last`` keeps the final weights; ``best_dev`` those with the lowest dev loss.
    select: str = "last"
    # Encoder: None is the base model's own (sentence-transformers files; else PLAIN_MODEL_SETTINGS).
    max_length: int | None = None
    pooling: str | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    freeze_embeddings: bool = False
    trainable_layers: int | None = None
    #: Run the layers below ``trainable_layers`` without dropout, their output rounded to float16, computed once
    #: per text and cached for every run of the machine (engine.frozen_prefix). Part of the identity when on.
    frozen_cache: bool = False
    grad_cache_chunk: int | None = None
    # Evaluation.
    top_k: int = 100
    # Operational: never part of the run's identity.
    checkpoint_every: int = 50
    eval_batch_size: int = 64
    compile: bool = False
    #: Whether a finished run keeps its trained model folder (its checkpoint is always deleted once done).
    keep_model: bool = True

    def __post_init__(self) -> None:
        # Tuples, not lists, whatever the caller passed (JSON gives lists).
        object.__setattr__(self, "train_languages", tuple(self.train_languages))
        if isinstance(self.train_dataset, (list, tuple)):
            sources = tuple(self.train_dataset)
            object.__setattr__(self, "train_dataset", sources[0] if len(sources) == 1 else sources)
        object.__setattr__(
            self,
            "evaluations",
            tuple(e if isinstance(e, EvalSpec) else _eval_spec(e) for e in self.evaluations),
        )
        # alpha is blanked where the strategy has no use for it, so it cannot split identities
        # (a study's alphas list, not its template, gives hybrid runs theirs). contrastive_weight
        # is kept, so a study template can carry it to its contrastive runs;
        # identity() and the loss ignore it elsewhere.
        if not self._strategy_uses("uses_alpha"):
            object.__setattr__(self, "alpha", None)
        if self.contrastive_weight is None:  # a saved null means the default
            object.__setattr__(self, "contrastive_weight", 0.1)

    @property
    def train_sources(self) -> tuple[str, ...]:
        """The training sources as a tuple, however many there are."""
        return (self.train_dataset,) if isinstance(self.train_dataset, str) else self.train_dataset

    @property
    def trained_eval_languages(self) -> tuple[str, ...]:
        """Evaluated languages that a training source of this run trains on (their results are not zero-shot)."""
        if not self.is_training:
            return ()
        return trained_eval_languages(self.train_sources, self.train_languages, self.evaluations)

    @property
    def zero_shot_note(self) -> str:
        """``not zero-shot: sw`` (or ``ablation: trains on sw``), empty for a zero-shot run."""
        return zero_shot_note(self.trained_eval_languages, self.ablation)

    def train_split(self, source: str) -> str:
        """The split of ``source`` (a name) this run trains on (XQuAD widens when XQuAD-R is not evaluated)."""
        evaluated = {spec.dataset for spec in self.evaluations}
        return _dataset_info(source).train_split(evaluated, self.dev_every is not None)

    @property
    def max_train_size(self) -> int | None:
        """The groups the registry declares for the run's training splits, summed (None: a source's is unknown)."""
        sizes = []
        for spec in self.train_sources:
            name = parse_source(spec)[0]
            sizes.append(_dataset_info(name).train_groups.get(self.train_split(name)))
        return None if None in sizes else sum(sizes)

    @property
    def subset_seed(self) -> int:
        """The seed of the training subset: ``data_seed``, or ``seed`` when that is not set."""
        return self.seed if self.data_seed is None else self.data_seed

    @property
    def budget_label(self) -> str:
        return budget_label(dataclasses.asdict(self))

    def _strategy_uses(self, flag: str) -> bool:
        """A flag of the strategy's table entry; False for an unknown strategy (validate() reports it)."""
        try:
            return bool(getattr(strategy(self.strategy), flag))
        except ValueError:
            return False

    # ---- validation -------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Raise :class:`ConfigError` naming the first bad field; return self."""
        _check_finite(RunConfig, self)
        if not self.model.strip():
            raise ConfigError("model", "give a model: 'embedded:e5-small', a folder or a hub name")
        try:
            check_model_spec(self.model)
        except ValueError as exc:
            raise ConfigError("model", str(exc)) from None
        for name in ("seed", "data_seed"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_SEED:
                raise ConfigError(name, f"{value} is outside 0..{MAX_SEED}")
        if is_bm25_spec(self.model) and self.strategy != NO_TRAINING:
            raise ConfigError("model", "bm25 is an evaluation-only reference: use it with strategy 'none' and size 0")
        if self.strategy == NO_TRAINING:
            if self.train_size != 0:
                raise ConfigError("train_size", "an evaluation-only run (strategy 'none') has size 0")
        elif self.strategy not in STRATEGY_NAMES:
            raise ConfigError(
                "strategy",
                f"unknown strategy {self.strategy!r}; allowed: {', '.join(STRATEGY_NAMES)}",
            )
        elif self.train_size < 1:
            raise ConfigError("train_size", "must be at least 1 for a training run (0 only with strategy 'none')")
        if self._strategy_uses("uses_alpha") and not (self.alpha is not None and 0.0 <= self.alpha <= 1.0):
            raise ConfigError("alpha", "must be between 0 and 1 (the share of monolingual batches)")
        if self.strategy != NO_TRAINING:
            self._validate_training()
        if not self.evaluations:
            raise ConfigError("evaluations", "choose at least one evaluation set")
        for spec in self.evaluations:
            spec.validate()
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise ConfigError(
                "pooling",
                f"unknown pooling {self.pooling!r}; allowed: {', '.join(POOLINGS)}, or null for the model's own",
            )
        if self.max_length is not None and not 8 <= self.max_length <= 512:
            raise ConfigError("max_length", "must be between 8 and 512 tokens, or null for the model's own")
        if self.top_k < 1:
            raise ConfigError("top_k", "must be at least 1")
        if self.checkpoint_every < 1:
            raise ConfigError("checkpoint_every", "must be at least 1 step")
        if self.eval_batch_size < 1:
            raise ConfigError("eval_batch_size", "must be at least 1")
        if self.strategy != NO_TRAINING:
            self._validate_against_the_data()
        return self

    def _validate_against_the_data(self) -> None:
        """The training languages and size the registry says the training split has (checked last,
        so a form shows a plain mistake in another field first)."""
        infos = [_dataset_info(parse_source(spec)[0]) for spec in self.train_sources]
        offered = sorted({lang for info in infos for lang in info.languages})
        missing = [lang for lang in self.train_languages if lang not in offered]
        if missing:
            names = "+".join(info.id for info in infos)
            raise ConfigError("train_languages", f"{names} has no language {missing[0]!r}; available: "
                              f"{', '.join(offered)}")
        for info in infos:
            if not set(self.train_languages).intersection(info.languages):
                raise ConfigError("train_languages", f"none of them is in {info.id} ({', '.join(info.languages)}); "
                                  "add one of its languages or remove the source")
        maximum = self.max_train_size
        if maximum is not None and self.train_size > maximum:
            names = " + ".join(info.id for info in infos)
            raise ConfigError(
                "train_size",
                f"size {self.train_size} is larger than the {maximum} question groups of {names}'s "
                f"training split; use at most {maximum}",
            )

    def _validate_sources(self) -> None:
        if not self.train_sources:
            raise ConfigError("train_dataset", "give at least one training source")
        known = _known_datasets("train")
        names = [parse_source(spec) for spec in self.train_sources]
        for name, path in names:
            if name not in known:
                raise ConfigError("train_dataset", f"unknown training set {name!r}; allowed: {', '.join(known)}")
            if path is None and _dataset_info(name).needs_path:
                raise ConfigError("train_dataset", f"{name} needs a path: write it as '{name}:/path/to/your/file'")
        if len(set(names)) != len(names):
            raise ConfigError("train_dataset", "a training source is listed twice")
        if self.source_sampling not in SOURCE_SAMPLINGS:
            raise ConfigError("source_sampling", f"unknown policy {self.source_sampling!r}; allowed: "
                              f"{', '.join(SOURCE_SAMPLINGS)}")

    def _validate_training(self) -> None:
        self._validate_sources()
        _check_languages("train_languages", self.train_languages)
        all_monolingual = all(_dataset_info(parse_source(spec)[0]).monolingual for spec in self.train_sources)
        if strategy(self.strategy).needs_two_languages and len(self.train_languages) < 2 and not all_monolingual:
            raise ConfigError("train_languages", f"strategy {self.strategy!r} needs at least two languages")
        if not 0 < self.learning_rate <= 1:
            raise ConfigError("learning_rate", f"must be greater than 0 and at most 1, got {self.learning_rate:g} "
                              "(the paper uses 3e-5)")
        positive = {
            "batch_size": self.batch_size,
            "temperature": self.temperature,
            "epochs": self.epochs,
            "grad_clip": self.grad_clip,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(name, "must be greater than 0")
        if self.batch_size < 2:
            raise ConfigError("batch_size", "must be at least 2 (in-batch negatives need a second pair)")
        if self.train_size < self.batch_size:
            raise ConfigError(
                "train_size",
                f"size {self.train_size} is smaller than batch_size {self.batch_size}: a batch needs that many "
                "distinct question groups; raise the size or lower batch_size",
            )
        if self.weight_decay < 0:
            raise ConfigError("weight_decay", "must be 0 or more")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError("warmup_ratio", "must be in [0, 1)")
        self._validate_budget()
        if not self.contrastive_weight >= 0:
            raise ConfigError("contrastive_weight", "must be 0 or more")
        if self.trainable_layers is not None and self.trainable_layers < 1:
            raise ConfigError("trainable_layers", "must be at least 1 (a run needs something to train), or empty for every layer")
        if self.frozen_cache and self.trainable_layers is None:
            raise ConfigError("frozen_cache", "caches the layers below trainable_layers: set trainable_layers too")
        if self.grad_cache_chunk is not None and self.grad_cache_chunk < 1:
            raise ConfigError("grad_cache_chunk", "must be at least 1, or empty to disable gradient caching")
        self._validate_selection()
        self._check_no_training_text_in_evaluations()

    def _validate_budget(self) -> None:
        if self.budget not in BUDGETS:
            raise ConfigError("budget", f"unknown budget {self.budget!r}; allowed: {', '.join(BUDGETS)}")
        for name in ("steps", "pairs"):
            value = getattr(self, name)
            if self.budget == name and (value is None or value < 1):
                raise ConfigError(name, f"budget {name!r} needs {name}: a whole number of at least 1")
            if self.budget != name and value is not None:
                raise ConfigError(name, f"is only used with budget {name!r} (this run's is {self.budget!r}); "
                                        f"set budget to {name!r} or leave {name} empty")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps", "must be at least 1, or empty for no cap")

    def _validate_selection(self) -> None:
        if self.select not in SELECTIONS:
            raise ConfigError("select", f"unknown selection {self.select!r}; allowed: {', '.join(SELECTIONS)}")
        if self.dev_every is None:
            if self.select == "best_dev":
                raise ConfigError("dev_every",
                                  "select 'best_dev' needs a dev loss: set dev_every (steps between evaluations)")
            return
        if self.dev_every < 1:
            raise ConfigError("dev_every", "must be at least 1 step, or empty for no dev loss")
        first = parse_source(self.train_sources[0])[0]
        dev_split = _dataset_info(first).dev_split
        if dev_split is None:
            raise ConfigError(
                "dev_every", f"{first} (the first training source, whose dev split the dev loss uses) has no dev "
                "split; leave dev_every empty or list a source with one first")
        for spec in self.evaluations:
            if spec.dataset == first and spec.split == dev_split:
                raise ConfigError(
                    f"evaluations[{spec.dataset}].split",
                    f"{spec.label} is the dev split model selection uses; evaluate on another split",
                )

    def _check_no_training_text_in_evaluations(self) -> None:
        """An eval split of a training source must not hold the sentences trained on (split 'train' or 'all')."""
        from vocabulary.datasets import DATASETS

        for name in self.train_sources:
            self._check_not_evaluated_on(DATASETS.get(parse_source(name)[0]))

    def _check_not_evaluated_on(self, trained) -> None:
        from vocabulary.datasets import DATASETS

        for spec in self.evaluations:
            info = DATASETS.get(spec.dataset)
            if trained is not None and info is not None and info.source == trained.source \
                    and spec.split in ("train", "all"):
                selection = info.dev_split if self.dev_every is not None else None
                others = ", ".join(s for s in info.splits if s not in ("train", "all", selection))
                raise ConfigError(
                    f"evaluations[{spec.dataset}].split",
                    f"split {spec.split!r} holds the {trained.id} training sentences this run trains on; "
                    f"evaluate on {others}",
                )

    # ---- identity and JSON ------------------------------------------------
    @property
    def is_training(self) -> bool:
        return self.strategy != NO_TRAINING

    @property
    def evaluates_through_frozen_cache(self) -> bool:
        """An evaluation-only run that computes its frozen layers as the study's ``frozen_cache`` runs do.

        The untrained reference of a frozen-cache study then differs from the
        trained runs by their training alone (not also by the float16 rounding
        of the frozen output), and it fills the cache with every eval text, so
        the first trained run does not pay for the frozen layers again.
        """
        return (not self.is_training and self.frozen_cache and self.trainable_layers is not None
                and not is_bm25_spec(self.model))

    @property
    def encoder_settings(self) -> EncoderSettings:
        """The run's overrides; always L2-normalised, since the paper scores with cosine similarity."""
        return EncoderSettings(self.pooling, True, self.query_prefix, self.passage_prefix, self.max_length)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        """A config from JSON values; ``preset`` names a :data:`TRAINING_PRESETS` entry the other values override."""
        data = dict(data)
        if "preset" in data:
            name = data.pop("preset")
            if name not in TRAINING_PRESETS:
                raise ConfigError("preset", f"unknown preset {name!r}; allowed: {', '.join(TRAINING_PRESETS)}")
            data = {**TRAINING_PRESETS[name], **data}
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(sorted(unknown)[0], "is not a run setting")
        _check_types(cls, data)
        if not isinstance(data.get("evaluations", []), (list, tuple)):
            raise ConfigError("evaluations", "must be a list of eval-set objects")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(json.loads(text))

    def identity(self) -> dict[str, Any]:
        """The fields that determine results (what :attr:`run_id` hashes).

        Settings a run does not use are blanked so they cannot split
        identities: the budget values of the other budget kinds, and
        ``dev_every`` when the dev loss is only watched (``select: last``).
        The subset seed is the effective one, so ``data_seed`` null and
        ``data_seed`` = ``seed`` are the same run.
        """
        data = {k: v for k, v in self.to_dict().items() if k not in _OPERATIONAL_FIELDS}
        data["train_dataset"] = list(data["train_dataset"]) if isinstance(data["train_dataset"], tuple) else (
            data["train_dataset"])
        if not self._strategy_uses("uses_contrastive_weight"):
            data["contrastive_weight"] = None
        if not self.is_training:
            cached = self.evaluates_through_frozen_cache
            data = {k: v for k, v in data.items() if k in _EVAL_ONLY_FIELDS or (cached and k in _FROZEN_CACHE_FIELDS)}
            data["evaluation"] = EVALUATION_PROCEDURE
            if is_bm25_spec(self.model):  # no encoder: its settings cannot split BM25 runs
                data.update(model=canonical_bm25_spec(self.model), pooling=None, query_prefix=None,
                            passage_prefix=None, max_length=None)
            return data
        data["data_seed"] = self.subset_seed
        for name in BUDGETS:
            if name != self.budget:
                data[name] = None
        if self.select == "last":
            data["dev_every"] = None
        if not self.frozen_cache:  # off is how every run trained before the setting existed: same ids
            del data["frozen_cache"]
        data["procedure"] = TRAINING_PROCEDURE
        # Settings that did not exist when one-source runs got their ids: left out where they change nothing.
        if isinstance(self.train_dataset, str):
            del data["source_sampling"]
        if not self.ablation:
            del data["ablation"]
        splits = [self.train_split(parse_source(spec)[0]) for spec in self.train_sources]
        if any(split != "train" for split in splits):
            data["train_splits"] = splits
        data["evaluation"] = EVALUATION_PROCEDURE
        return data

    @property
    def run_id(self) -> str:
        canonical = json.dumps(self.identity(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human label: ``hybrid α=0.5 n=1000 seed=0``."""
        if not self.is_training:
            return bm25_label(self.model) if is_bm25_spec(self.model) else f"untrained {self.model}"
        label = f"{strategy_label(self.strategy, self.alpha)} n={self.train_size} seed={self.seed}"
        if self.data_seed is not None and self.data_seed != self.seed:
            label += f" data_seed={self.data_seed}"
        label = label if self.budget == "epochs" else f"{label} {self.budget_label}"
        return f"{label} [{self.zero_shot_note}]" if self.zero_shot_note else label

    @property
    def size_split(self) -> str:
        """How ``train_size`` is split across several sources (``xquad 47 + miracl-train 53``); empty for one."""
        if len(self.train_sources) == 1 or not self.is_training:
            return ""
        names = [parse_source(spec)[0] for spec in self.train_sources]
        sizes = [_dataset_info(name).train_groups.get(self.train_split(name)) for name in names]
        if None in sizes:
            return "in proportion to the sources' sizes (counted when the run starts)"
        return describe_split(names, split_size(self.train_size, sizes))


def _eval_spec(data: Mapping[str, Any]) -> EvalSpec:
    if not isinstance(data, Mapping):
        raise ConfigError("evaluations", f"each eval set is an object like {{\"dataset\": \"flores\", ...}}, got {data!r}")
    values = dict(data)
    unknown = set(values) - {f.name for f in dataclasses.fields(EvalSpec)}
    if unknown:
        raise ConfigError("evaluations", f"{sorted(unknown)[0]!r} is not an eval-set setting")
    _check_types(EvalSpec, values, where=f"evaluations[{values.get('dataset', '?')}].")
    values["languages"] = tuple(values.get("languages", ()))
    return EvalSpec(**values)


@dataclass(frozen=True)
class StudyConfig:
    """A grid of runs: strategies x alphas (hybrid only) x training sizes x seeds [x data seeds].

    ``template`` holds every other setting; ``include_baseline`` adds one
    evaluation-only run of the untrained model (the size-0 point),
    ``include_bm25`` one of BM25 (model ``bm25``, the lexical reference) on
    the template's eval sets.
    ``data_seeds`` empty: each run's subset follows its seed (the template's
    ``data_seed`` decides, null meaning the seed); otherwise every seed is
    crossed with every data seed, so a study can separate the spread due to
    the data drawn from the spread due to optimisation.
    The default sizes fit XQuAD's 698 training groups and grow by a factor of 3.
    """

    name: str
    strategies: tuple[str, ...] = ("mono", "cross", "hybrid")
    alphas: tuple[float, ...] = (0.5,)
    train_sizes: tuple[int, ...] = (75, 225, 675)
    seeds: tuple[int, ...] = (0,)
    data_seeds: tuple[int, ...] = ()
    include_baseline: bool = True
    include_bm25: bool = False
    template: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        for name in ("strategies", "alphas", "train_sizes", "seeds", "data_seeds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not isinstance(self.template, RunConfig):
            object.__setattr__(self, "template", RunConfig.from_dict(self.template))

    def validate(self) -> "StudyConfig":
        if not self.name.strip():
            raise ConfigError("name", "give the study a name")
        if len(self.name) > MAX_STUDY_NAME:
            raise ConfigError("name", f"{len(self.name)} characters; use at most {MAX_STUDY_NAME}")
        if (unprintable := check_printable(self.name)) is not None:
            raise ConfigError("name", unprintable)
        if not self.strategies:
            raise ConfigError("strategies", f"choose at least one of {', '.join(STRATEGY_NAMES)}")
        for name in self.strategies:
            if name not in STRATEGY_NAMES:
                raise ConfigError(
                    "strategies", f"unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}"
                )
        if not self.alphas and any(strategy(name).uses_alpha for name in self.strategies):
            raise ConfigError("alphas", "hybrid needs at least one alpha")
        for alpha in self.alphas:
            if not 0.0 <= alpha <= 1.0:
                raise ConfigError("alphas", f"alpha {alpha:g} is outside [0, 1]")
        if not self.train_sizes:
            raise ConfigError("train_sizes", "give at least one training size")
        for size in self.train_sizes:
            if size < 1:
                raise ConfigError("train_sizes", f"size {size} must be at least 1 (the untrained point is the baseline)")
        if not self.seeds:
            raise ConfigError("seeds", "give at least one seed")
        for name in ("seeds", "data_seeds"):
            outside = [seed for seed in getattr(self, name) if not 0 <= seed <= MAX_SEED]
            if outside:
                raise ConfigError(name, f"seed {', '.join(map(str, outside))} is outside 0..{MAX_SEED}")
        for name in ("strategies", "alphas", "train_sizes", "seeds", "data_seeds"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ConfigError(name, "a value is listed twice")
        # Every size below the batch, named at the batch size (one setting), before the first run refuses its own.
        smaller = [size for size in self.train_sizes if size < self.template.batch_size]
        if smaller and self.template.batch_size >= 2:
            raise ConfigError(
                "batch_size",
                f"batch size {self.template.batch_size} is larger than training size "
                f"{', '.join(map(str, smaller))}: a batch needs that many distinct question groups; use a batch size "
                f"of at most {min(self.train_sizes)} or larger sizes",
            )
        for run in self.expand():
            run.validate()
        return self

    def expand(self) -> list[RunConfig]:
        """One RunConfig per (strategy, alpha for hybrid, size, seed, data seed); the references (untrained, BM25) first."""
        runs: list[RunConfig] = []
        if self.include_baseline:
            runs.append(dataclasses.replace(self.template, strategy=NO_TRAINING, train_size=0, alpha=None))
        if self.include_bm25:
            runs.append(dataclasses.replace(self.template, model=BM25_SPEC, strategy=NO_TRAINING, train_size=0,
                                            alpha=None))
        data_seeds = self.data_seeds or (self.template.data_seed,)
        for name, size, seed, data_seed in itertools.product(self.strategies, self.train_sizes, self.seeds, data_seeds):
            alphas = self.alphas if strategy(name).uses_alpha else (None,)
            for alpha in alphas:
                runs.append(dataclasses.replace(
                    self.template, strategy=name, alpha=alpha, train_size=size, seed=seed, data_seed=data_seed
                ))
        return runs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StudyConfig":
        values = dict(data)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(sorted(unknown)[0], "is not a study setting")
        if "name" not in values:
            raise ConfigError("name", "a study file needs a name")
        _check_types(cls, values)
        if "template" in values:
            if not isinstance(values["template"], Mapping):
                raise ConfigError("template", "must be an object of run settings")
            values["template"] = RunConfig.from_dict(values["template"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> "StudyConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("study", f"not valid JSON ({exc.msg} at line {exc.lineno}); fix the file") from exc
        if not isinstance(data, dict):
            raise ConfigError("study", "a study file holds one JSON object")
        return cls.from_dict(data)

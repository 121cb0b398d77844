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
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from vocabulary.languages import LANGUAGE_NAMES, PAPER_TRAIN_LANGUAGES, TARGET_LANGUAGES
from vocabulary.strategies import NO_TRAINING, STRATEGY_NAMES, strategy, strategy_label

#: Pooling modes, named as sentence-transformers names them (its ``1_Pooling/config.json``).
POOLINGS: tuple[str, ...] = ("mean", "cls", "max", "lasttoken", "mean_sqrt_len_tokens", "weightedmean")
DEFAULT_MODEL = "embedded:e5-small"
#: Where each encoder setting a run used came from, in the order they are consulted.
SOURCE_RUN = "run"
SOURCE_MODEL = "model folder"
SOURCE_CARD = "model card"
SOURCE_DEFAULT = "hybridscale default"


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
_OPERATIONAL_FIELDS = frozenset({"checkpoint_every", "eval_batch_size", "compile"})
#: Fields that matter for an evaluation-only run (everything else is training).
_EVAL_ONLY_FIELDS = frozenset(
    {"model", "pooling", "query_prefix", "passage_prefix", "max_length", "evaluations", "top_k"}
)


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
    train_size: int = 1000
    seed: int = 0
    train_dataset: str = "xquad"
    train_languages: tuple[str, ...] = PAPER_TRAIN_LANGUAGES
    evaluations: tuple[EvalSpec, ...] = DEFAULT_EVALUATIONS
    # Optimisation (defaults from arXiv 2408.10536).
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    batch_size: int = 32
    temperature: float = 0.05
    epochs: float = 1.0
    max_steps: int | None = None
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    symmetric_loss: bool = False
    #: lambda of the language-contrastive term; used (and part of the identity) by ``contrastive`` runs only.
    contrastive_weight: float | None = 0.1  # null (older files) means the default
    # Encoder: None is the base model's own (sentence-transformers files; else PLAIN_MODEL_SETTINGS).
    max_length: int | None = None
    pooling: str | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    freeze_embeddings: bool = False
    trainable_layers: int | None = None
    grad_cache_chunk: int | None = None
    # Evaluation.
    top_k: int = 100
    # Operational: never part of the run's identity.
    checkpoint_every: int = 50
    eval_batch_size: int = 64
    compile: bool = False

    def __post_init__(self) -> None:
        # Tuples, not lists, whatever the caller passed (JSON gives lists).
        object.__setattr__(self, "train_languages", tuple(self.train_languages))
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

    def _strategy_uses(self, flag: str) -> bool:
        """A flag of the strategy's table entry; False for an unknown strategy (validate() reports it)."""
        try:
            return bool(getattr(strategy(self.strategy), flag))
        except ValueError:
            return False

    # ---- validation -------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Raise :class:`ConfigError` naming the first bad field; return self."""
        if not self.model.strip():
            raise ConfigError("model", "give a model: 'embedded:e5-small', a folder or a hub name")
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
        if self.seed < 0:
            raise ConfigError("seed", f"seed {self.seed} is negative; seeds are 0 or more")
        if self._strategy_uses("uses_alpha") and not (self.alpha is not None and 0.0 <= self.alpha <= 1.0):
            raise ConfigError("alpha", "must be between 0 and 1 (probability of a monolingual batch)")
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
        return self

    def _validate_training(self) -> None:
        known = _known_datasets("train")
        if self.train_dataset not in known:
            raise ConfigError(
                "train_dataset", f"unknown training set {self.train_dataset!r}; allowed: {', '.join(known)}"
            )
        _check_languages("train_languages", self.train_languages)
        if strategy(self.strategy).needs_two_languages and len(self.train_languages) < 2:
            raise ConfigError("train_languages", f"strategy {self.strategy!r} needs at least two languages")
        positive = {
            "learning_rate": self.learning_rate,
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
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps", "must be at least 1, or empty for whole epochs")
        if not self.contrastive_weight >= 0:
            raise ConfigError("contrastive_weight", "must be 0 or more")
        if self.trainable_layers is not None and self.trainable_layers < 1:
            raise ConfigError("trainable_layers", "must be at least 1 (a run needs something to train), or empty for every layer")
        if self.grad_cache_chunk is not None and self.grad_cache_chunk < 1:
            raise ConfigError("grad_cache_chunk", "must be at least 1, or empty to disable gradient caching")
        self._check_no_training_text_in_evaluations()

    def _check_no_training_text_in_evaluations(self) -> None:
        """An eval split of the training source must not hold the sentences trained on (split 'train' or 'all')."""
        from vocabulary.datasets import DATASETS

        trained = DATASETS.get(self.train_dataset)
        for spec in self.evaluations:
            info = DATASETS.get(spec.dataset)
            if trained is not None and info is not None and info.source == trained.source \
                    and spec.split in ("train", "all"):
                others = ", ".join(s for s in info.splits if s not in ("train", "all"))
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
    def encoder_settings(self) -> EncoderSettings:
        """The run's overrides; always L2-normalised, since the paper scores with cosine similarity."""
        return EncoderSettings(self.pooling, True, self.query_prefix, self.passage_prefix, self.max_length)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
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
        """The fields that determine results (what :attr:`run_id` hashes)."""
        data = {k: v for k, v in self.to_dict().items() if k not in _OPERATIONAL_FIELDS}
        if not self._strategy_uses("uses_contrastive_weight"):
            data["contrastive_weight"] = None
        if not self.is_training:
            data = {k: v for k, v in data.items() if k in _EVAL_ONLY_FIELDS}
        return data

    @property
    def run_id(self) -> str:
        canonical = json.dumps(self.identity(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human label: ``hybrid α=0.5 n=1000 seed=0``."""
        if not self.is_training:
            return f"untrained {self.model}"
        return f"{strategy_label(self.strategy, self.alpha)} n={self.train_size} seed={self.seed}"


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
    """A grid of runs: strategies x alphas (hybrid only) x training sizes x seeds.

    ``template`` holds every other setting; ``include_baseline`` adds one
    evaluation-only run of the untrained model (the size-0 point).
    """

    name: str
    strategies: tuple[str, ...] = ("mono", "cross", "hybrid")
    alphas: tuple[float, ...] = (0.5,)
    train_sizes: tuple[int, ...] = (250, 500, 1000)
    seeds: tuple[int, ...] = (0,)
    include_baseline: bool = True
    template: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        for name in ("strategies", "alphas", "train_sizes", "seeds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not isinstance(self.template, RunConfig):
            object.__setattr__(self, "template", RunConfig.from_dict(self.template))

    def validate(self) -> "StudyConfig":
        if not self.name.strip():
            raise ConfigError("name", "give the study a name")
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
        negative = [seed for seed in self.seeds if seed < 0]
        if negative:
            raise ConfigError("seeds", f"seed {', '.join(map(str, negative))} is negative; seeds are 0 or more")
        for name in ("strategies", "alphas", "train_sizes", "seeds"):
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
        """One RunConfig per (strategy, alpha for hybrid, size, seed), baseline first."""
        runs: list[RunConfig] = []
        if self.include_baseline:
            runs.append(dataclasses.replace(self.template, strategy=NO_TRAINING, train_size=0, alpha=None))
        for name, size, seed in itertools.product(self.strategies, self.train_sizes, self.seeds):
            alphas = self.alphas if strategy(name).uses_alpha else (None,)
            for alpha in alphas:
                runs.append(
                    dataclasses.replace(self.template, strategy=name, alpha=alpha, train_size=size, seed=seed)
                )
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

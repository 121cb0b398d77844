"""The one settings object of a run, and of a study that expands into runs.

A :class:`RunConfig` travels unchanged from the GUI form to the database to
the worker to the engine, so it must be immutable, JSON round-trippable and
self-validating. Its :attr:`RunConfig.run_id` is a stable hash of the fields
that change results, so resubmitting the same settings reuses finished work.

This module imports nothing heavy (no torch, no Qt): the GUI validates forms
with it. Its parts live by concept in their own modules (what each setting
is: :mod:`vocabulary.settings`; encoder settings:
:mod:`vocabulary.encoder_settings`; eval sets: :mod:`vocabulary.eval_specs`;
errors and checks: :mod:`vocabulary.checks`); this module stays the one import
path for all of them (:data:`__all__`), so code that reads settings needs one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from vocabulary.budget import BUDGETS, budget_label
from vocabulary.checks import (
    ConfigError,
    check_finite,
    check_languages,
    check_run_id,
    check_types,
    dataset_entry,
    is_run_id,
    known_datasets,
)
from vocabulary.encoder_settings import (
    PLAIN_MODEL_SETTINGS,
    POOLINGS,
    SOURCE_CARD,
    SOURCE_DEFAULT,
    SOURCE_MODEL,
    SOURCE_RUN,
    EncoderSettings,
    resolve_encoder_settings,
)
from vocabulary.eval_specs import DEFAULT_EVALUATIONS, XQUAD_R_LANGUAGES, EvalSpec, eval_spec_from
from vocabulary.languages import PAPER_TRAIN_LANGUAGES
from vocabulary.model_specs import BM25_SPEC, bm25_label, canonical_bm25_spec, check_model_spec, is_bm25_spec
from vocabulary.printable import check_printable
from vocabulary.settings import MODELS_OWN, FormField, names_with_role, setting
from vocabulary.sources import (
    SOURCE_SAMPLINGS,
    describe_split,
    parse_source,
    split_size,
    trained_eval_languages,
    zero_shot_note,
)
from vocabulary.strategies import NO_TRAINING, STRATEGIES, strategy, strategy_label

__all__ = [
    "DEFAULT_EVALUATIONS", "DEFAULT_MODEL", "EVALUATION_PROCEDURE", "MAX_SEED", "MAX_STUDY_NAME",
    "PAPER_PRESET", "PLAIN_MODEL_SETTINGS", "POOLINGS", "SELECTIONS", "SOURCE_CARD", "SOURCE_DEFAULT", "SOURCE_MODEL",
    "SOURCE_RUN", "TRAINING_PRESETS", "TRAINING_PROCEDURE", "XQUAD_R_LANGUAGES", "ConfigError", "EncoderSettings",
    "EvalSpec", "RunConfig", "StudyConfig", "check_run_id", "is_run_id", "resolve_encoder_settings",
]

DEFAULT_MODEL = "embedded:e5-small"
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


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training + evaluation run.

    ``train_size`` counts parallel question groups: with L training languages
    a size of N makes N x L (question, passage) pairs available. Size 0 means
    no training (strategy ``none``): the run only evaluates ``model``.
    """

    model: str = setting(DEFAULT_MODEL, role="evaluation", csv=True)
    strategy: str = setting("hybrid", csv=True)
    alpha: float | None = setting(0.5, csv=True)
    train_size: int = setting(675, csv=True)
    #: Batch order, initialisation noise and dropout.
    seed: int = setting(0, csv=True)
    #: Which groups a size draws (nested across sizes); None: the same as ``seed``, as before it existed.
    data_seed: int | None = setting(None, csv=True, form=FormField(
        "Data seed", "optional_int",
        "which question groups each size draws (nested across sizes); fix it to vary only the batch "
        "order and initialisation with the seeds", minimum=-1, none_text="same as seed"))
    #: One training source or several, each ``NAME`` or ``NAME:PATH`` (vocabulary.sources); one is kept as text.
    train_dataset: str | tuple[str, ...] = setting("xquad", csv=True)
    #: How a run with several sources picks each batch's source: ``proportional`` to size, or ``round_robin``.
    source_sampling: str = setting("proportional")
    #: Training on an evaluated language on purpose (the "in-language data" ablation): labelled as such,
    #: not as "not zero-shot".
    ablation: bool = setting(False)
    train_languages: tuple[str, ...] = setting(PAPER_TRAIN_LANGUAGES, csv=True)
    evaluations: tuple[EvalSpec, ...] = setting(DEFAULT_EVALUATIONS, role="evaluation")
    # Optimisation. The paper's (arXiv 2408.10536): learning_rate, weight_decay (and AdamW). Ours, for a
    # CPU: batch_size 32 (the paper's 100 is PAPER_PRESET) and temperature 0.05 (sentence-transformers'
    # scale 20; the paper has none, i.e. 1.0). Ours because the paper states none: the budget, warm-up,
    # gradient clipping and max_length.
    learning_rate: float = setting(3e-5, csv=True, form=FormField(
        "Learning rate", "float", "AdamW learning rate (paper: 3e-5)"))
    weight_decay: float = setting(0.01, form=FormField(
        "Weight decay", "float", "AdamW weight decay on weight matrices (paper: 0.01)"))
    batch_size: int = setting(32, csv=True, form=FormField(
        "Batch size", "int",
        "pairs per batch; the other pairs of a batch are its negatives (paper: 100; ours 32, for a CPU)",
        minimum=2))
    temperature: float = setting(0.05, csv=True, form=FormField(
        "Temperature", "float",
        "InfoNCE temperature (ours 0.05; the paper's cosine without temperature is 1.0)"))
    #: How much to train (vocabulary.budget): ``epochs`` of the subset, a fixed number of ``steps``, or of ``pairs``.
    budget: str = setting("epochs", csv=True, form=FormField(
        "Training budget", "choice",
        "epochs: passes over each size's subset, so steps grow with the data; steps / pairs: the same "
        "number of optimiser steps / training pairs at every size, so a curve measures data, not compute",
        choices=BUDGETS))
    epochs: float = setting(1.0, csv=True, form=FormField(
        "Epochs", "float", "passes over the training subset (budget 'epochs'; fractions allowed)"))
    steps: int | None = setting(None, csv=True, form=FormField(
        "Steps", "optional_int", "optimiser steps of every run (budget 'steps')",
        minimum=0, none_text="—"))
    pairs: int | None = setting(None, csv=True, form=FormField(
        "Pairs", "optional_int", "training pairs every run sees (budget 'pairs')",
        minimum=0, none_text="—"))
    #: A cap on any budget.
    max_steps: int | None = setting(None, csv=True, form=FormField(
        "Max steps", "optional_int", "a cap on any budget",
        minimum=0, none_text="no limit"))
    warmup_ratio: float = setting(0.1, form=FormField(
        "Warm-up ratio", "float", "share of the steps with a linear learning-rate warm-up"))
    grad_clip: float = setting(1.0, form=FormField(
        "Gradient clipping", "float", "maximum gradient norm"))
    symmetric_loss: bool = setting(False, form=FormField(
        "Symmetric loss", "bool", "also score passage -> query (both InfoNCE directions)"))
    #: lambda of the semantic contrastive term; used (and part of the identity) by ``contrastive`` runs only.
    #: A null (older files) means the default.
    contrastive_weight: float | None = setting(0.1, form=FormField(
        "Semantic term weight λ", "float",
        "weight λ of the semantic contrastive term over parallel passages (strategy cross+semantic only; "
        "default 0.1)"))
    #: Add the source's hard negative of each pair to the loss, where the training source provides them.
    hard_negatives: bool = setting(True, form=FormField(
        "Hard negatives", "bool",
        "add each pair's negative passage to the loss where the training source has them "
        "(XQuAD and FLORES have none)"))
    #: Steps between dev-loss evaluations on held-out groups of the training source (None: no dev loss).
    dev_every: int | None = setting(None, form=FormField(
        "Dev loss every (steps)", "optional_int",
        "the loss on held-out dev groups of the training source, shown beside the training loss",
        minimum=0, none_text="off"))
    #: Stop training once the dev loss has not improved for this many evaluations (None: spend the budget).
    patience: int | None = setting(None, csv=True, form=FormField(
        "Early-stopping patience", "optional_int",
        "stop once the dev loss has not improved for this many evaluations (needs dev_every)",
        minimum=0, none_text="off"))
    #: Question groups held out of the first training source for the dev loss when it has no dev split of its
    #: own (drawn by the data seed before any size's subset, so no size trains on them).
    dev_size: int = setting(200, form=FormField(
        "Held-out dev groups", "int",
        "groups held out of a training source without a dev split, for the dev loss (never trained on)",
        minimum=1))
    #: ``last`` keeps the final weights; ``best_dev`` those with the lowest dev loss.
    select: str = setting("last", csv=True, form=FormField(
        "Keep checkpoint", "choice",
        "last: the final weights; best_dev: those with the lowest dev loss (the paper's early stopping)",
        choices=SELECTIONS))
    # Encoder: None is the base model's own (sentence-transformers files; else PLAIN_MODEL_SETTINGS).
    max_length: int | None = setting(None, role="evaluation", csv=True, form=FormField(
        "Max length (tokens)", "optional_int",
        "longer texts are truncated; the model's own: its sentence-transformers setting, else 128",
        minimum=7, maximum=512, none_text=MODELS_OWN))
    pooling: str | None = setting(None, role="evaluation", csv=True, form=FormField(
        "Pooling", "choice",
        "how token vectors become one text vector; the model's own: its sentence-transformers modules "
        "(with their Dense layers), else mean", choices=POOLINGS, none_text=MODELS_OWN))
    query_prefix: str | None = setting(None, role="evaluation", form=FormField(
        "Query prefix", "optional_text",
        "prepended to every query (E5: 'query: ', with its space); the model's own: its stored prompt",
        none_text=MODELS_OWN))
    passage_prefix: str | None = setting(None, role="evaluation", form=FormField(
        "Passage prefix", "optional_text",
        "prepended to every passage (E5: 'passage: ', with its space); the model's own: its stored prompt",
        none_text=MODELS_OWN))
    freeze_embeddings: bool = setting(False, form=FormField(
        "Freeze word embeddings", "bool",
        "keep the 96M-parameter embedding matrix fixed (much faster on a CPU)"))
    trainable_layers: int | None = setting(None, role="frozen_cache", form=FormField(
        "Trainable layers", "optional_int",
        "train only the top N transformer layers", minimum=0, maximum=48, none_text="all layers"))
    #: Run the layers below ``trainable_layers`` without dropout, their output rounded to float16, computed once
    #: per text and cached for every run of the machine (engine.frozen_prefix). Part of the identity when on.
    frozen_cache: bool = setting(False, role="frozen_cache", form=FormField(
        "Cache the frozen layers", "bool",
        "with trainable layers: run the layers below them once per text, without dropout, and reuse "
        "their float16 output in every run of this machine (much faster on a CPU; changes results)"))
    grad_cache_chunk: int | None = setting(None, form=FormField(
        "GradCache chunk", "optional_int",
        "embed the batch in chunks of this size to fit large batches in GPU memory",
        minimum=0, none_text="off"))
    # Evaluation.
    top_k: int = setting(100, role="evaluation", form=FormField(
        "Ranking depth (top k)", "int", "passages retrieved per query (1000 for MAP on LAReQA)",
        minimum=1))
    # Operational: never part of the run's identity.
    checkpoint_every: int = setting(50, role="operational", form=FormField(
        "Checkpoint every (steps)", "int", "how often a run can be resumed from",
        minimum=1))
    eval_batch_size: int = setting(64, role="operational", form=FormField(
        "Evaluation batch size", "int", "texts encoded at once", minimum=1))
    compile: bool = setting(False, role="operational")
    #: Whether a finished run keeps its trained model folder (its checkpoint is always deleted once done).
    keep_model: bool = setting(True, role="operational")

    def __post_init__(self) -> None:
        # Tuples, not lists, whatever the caller passed (JSON gives lists).
        object.__setattr__(self, "train_languages", tuple(self.train_languages))
        if isinstance(self.train_dataset, (list, tuple)):
            sources = tuple(self.train_dataset)
            object.__setattr__(self, "train_dataset", sources[0] if len(sources) == 1 else sources)
        object.__setattr__(
            self,
            "evaluations",
            tuple(e if isinstance(e, EvalSpec) else eval_spec_from(e) for e in self.evaluations),
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
        return dataset_entry(source).train_split(evaluated, self.dev_every is not None)

    @property
    def holds_out_dev(self) -> bool:
        """Whether the dev loss uses ``dev_size`` groups held out of the first source (it has no dev split)."""
        if self.dev_every is None or not self.train_sources:
            return False
        name = parse_source(self.train_sources[0])[0]
        return name in known_datasets("train") and dataset_entry(name).dev_split is None

    @property
    def max_train_size(self) -> int | None:
        """The groups the registry declares for the run's training splits, summed, less a held-out dev split
        (None: a source's is unknown)."""
        sizes = []
        for spec in self.train_sources:
            name = parse_source(spec)[0]
            sizes.append(dataset_entry(name).train_groups.get(self.train_split(name)))
        if None in sizes:
            return None
        return sum(sizes) - (self.dev_size if self.holds_out_dev else 0)

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
        check_finite(RunConfig, self)
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
        elif self.strategy not in STRATEGIES:
            raise ConfigError(
                "strategy",
                f"unknown strategy {self.strategy!r}; allowed: {', '.join(STRATEGIES)}",
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
            if is_bm25_spec(self.model) and (spec.index, spec.vectors) != ("flat", "float32"):
                raise ConfigError(f"evaluations[{spec.dataset}].index", "bm25 has no vectors: it always scores every "
                                  "passage exactly; leave index and vectors out")
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
        infos = [dataset_entry(parse_source(spec)[0]) for spec in self.train_sources]
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
        known = known_datasets("train")
        names = [parse_source(spec) for spec in self.train_sources]
        for name, path in names:
            if name not in known:
                raise ConfigError("train_dataset", f"unknown training set {name!r}; allowed: {', '.join(known)}")
            if path is None and dataset_entry(name).needs_path:
                raise ConfigError("train_dataset", f"{name} needs a path: write it as '{name}:/path/to/your/file'")
        if len(set(names)) != len(names):
            raise ConfigError("train_dataset", "a training source is listed twice")
        if self.source_sampling not in SOURCE_SAMPLINGS:
            raise ConfigError("source_sampling", f"unknown policy {self.source_sampling!r}; allowed: "
                              f"{', '.join(SOURCE_SAMPLINGS)}")

    def _validate_training(self) -> None:
        self._validate_sources()
        check_languages("train_languages", self.train_languages)
        all_monolingual = all(dataset_entry(parse_source(spec)[0]).monolingual for spec in self.train_sources)
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
            if self.patience is not None:
                raise ConfigError("patience", "early stopping needs a dev loss: set dev_every (steps between "
                                  "evaluations) or leave patience empty")
            return
        if self.dev_every < 1:
            raise ConfigError("dev_every", "must be at least 1 step, or empty for no dev loss")
        if self.patience is not None and self.patience < 1:
            raise ConfigError("patience", "must be at least 1 dev-loss evaluation, or empty to spend the whole budget")
        if self.dev_size < 1:
            raise ConfigError("dev_size", "must be at least 1 held-out question group")
        first = parse_source(self.train_sources[0])[0]
        dev_split = dataset_entry(first).dev_split
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
        check_types(cls, data)
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
        # Eval-set settings added later: left out at their defaults, so a run keeps the id it had before them.
        data["evaluations"] = [{k: v for k, v in spec.items() if _EVAL_SPEC_ADDED.get(k, ...) != v}
                               for spec in data["evaluations"]]
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
        if self.select == "last" and self.patience is None:
            data["dev_every"] = None
        # Settings that did not exist before early stopping: left out where they change nothing (same ids).
        if self.patience is None:
            del data["patience"]
        if not self.holds_out_dev:
            del data["dev_size"]
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
        sizes = [dataset_entry(name).train_groups.get(self.train_split(name)) for name in names]
        if None in sizes:
            return "in proportion to the sources' sizes (counted when the run starts)"
        return describe_split(names, split_size(self.train_size, sizes))


#: The roles of RunConfig's fields in its identity (declared on each field: vocabulary.settings).
_OPERATIONAL_FIELDS = names_with_role(RunConfig, "operational")
_EVAL_ONLY_FIELDS = names_with_role(RunConfig, "evaluation")
#: EvalSpec settings that came after run ids were first stored, with the value every earlier run had.
_EVAL_SPEC_ADDED: dict[str, Any] = {"index": "flat", "vectors": "float32"}
_FROZEN_CACHE_FIELDS = names_with_role(RunConfig, "frozen_cache")


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
    #: Free text for the reader of the study file (a template's deviations from the paper); changes no run.
    notes: str = ""

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
            raise ConfigError("strategies", "choose at least one of "
                              f"{', '.join(entry.label for entry in STRATEGIES.values())}")
        for name in self.strategies:
            if name not in STRATEGIES:
                raise ConfigError(
                    "strategies", f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}"
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
        check_types(cls, values)
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

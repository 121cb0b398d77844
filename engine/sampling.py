"""Batch samplers for hybrid batch training (arXiv 2408.10536) and its baselines.

The strategy of a run decides the *language composition* of each batch; the
in-batch negatives of InfoNCE make that composition the whole experiment.
What each strategy is comes from its entry in :mod:`vocabulary.strategies`;
here is one policy class per batching rule: :class:`ShareBatches` (X-X with
a strategy's monolingual share, else X-Y, optionally with each passage's
translation for a parallel loss term) and :class:`MixedBatches` (languages
drawn per pair).

Training-set size
    ``train_size`` N counts parallel question *groups*: with L languages that
    is up to N x L (question, passage) pairs. For one seed, a fixed
    permutation of all usable groups is drawn from the seed alone, and size N
    takes its first N groups, so the subsets are nested (size 500 is inside
    size 1000) and a scaling curve measures data size, not data choice.

Epochs and steps
    One epoch is ``ceil(N x L / batch_size)`` batches, i.e. as many batches as
    it takes to show every (group, language) slot once on average. Each batch
    draws ``batch_size`` distinct groups from a shuffled pass over the subset;
    when the pass runs out a new shuffled pass is appended. A run takes
    ``ceil(epochs x steps_per_epoch)`` steps, capped by ``max_steps``.

A group never appears twice in a batch: its translations would be false
negatives. A group only contributes languages it has (``g.languages``).
Everything is drawn from :class:`numpy.random.Generator` instances owned by
the sampler, so a seed fixes the batches, and :meth:`BatchSampler.state_dict`
lets a resumed run continue with exactly the batches it would have seen.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np

from vocabulary.budget import steps_per_epoch, total_steps
from vocabulary.config import RunConfig
from vocabulary.records import ParallelGroup, TrainingPair, TrainingSet
from vocabulary.strategies import STRATEGIES

BatchKind = Literal["mono", "cross", "multi"]

#: Separate random streams for the subset permutation and the batch draws, so
#: the subset depends on the seed only and not on how many batches were drawn.
_SUBSET_STREAM = 0
_BATCH_STREAM = 1


class SamplingError(ValueError):
    """The training set cannot give the batches a run asks for."""


@dataclass(frozen=True)
class Batch:
    """One training batch: pairs from distinct groups, and the batch's kind.

    ``translations`` is filled for ``contrastive`` runs only: for pair i, the
    positive passage of the same group in ``translation_languages[i]`` (which
    differs from the pair's passage language).
    """

    kind: BatchKind
    pairs: tuple[TrainingPair, ...]
    translations: tuple[str, ...] = ()
    translation_languages: tuple[str, ...] = ()

    @property
    def queries(self) -> list[str]:
        return [p.query for p in self.pairs]

    @property
    def passages(self) -> list[str]:
        return [p.passage for p in self.pairs]

    def describe(self, index: int) -> dict[str, Any]:
        """A JSON-able summary (what ``hybridscale inspect-batches`` prints)."""
        summary: dict[str, Any] = {
            "index": index,
            "kind": self.kind,
            "query_langs": [p.query_language for p in self.pairs],
            "passage_langs": [p.passage_language for p in self.pairs],
            "groups": [p.group for p in self.pairs],
        }
        if self.translation_languages:
            summary["translation_langs"] = list(self.translation_languages)
        return summary


def training_subset(
    training_set: TrainingSet, size: int, seed: int, languages: Sequence[str] | None = None, min_languages: int = 1
) -> tuple[ParallelGroup, ...]:
    """The first ``size`` groups of the seed's fixed permutation of the usable groups.

    Usable groups have at least ``min_languages`` of ``languages`` (default: the
    set's languages); strategies that pair a query with a passage in another
    language need 2. The permutation depends on the seed only, which is what
    makes subsets nested.
    """
    wanted = set(training_set.languages if languages is None else languages)
    usable = [g for g in training_set.groups if len(wanted.intersection(g.languages)) >= min_languages]
    if size > len(usable):
        raise SamplingError(
            f"train_size {size} is larger than the {len(usable)} question groups of "
            f"{training_set.name}; use at most {len(usable)}"
        )
    order = _rng(seed, _SUBSET_STREAM).permutation(len(usable))
    return tuple(usable[i] for i in order[:size])


class _GroupPass:
    """The shuffled pass over a subset's groups that batches are taken from.

    A batch takes the first ``batch_size`` eligible groups of the pass; the
    ineligible ones (e.g. lacking the batch's language) stay for a later
    batch. When the pass runs short, a new shuffled pass is appended (without
    a second copy of a group still waiting, so the pass never grows), and a
    group is never taken twice for one batch.
    """

    def __init__(self, num_groups: int, batch_size: int, rng: np.random.Generator):
        self._num_groups = num_groups
        self._batch_size = batch_size
        self._rng = rng
        self.order: list[int] = []

    def take(self, eligible: Callable[[int], bool]) -> list[int]:
        taken: list[int] = []
        position = 0
        while len(taken) < self._batch_size:
            if position == len(self.order):
                waiting = set(self.order)
                self.order.extend(int(i) for i in self._rng.permutation(self._num_groups) if i not in waiting)
            index = self.order[position]
            if index not in taken and eligible(index):
                taken.append(index)
                del self.order[position]
            else:
                position += 1
        return taken


@dataclass
class _Subset:
    """A run's training groups, each with the training languages it has, and the shared batch RNG."""

    name: str
    groups: tuple[ParallelGroup, ...]
    languages: list[tuple[str, ...]]
    batch_size: int
    rng: np.random.Generator
    groups_pass: _GroupPass

    def pair(self, index: int, query_language: str, passage_language: str) -> TrainingPair:
        return self.groups[index].pair(query_language, passage_language)


class ShareBatches:
    """``by_share`` batching: each batch X-X with probability ``mono_share`` (one language drawn per batch),
    else X-Y (per pair a query language and another passage language of its group).

    With ``with_translations``, every X-Y pair also carries its positive passage in a third
    language choice (one differing from the pair's passage language), for a loss term over
    parallel passages.
    """

    def __init__(self, subset: _Subset, mono_share: float, with_translations: bool):
        self.subset = subset
        self.mono_share = mono_share
        self.with_translations = with_translations
        # A mono batch needs batch_size groups sharing its language.
        self.mono_languages = tuple(
            lang for lang in sorted({lang for langs in subset.languages for lang in langs})
            if sum(lang in langs for langs in subset.languages) >= subset.batch_size
        )
        if mono_share and not self.mono_languages:
            raise SamplingError(
                f"no language of {subset.name} has {subset.batch_size} question groups in this subset for a "
                "monolingual batch; lower batch_size or raise train_size"
            )

    def next_batch(self) -> Batch:
        subset, rng = self.subset, self.subset.rng
        if rng.random() < self.mono_share:
            lang = _choice(rng, self.mono_languages)
            indices = subset.groups_pass.take(lambda i: lang in subset.languages[i])
            return Batch("mono", tuple(subset.pair(i, lang, lang) for i in indices))
        indices = subset.groups_pass.take(lambda i: len(subset.languages[i]) >= 2)
        pairs = []
        for i in indices:
            langs = subset.languages[i]
            query_lang = _choice(rng, langs)
            pairs.append(subset.pair(i, query_lang, _choice(rng, [x for x in langs if x != query_lang])))
        if not self.with_translations:
            return Batch("cross", tuple(pairs))
        translation_langs = tuple(
            _choice(rng, [x for x in subset.languages[i] if x != pair.passage_language])
            for i, pair in zip(indices, pairs)
        )
        translations = tuple(subset.groups[i].passages[lang] for i, lang in zip(indices, translation_langs))
        return Batch("cross", tuple(pairs), translations, translation_langs)


class MixedBatches:
    """``mixed`` batching: every pair draws its query and passage language independently (they may be equal)."""

    def __init__(self, subset: _Subset):
        self.subset = subset

    def next_batch(self) -> Batch:
        subset, rng = self.subset, self.subset.rng
        indices = subset.groups_pass.take(lambda i: len(subset.languages[i]) >= 1)
        pairs = []
        for i in indices:
            langs = subset.languages[i]
            pairs.append(subset.pair(i, _choice(rng, langs), _choice(rng, langs)))
        return Batch("multi", tuple(pairs))


class BatchSampler:
    """Endless, seeded, resumable stream of batches for one run's strategy (see :mod:`vocabulary.strategies`)."""

    def __init__(self, config: RunConfig, training_set: TrainingSet):
        if config.strategy not in STRATEGIES:
            raise SamplingError(f"strategy {config.strategy!r} does not train; there is nothing to sample")
        missing = [lang for lang in config.train_languages if lang not in training_set.languages]
        if missing:
            raise SamplingError(
                f"train_languages {', '.join(missing)} are not in {training_set.name} "
                f"(it has {', '.join(training_set.languages)}); choose among those"
            )
        entry = STRATEGIES[config.strategy]
        self.strategy = config.strategy
        self.batch_size = config.batch_size
        wanted = set(config.train_languages)
        minimum = 2 if entry.needs_two_languages else 1
        self.groups = training_subset(training_set, config.train_size, config.seed, config.train_languages, minimum)
        languages = [tuple(lang for lang in g.languages if lang in wanted) for g in self.groups]
        enough = sum(len(langs) >= minimum for langs in languages)
        if enough < self.batch_size:
            raise SamplingError(
                f"batch_size {self.batch_size} needs {self.batch_size} distinct question groups, but "
                f"train_size {len(self.groups)} of {training_set.name} gives {enough}; lower batch_size or raise train_size"
            )
        self.steps_per_epoch = steps_per_epoch(len(self.groups), len(config.train_languages), config.batch_size)
        self.total_steps = total_steps(config, len(self.groups))
        self._rng = _rng(config.seed, _BATCH_STREAM)
        self._pass = _GroupPass(len(self.groups), config.batch_size, self._rng)
        subset = _Subset(training_set.name, self.groups, languages, config.batch_size, self._rng, self._pass)
        if entry.batching == "mixed":
            self._policy: ShareBatches | MixedBatches = MixedBatches(subset)
        else:
            share = config.alpha if entry.uses_alpha else entry.mono_share
            self._policy = ShareBatches(subset, float(share), entry.needs_translations)
        self._drawn = 0

    # ---- drawing ----------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.next_batch()

    def next_batch(self) -> Batch:
        self._drawn += 1
        return self._policy.next_batch()

    # ---- resuming ---------------------------------------------------------
    @property
    def batches_drawn(self) -> int:
        return self._drawn

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the stream exactly (plain Python values)."""
        return {
            "rng": copy.deepcopy(self._rng.bit_generator.state),
            "pass": list(self._pass.order),
            "drawn": self._drawn,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._pass.order = [int(i) for i in state["pass"]]
        self._drawn = int(state["drawn"])


def describe_batches(config: RunConfig, training_set: TrainingSet, n: int) -> list[dict[str, Any]]:
    """The first ``n`` batches a run would train on, as JSON-able dicts."""
    sampler = BatchSampler(config, training_set)
    return [sampler.next_batch().describe(index) for index in range(n)]


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([stream, seed])


def _choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]

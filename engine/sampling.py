"""Batch samplers for hybrid batch training (arXiv 2408.10536) and its baselines.

The strategy of a run decides the *language composition* of each batch; the
in-batch negatives of InfoNCE make that composition the whole experiment:

- ``mono``: every batch is X-X, one language (drawn per batch) on both sides.
- ``cross``: every batch is X-Y, each query paired with its positive passage in
  another language of the same group (per pair, query language != passage language).
- ``hybrid``: per batch, X-X with probability ``alpha``, else X-Y.
- ``multi``: the naive baseline, each pair with an independently drawn query
  language and passage language (they may be equal).
- ``contrastive``: the Hu et al. (2022) baseline: ``cross`` batches in which
  each pair also carries its positive passage in a second language (for the
  language-contrastive loss term, see :mod:`engine.losses`).

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
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np

from engine.config import RunConfig
from engine.records import ParallelGroup, TrainingPair, TrainingSet

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


def steps_per_epoch(num_groups: int, num_languages: int, batch_size: int) -> int:
    """Batches that show every (group, language) slot once on average."""
    return math.ceil(num_groups * num_languages / batch_size)


def total_steps(config: RunConfig, num_groups: int) -> int:
    """The run's number of optimiser steps: whole or fractional epochs, capped by ``max_steps``."""
    steps = math.ceil(config.epochs * steps_per_epoch(num_groups, len(config.train_languages), config.batch_size))
    return max(1, min(steps, config.max_steps) if config.max_steps is not None else steps)


class BatchSampler:
    """Endless, seeded, resumable stream of batches for one run's strategy."""

    def __init__(self, config: RunConfig, training_set: TrainingSet):
        if config.strategy not in ("mono", "cross", "hybrid", "multi", "contrastive"):
            raise SamplingError(f"strategy {config.strategy!r} does not train; there is nothing to sample")
        missing = [lang for lang in config.train_languages if lang not in training_set.languages]
        if missing:
            raise SamplingError(
                f"train_languages {', '.join(missing)} are not in {training_set.name} "
                f"(it has {', '.join(training_set.languages)}); choose among those"
            )
        self.strategy = config.strategy
        self.alpha = 1.0 if config.strategy == "mono" else 0.0 if config.strategy in ("cross", "contrastive") else config.alpha
        self.batch_size = config.batch_size
        wanted = set(config.train_languages)
        needs_pairs = config.strategy in ("cross", "hybrid", "contrastive")
        self.groups = training_subset(
            training_set, config.train_size, config.seed, config.train_languages, 2 if needs_pairs else 1
        )
        self._languages = [tuple(lang for lang in g.languages if lang in wanted) for g in self.groups]
        self._check_batch_size(training_set.name, needs_pairs)
        self.steps_per_epoch = steps_per_epoch(len(self.groups), len(config.train_languages), config.batch_size)
        self.total_steps = total_steps(config, len(self.groups))
        self._rng = _rng(config.seed, _BATCH_STREAM)
        self._pass: list[int] = []
        self._drawn = 0

    def _check_batch_size(self, name: str, needs_pairs: bool) -> None:
        enough = sum(len(langs) >= (2 if needs_pairs else 1) for langs in self._languages)
        if enough < self.batch_size:
            raise SamplingError(
                f"batch_size {self.batch_size} needs {self.batch_size} distinct question groups, but "
                f"train_size {len(self.groups)} of {name} gives {enough}; lower batch_size or raise train_size"
            )
        # A mono batch needs batch_size groups sharing its language.
        self._mono_languages = tuple(
            lang for lang in sorted({lang for langs in self._languages for lang in langs})
            if sum(lang in langs for langs in self._languages) >= self.batch_size
        )
        if self.alpha and not self._mono_languages:
            raise SamplingError(
                f"no language of {name} has {self.batch_size} question groups in this subset for a "
                "monolingual batch; lower batch_size or raise train_size"
            )

    # ---- drawing ----------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.next_batch()

    def next_batch(self) -> Batch:
        self._drawn += 1
        rng = self._rng
        if self.strategy == "multi":
            indices = self._take(lambda i: len(self._languages[i]) >= 1)
            pairs = []
            for i in indices:
                langs = self._languages[i]
                pairs.append(self.groups[i].pair(_choice(rng, langs), _choice(rng, langs)))
            return Batch("multi", tuple(pairs))
        if rng.random() < self.alpha:
            lang = _choice(rng, self._mono_languages)
            indices = self._take(lambda i: lang in self._languages[i])
            return Batch("mono", tuple(self.groups[i].pair(lang, lang) for i in indices))
        indices = self._take(lambda i: len(self._languages[i]) >= 2)
        pairs = []
        for i in indices:
            langs = self._languages[i]
            query_lang = _choice(rng, langs)
            pairs.append(self.groups[i].pair(query_lang, _choice(rng, [x for x in langs if x != query_lang])))
        if self.strategy != "contrastive":
            return Batch("cross", tuple(pairs))
        translation_langs = tuple(
            _choice(rng, [x for x in self._languages[i] if x != pair.passage_language])
            for i, pair in zip(indices, pairs)
        )
        translations = tuple(self.groups[i].passages[lang] for i, lang in zip(indices, translation_langs))
        return Batch("cross", tuple(pairs), translations, translation_langs)

    def _take(self, eligible: Callable[[int], bool]) -> list[int]:
        """The first ``batch_size`` eligible groups of the current pass, removed from it.

        Ineligible groups (e.g. lacking the batch's language) stay in the pass
        for a later batch. When the pass runs short, a new shuffled pass is
        appended (without a second copy of a group still waiting, so the pass
        never grows), and a group already taken is never taken twice for one batch.
        """
        taken: list[int] = []
        position = 0
        while len(taken) < self.batch_size:
            if position == len(self._pass):
                waiting = set(self._pass)
                self._pass.extend(int(i) for i in self._rng.permutation(len(self.groups)) if i not in waiting)
            index = self._pass[position]
            if index not in taken and eligible(index):
                taken.append(index)
                del self._pass[position]
            else:
                position += 1
        return taken

    # ---- resuming ---------------------------------------------------------
    @property
    def batches_drawn(self) -> int:
        return self._drawn

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the stream exactly (plain Python values)."""
        return {
            "rng": copy.deepcopy(self._rng.bit_generator.state),
            "pass": list(self._pass),
            "drawn": self._drawn,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._pass = [int(i) for i in state["pass"]]
        self._drawn = int(state["drawn"])


def describe_batches(config: RunConfig, training_set: TrainingSet, n: int) -> list[dict[str, Any]]:
    """The first ``n`` batches a run would train on, as JSON-able dicts."""
    sampler = BatchSampler(config, training_set)
    return [sampler.next_batch().describe(index) for index in range(n)]


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([stream, seed])


def _choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]

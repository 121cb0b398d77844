"""A run's batch plan: its batching rule worked out from the strategy table, before the engine sees it.

The sampler and the loss are given what the strategy means for this run (the
rule, the monolingual share with the run's ``alpha`` already resolved, the
languages, sizes, seeds and budget), as explicit values, instead of each
reading the whole :class:`vocabulary.config.RunConfig` and the strategy table
again. So the strategy table is read in one place, and a strategy whose
share is alpha needs no code beyond its table entry (and its rule in
:mod:`engine.sampling` or its loss term in :mod:`engine.losses`, if new).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vocabulary.budget import total_steps
from vocabulary.strategies import Batching, strategy

if TYPE_CHECKING:
    from vocabulary.config import RunConfig


@dataclass(frozen=True)
class BatchPlan:
    """How one run's batches are drawn.

    ``mono_share``: the share of X-X steps of ``by_share`` batching, resolved
    (the run's ``alpha`` where the strategy's share is alpha; 0 for ``mixed``).
    ``min_languages``: how many of ``languages`` a question group needs to be
    usable (2 where a pair may be cross-lingual). ``with_translations``: each
    pair also carries its positive in a second language, for the loss's
    parallel term, whose weight is ``contrastive_weight`` (None: no such term).
    ``seed`` draws the batches and the schedule, ``subset_seed`` the subset.
    """

    strategy: str
    batching: Batching
    mono_share: float
    min_languages: int
    with_translations: bool
    contrastive_weight: float | None
    languages: tuple[str, ...]
    batch_size: int
    train_size: int
    total_steps: int
    seed: int
    subset_seed: int
    hard_negatives: bool
    source_sampling: str


def batch_plan(config: RunConfig) -> BatchPlan:
    """The plan of a training run; ValueError naming the strategies that train for one that does not."""
    entry = strategy(config.strategy)
    if entry.batching == "mixed":
        share = 0.0
    else:
        share = float(config.alpha if entry.uses_alpha else entry.mono_share)
    return BatchPlan(
        strategy=entry.name,
        batching=entry.batching,
        mono_share=share,
        min_languages=2 if entry.needs_two_languages else 1,
        with_translations=entry.needs_translations,
        contrastive_weight=config.contrastive_weight if entry.uses_contrastive_weight else None,
        languages=tuple(config.train_languages),
        batch_size=config.batch_size,
        train_size=config.train_size,
        total_steps=total_steps(config, config.train_size),
        seed=config.seed,
        subset_seed=config.subset_seed,
        hard_negatives=config.hard_negatives,
        source_sampling=config.source_sampling,
    )

"""The training strategies, declared once: what each one is and how the rest of the app treats it.

Config validation, the batch plan (:mod:`vocabulary.batching`, which the
sampler and the loss are given), the series, the findings, the setup form and
the plots all read :data:`STRATEGIES` (looked up when used, never copied), so
adding a strategy is one :class:`Strategy` entry here plus its batching
policy (:mod:`engine.sampling`) or loss term (:mod:`engine.losses`) if it
needs a new one (tests/engine/test_sampling.py adds a throw-away one).

The language composition of a batch is the whole experiment (in-batch
negatives of InfoNCE come from the same batch):

- ``by_share`` batching: each batch is X-X (one language on both sides) or
  X-Y (each query with its positive passage in another language of its group).
  ``mono_share`` is the share of X-X steps: all, none, or the run's ``alpha``
  (hybrid batch training, arXiv 2408.10536), exactly, not drawn per batch
  (see :mod:`engine.sampling`).
- ``mixed`` batching: each pair draws its query language and passage language
  independently, so one batch mixes X-X and X-Y pairs (the naive baseline).

This module imports nothing heavy; the GUI reads it on every keystroke.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The strategy of an evaluation-only run (the untrained size-0 point or a reference model).
NO_TRAINING = "none"
#: ``mono_share`` of a strategy whose monolingual share is the run's ``alpha``.
ALPHA = "alpha"

Batching = Literal["by_share", "mixed"]
LossKind = Literal["info_nce", "info_nce+parallel"]


@dataclass(frozen=True)
class Strategy:
    """One training strategy.

    ``needs_two_languages``: every pair may be cross-lingual, so a group must
    exist in two of the training languages. ``mono_share``: for ``by_share``
    batching, the share of X-X batches (a number, or :data:`ALPHA`).
    ``needs_translations``: each pair also carries its positive passage in a
    second language (for a loss term over parallel passages). ``loss`` names
    the loss in :mod:`engine.losses`.
    """

    name: str
    label: str
    help: str
    batching: Batching
    mono_share: float | str | None
    needs_two_languages: bool
    needs_translations: bool
    loss: LossKind

    @property
    def uses_alpha(self) -> bool:
        return self.mono_share == ALPHA

    @property
    def uses_contrastive_weight(self) -> bool:
        """Whether ``RunConfig.contrastive_weight`` changes what this strategy trains."""
        return self.loss == "info_nce+parallel"


#: Every training strategy, in display order (pick lists, legends, tables).
STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("mono", "mono", "every batch monolingual (X-X): queries and passages in one language",
                 "by_share", 1.0, needs_two_languages=False, needs_translations=False, loss="info_nce"),
        Strategy("cross", "cross", "every batch cross-lingual (X-Y): each query with its passage in another language",
                 "by_share", 0.0, needs_two_languages=True, needs_translations=False, loss="info_nce"),
        Strategy("hybrid", "hybrid", "exactly a share α of the steps X-X, the rest X-Y (arXiv 2408.10536)",
                 "by_share", ALPHA, needs_two_languages=True, needs_translations=False, loss="info_nce"),
        Strategy("multi", "multi", "naive multilingual baseline: languages mixed freely inside a batch",
                 "mixed", None, needs_two_languages=False, needs_translations=False, loss="info_nce"),
        Strategy("contrastive", "cross+semantic",
                 "cross-lingual batches plus a semantic contrastive term pulling each positive passage to its "
                 "translation (the semantic term of Hu et al. 2023; their language contrastive term is not "
                 "implemented)",
                 "by_share", 0.0, needs_two_languages=True, needs_translations=True, loss="info_nce+parallel"),
    )
}
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)


def strategy(name: str) -> Strategy:
    """The table entry of a training strategy; ValueError naming the allowed ones otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}") from None


def strategy_label(name: str, alpha: float | None) -> str:
    """What a strategy is called in tables, legends and run labels: hybrid runs carry their alpha."""
    if name == NO_TRAINING:
        return "untrained"
    entry = STRATEGIES.get(name)
    if entry is None:
        return name
    if entry.uses_alpha and alpha is not None:
        return f"{entry.label} α={alpha:g}"
    return entry.label


def strategy_position(name: str) -> int:
    """Place of a strategy in the table (evaluation-only runs first, unknown ones last): the display order."""
    if name == NO_TRAINING:
        return -1
    return list(STRATEGIES).index(name) if name in STRATEGIES else len(STRATEGIES)

"""Which runs may be pooled as seeds of one point, and what each resulting series is called.

Runs are repetitions of one another only when their settings differ in the
seeds alone: the run identity (:meth:`RunConfig.identity`) minus
:data:`SEED_FIELDS`. Anything else that differs (a learning rate, the eval
queries, the model) makes a separate series, so a plot or a comparison never
averages two configurations as if they were seeds. A series is named by its
strategy label; where two series share that label, the settings that tell
them apart are added (``hybrid α=0.5 (learning_rate=0.0001)``).

A series is a :class:`SeriesName`: its label, carrying the strategy key, alpha
and budget it was built from, so code asks those (and the strategy table)
instead of parsing the label back.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from vocabulary.budget import budget_label
from vocabulary.model_specs import bm25_label, is_bm25_spec
from vocabulary.sources import trained_eval_languages, zero_shot_note
from vocabulary.strategies import NO_TRAINING, STRATEGIES, strategy_label, strategy_position

#: Settings that only repeat an experiment: runs differing in these alone are seeds of one series.
SEED_FIELDS: frozenset[str] = frozenset({"seed", "data_seed"})
#: Settings that already place a run on a curve (its x) or name its line; never part of a series key.
POSITION_FIELDS: frozenset[str] = frozenset({"train_size"})


#: The budget legends leave unsaid (RunConfig's default: one epoch, no cap).
DEFAULT_BUDGET = budget_label({})


class SeriesName(str):
    """A series: its unique label (what every table, legend and CSV cell shows), plus what it was built from.

    A ``str`` because the label is what a series is everywhere it is shown or
    keyed (dicts, CSV cells, JSON); the attributes are what code decides on:
    ``strategy`` (the strategy table's key, :data:`NO_TRAINING` for an
    evaluation-only run), ``alpha`` (only where the strategy uses it),
    ``budget`` (its label), ``key`` (:func:`series_key`: every setting that
    tells this series from another) and ``lexical`` (BM25, the one reference
    that is not the base model itself: a difference to it says nothing about
    what training moved).
    """

    strategy: str
    alpha: float | None
    budget: str
    key: str
    lexical: bool

    def __new__(cls, label: str, strategy: str = NO_TRAINING, alpha: float | None = None, budget: str = "",
                key: str = "", lexical: bool = False) -> "SeriesName":
        name = super().__new__(cls, label)
        name.strategy, name.alpha, name.budget, name.key, name.lexical = strategy, alpha, budget, key, lexical
        return name

    def __reduce__(self):
        return SeriesName, (str(self), self.strategy, self.alpha, self.budget, self.key, self.lexical)

    @property
    def untrained(self) -> bool:
        """The base model evaluated as it is: the reference that tells what training moved."""
        return self.strategy == NO_TRAINING and not self.lexical

    @property
    def uses_alpha(self) -> bool:
        """Whether the strategy table says this series' strategy trains with a share alpha."""
        entry = STRATEGIES.get(self.strategy)
        return entry is not None and entry.uses_alpha


def series_order(name: str) -> tuple[int, str]:
    """Sort key of a series: its strategy's place in the table (evaluation-only first), then its label."""
    return (strategy_position(getattr(name, "strategy", NO_TRAINING)), str(name))


def series_key(identity: Mapping[str, Any]) -> str:
    """A stable text key: the identity minus seeds and size (what every seed at every size shares)."""
    kept = {k: v for k, v in identity.items() if k not in SEED_FIELDS | POSITION_FIELDS}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False)


def base_label(identity: Mapping[str, Any]) -> str:
    """The strategy's label, with the training budget unless it is the default (``untrained MODEL`` for an
    evaluation-only run, ``BM25`` for the lexical reference), so a legend says how long every line trained."""
    # An evaluation-only run's identity keeps only what evaluation reads: it has no strategy field.
    strategy = identity.get("strategy", NO_TRAINING)
    if strategy == NO_TRAINING and is_bm25_spec(str(identity.get("model", ""))):
        return bm25_label(identity["model"])
    label = strategy_label(strategy, identity.get("alpha"))
    if label == "untrained":
        return f"{label} {identity.get('model', '')}".strip()
    budget = budget_label(identity)
    label = label if budget == DEFAULT_BUDGET else f"{label} ({budget})"
    note = identity_zero_shot_note(identity)
    return f"{label} [{note}]" if note else label


def identity_zero_shot_note(identity: Mapping[str, Any]) -> str:
    """:attr:`vocabulary.config.RunConfig.zero_shot_note` from a run identity (empty for an untrained run)."""
    if "train_dataset" not in identity:
        return ""
    trained = trained_eval_languages(identity["train_dataset"], identity.get("train_languages") or (),
                                     identity.get("evaluations") or ())
    return zero_shot_note(trained, bool(identity.get("ablation")))


def series_names(identities: Mapping[str, Mapping[str, Any]]) -> dict[str, SeriesName]:
    """Run id -> series name; runs of one series share a name, different series never do."""
    key_of = {run_id: series_key(identity) for run_id, identity in identities.items()}
    representative = {key: identities[run_id] for run_id, key in key_of.items()}
    by_label: dict[str, list[str]] = {}
    for key, identity in representative.items():
        by_label.setdefault(base_label(identity), []).append(key)
    name_of_key: dict[str, SeriesName] = {}
    for label, keys in by_label.items():
        for index, key in enumerate(sorted(keys)):
            group = [representative[k] for k in keys]
            shown = label if len(keys) == 1 else f"{label} ({_difference(representative[key], group, index)})"
            name_of_key[key] = _series_name(shown, representative[key], key)
    return {run_id: name_of_key[key] for run_id, key in key_of.items()}


def _series_name(label: str, identity: Mapping[str, Any], key: str) -> SeriesName:
    strategy = identity.get("strategy", NO_TRAINING)
    entry = STRATEGIES.get(strategy)
    alpha = identity.get("alpha") if entry is not None and entry.uses_alpha else None
    budget = budget_label(identity) if strategy != NO_TRAINING else ""
    lexical = strategy == NO_TRAINING and is_bm25_spec(str(identity.get("model", "")))
    return SeriesName(label, strategy, alpha, budget, key, lexical)


def _difference(identity: Mapping[str, Any], group: list[Mapping[str, Any]], index: int) -> str:
    """The settings of ``identity`` that differ somewhere in ``group``; nested ones are shown by letter."""
    fields = sorted({k for other in group for k in set(other) | set(identity)
                     if k not in SEED_FIELDS | POSITION_FIELDS and other.get(k) != identity.get(k)})
    parts = []
    for name in fields:
        value = identity.get(name)
        if isinstance(value, (list, tuple, dict)):
            variants = sorted({json.dumps(other.get(name), sort_keys=True) for other in group})
            parts.append(f"{name} {chr(ord('A') + variants.index(json.dumps(value, sort_keys=True)))}")
        else:
            parts.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
    return ", ".join(parts) or f"variant {index + 1}"

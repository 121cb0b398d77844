"""The entry points: a training set or an eval set by dataset id, dispatched through the registry.

Callers (engine.study, the CLI, the GUI preview) never import a source module
directly, so adding a source is one registry entry plus one module.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

from engine.config import EvalSpec
from engine.data.errors import DataError
from engine.data.registry import DATASETS, Role, dataset_ids
from engine.records import EvalSet, TrainingSet

#: The split an eval set uses when none is named: the first of these the dataset has.
_EVAL_SPLIT_PREFERENCE: tuple[str, ...] = ("test", "eval", "dev")


def load_training_set(
    dataset: str, languages: Sequence[str], split: str = "train", path: str | None = None
) -> TrainingSet:
    return _loader(dataset, "train")(tuple(languages), split, path)


def load_eval_set(spec: EvalSpec) -> EvalSet:
    return _loader(spec.dataset, "eval")(spec)


def load(
    dataset_id: str,
    languages: Sequence[str],
    split: str | None = None,
    role: Literal["eval", "train"] = "eval",
    max_queries: int | None = None,
    path: str | None = None,
) -> EvalSet | TrainingSet:
    """Either kind of set in one call (for the CLI and notebooks); ``split`` defaults per dataset and role."""
    if role == "train":
        if max_queries is not None:
            raise DataError("max_queries limits eval queries; a training set is sized by train_size")
        return load_training_set(dataset_id, languages, split or "train", path)
    if role != "eval":
        raise DataError(f"unknown role {role!r}; use 'eval' or 'train'")
    _loader(dataset_id, "eval")  # an unknown id fails here, before the split lookup
    splits = DATASETS[dataset_id].splits
    split = split or next((s for s in _EVAL_SPLIT_PREFERENCE if s in splits), splits[0])
    return load_eval_set(EvalSpec(dataset_id, tuple(languages), split, max_queries, path))


def _loader(dataset: str, role: Role) -> Callable:
    usable = dataset_ids(role)
    if dataset not in usable:
        kind = "training set" if role == "train" else "eval set"
        raise DataError(f"unknown {kind} {dataset!r}; use one of {', '.join(usable)}")
    return DATASETS[dataset].loader(role)

"""The entry points: a training set or an eval set by dataset id, dispatched through the registry.

Callers (engine.study, the CLI, the GUI preview) never import a source module
directly, so adding a source is one registry entry plus one module.
"""

from __future__ import annotations

import importlib
from typing import Callable, Literal, Sequence

from engine.data.errors import DataError
from vocabulary.config import EvalSpec
from vocabulary.datasets import DATASETS, Role, dataset_ids
from vocabulary.records import EvalSet, TrainingSet


def load_training_set(
    dataset: str, languages: Sequence[str], split: str = "train", path: str | None = None
) -> TrainingSet:
    return loader(dataset, "train")(tuple(languages), split, path)


def load_eval_set(spec: EvalSpec) -> EvalSet:
    return loader(spec.dataset, "eval")(spec)


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
    loader(dataset_id, "eval")  # an unknown id fails here, before the split lookup
    split = split or DATASETS[dataset_id].default_eval_split
    return load_eval_set(EvalSpec(dataset_id, tuple(languages), split, max_queries, path))


def loader(dataset: str, role: Role) -> Callable:
    """The loader function of ``dataset`` for ``role``, imported on first use."""
    usable = dataset_ids(role)
    if dataset not in usable:
        kind = "training set" if role == "train" else "eval set"
        raise DataError(f"unknown {kind} {dataset!r}; use one of {', '.join(usable)}")
    module_name, function_name = DATASETS[dataset].loader_name(role).split(":")
    return getattr(importlib.import_module(module_name), function_name)

"""The entry points: a training set or an eval set by dataset id, dispatched through the registry.

Callers (engine.study, the CLI, the GUI preview) never import a source module
directly, so adding a source is one registry entry plus one module.
"""

from __future__ import annotations

import importlib
from typing import Callable, Literal, Sequence

from engine.data.errors import DataError
from engine.data.held_out import hold_out
from engine.data.stream import StreamedTrainingSet, TooFewGroups
from engine.memo import KeptValues
from vocabulary.config import EvalSpec, RunConfig
from vocabulary.datasets import DATASETS, Role, dataset_ids
from vocabulary.records import EvalSet, TrainingSet
from vocabulary.sources import parse_source


def load_training_set(
    dataset: str, languages: Sequence[str], split: str = "train", path: str | None = None
) -> TrainingSet | StreamedTrainingSet:
    """A shipped, fully read set is read once per process: its files are part of the package, the set is
    immutable, and a worker trains every run of a study on it (a streamed or user-supplied one is read anew)."""
    key = (dataset, tuple(languages), split)
    if path is None and key in _SHIPPED_TRAINING_SETS:
        return _SHIPPED_TRAINING_SETS[key]
    loaded = loader(dataset, "train")(tuple(languages), split, path)
    if path is None and DATASETS[dataset].shipped and isinstance(loaded, TrainingSet):
        _SHIPPED_TRAINING_SETS.put(key, loaded)
    return loaded


_SHIPPED_TRAINING_SETS: KeptValues[TrainingSet] = KeptValues(8)


def load_training_sources(config: RunConfig) -> list[TrainingSet | StreamedTrainingSet]:
    """Every training source of a run, each in the run's languages it has and on the split the run trains on
    (the first without its held-out dev split, if it has one).

    Streamed sources (mMARCO, MIRACL train, a user's file) read nothing yet:
    the sampler asks each for the size it needs.
    """
    return _sources(config)[0]


def load_dev_set(config: RunConfig) -> TrainingSet | StreamedTrainingSet:
    """The dev split of the run's first training source (what the dev loss and ``best_dev`` use): its own,
    else ``dev_size`` groups held out of it (:mod:`engine.data.held_out`)."""
    if config.holds_out_dev:
        return _sources(config)[1]
    return _own_dev_split(config)


def load_training_data(config: RunConfig) -> tuple[list[TrainingSet | StreamedTrainingSet],
                                                    TrainingSet | StreamedTrainingSet | None]:
    """The run's training sources and its dev set (None without ``dev_every``); a dev split held out of the first
    source is drawn once, as the sources are loaded."""
    sources, held_out = _sources(config)
    if held_out is None and config.dev_every is not None:
        return sources, _own_dev_split(config)
    return sources, held_out


def _sources(config: RunConfig) -> tuple[list[TrainingSet | StreamedTrainingSet], TrainingSet | None]:
    """The run's training sources, and the dev split held out of the first (None when it holds none out)."""
    sources = []
    for spec in config.train_sources:
        name, path = parse_source(spec)
        loader(name, "train")  # an unknown name fails here, before the registry lookup
        languages = [lang for lang in config.train_languages if lang in DATASETS[name].languages]
        sources.append(load_training_set(name, languages, config.train_split(name), path))
    if not config.holds_out_dev:
        return sources, None
    held_out, sources[0] = _held_out(config, sources[0])
    return sources, held_out


def _own_dev_split(config: RunConfig) -> TrainingSet | StreamedTrainingSet:
    name, path = parse_source(config.train_sources[0])
    languages = [lang for lang in config.train_languages if lang in DATASETS[name].languages]
    return load_training_set(name, languages, DATASETS[name].dev_split or "dev", path)


def _held_out(config: RunConfig, source: TrainingSet | StreamedTrainingSet
              ) -> tuple[TrainingSet, TrainingSet | StreamedTrainingSet]:
    try:
        return hold_out(source, config.dev_size, config.subset_seed)
    except TooFewGroups as exc:
        raise DataError(str(exc)) from None


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

"""A dev split held out of a training source that has none of its own (mMARCO, MIRACL train, a user's file).

The dev loss (and early stopping on it) needs groups the run never trains
on. Where the source ships no dev split, ``dev_size`` groups are drawn from
it by the data seed *before* any training subset, and the training source
becomes the rest: every size's subset is drawn from the rest, so no size
ever trains on a dev group, and sizes stay nested.

A source held in memory holds out the first ``dev_size`` groups of a seeded
permutation (its own random stream, so the subsets' permutation is not
shifted). A streamed source holds out the first ``dev_size`` items of a
seeded buffered shuffle of its stream (:mod:`engine.data.stream`) and skips
them when the training subset is read; items are told apart by their group
id (or the item itself, e.g. mMARCO's id triples).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np

from engine.data.stream import StreamedTrainingSet, TooFewGroups, buffered_shuffle
from vocabulary.records import TrainingSet

#: The random stream of the held-out draw (distinct from the sampler's 0-3 and the buffered shuffle's 10).
_HELD_OUT_STREAM = 11

Source = TrainingSet | StreamedTrainingSet


def hold_out(source: Source, dev_size: int, seed: int) -> tuple[TrainingSet, Source]:
    """(the dev split of ``dev_size`` groups, the source without them); too few groups is :class:`TooFewGroups`."""
    if isinstance(source, StreamedTrainingSet):
        return _hold_out_streamed(source, dev_size, seed)
    if dev_size >= len(source.groups):
        raise TooFewGroups(f"{source.name} has {len(source.groups)} question groups: holding {dev_size} out for "
                           "the dev loss leaves none to train on; lower dev_size")
    order = np.random.default_rng([_HELD_OUT_STREAM, seed]).permutation(len(source.groups))
    held = set(order[:dev_size].tolist())
    dev = tuple(source.groups[i] for i in sorted(held))
    rest = tuple(g for i, g in enumerate(source.groups) if i not in held)
    return (TrainingSet(f"{source.name} (held-out dev)", source.languages, dev),
            dataclasses.replace(source, groups=rest))


def _key(item: Any) -> Any:
    return getattr(item, "id", item)


def _hold_out_streamed(source: StreamedTrainingSet, dev_size: int, seed: int) -> tuple[TrainingSet, Source]:
    shuffle_seed = int(np.random.SeedSequence([_HELD_OUT_STREAM, seed]).generate_state(1)[0])
    chosen: list[Any] = []
    for item in buffered_shuffle(source.read(1), shuffle_seed):
        chosen.append(item)
        if len(chosen) == dev_size:
            break
    if len(chosen) < dev_size:
        raise TooFewGroups(f"{source.name} has {len(chosen)} question groups, fewer than the {dev_size} held out "
                           "for the dev loss; lower dev_size")
    keys = {_key(item) for item in chosen}

    def read_rest(min_languages: int) -> Iterator[Any]:
        return (item for item in source.read(min_languages) if _key(item) not in keys)

    rest = dataclasses.replace(source, read=read_rest, size=None if source.size is None else source.size - dev_size,
                               count=None if source.count is None else (lambda: source.count() - dev_size))
    return TrainingSet(f"{source.name} (held-out dev)", source.languages, tuple(source.resolve(chosen))), rest

"""Training sources read lazily: a size-N subset that reads about N groups, never the whole source.

XQuAD fits in memory, so its subset is the first N of a seeded permutation
of every group (:func:`engine.sampling.training_subset`). mMARCO (hundreds of
thousands of queries per language) and a user's large file do not, so their
"permutation" is a seeded *buffered shuffle* of the source's own order (what
``datasets.IterableDataset.shuffle(seed, buffer_size)`` does): a buffer of
:data:`SHUFFLE_BUFFER` items is filled from the stream and each output is a
random item of it, replaced by the next one read. The output order is fixed
by the data seed, so size N is its first N items and subsets stay nested;
size N reads at most N + buffer items.

The price, named in the README: a subset of a streamed source is a random
sample of the source's first N + buffer items, not of the whole source, and
two data seeds draw overlapping subsets once N is well above the buffer.
mMARCO's triples file is in random order (MS MARCO sampled it), so its
prefix is itself a random sample of its queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from vocabulary.records import ParallelGroup

#: Items held by the buffered shuffle; a size-N subset reads at most N + SHUFFLE_BUFFER items.
SHUFFLE_BUFFER = 10_000
#: The random stream of the buffered shuffle (distinct from the sampler's streams 0-3).
_SHUFFLE_STREAM = 10


def buffered_shuffle(items: Iterable[Any], seed: int, buffer_size: int = SHUFFLE_BUFFER) -> Iterator[Any]:
    """``items`` in a seeded, approximately random order, holding at most ``buffer_size`` of them."""
    rng = np.random.default_rng([_SHUFFLE_STREAM, seed])
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        slot = int(rng.integers(buffer_size))
        yield buffer[slot]
        buffer[slot] = item
    while buffer:
        slot = int(rng.integers(len(buffer)))
        buffer[slot], buffer[-1] = buffer[-1], buffer[slot]
        yield buffer.pop()


class TooFewGroups(ValueError):
    """A size larger than the source's groups (a sampling problem, not malformed data)."""


@dataclass(frozen=True)
class StreamedTrainingSet:
    """A training source whose groups are read on demand.

    ``read(min_languages)`` yields the source's items in its own order,
    validating as it goes (items are groups, or lighter records such as
    mMARCO's id triples); ``resolve`` turns the chosen items into groups
    (mMARCO looks their texts up here, reading only what they need).
    ``size`` is the number of groups when the registry declares it;
    ``count`` counts them with one pass that holds nothing (a user's file).
    ``monolingual``: every group has one language (MIRACL train), so the
    source can only make X-X batches.
    """

    name: str
    languages: tuple[str, ...]
    read: Callable[[int], Iterator[Any]]
    resolve: Callable[[Sequence[Any]], tuple[ParallelGroup, ...]] = tuple
    size: int | None = None
    count: Callable[[], int] | None = None
    monolingual: bool = False

    def subset(self, size: int, seed: int, min_languages: int = 1) -> tuple[ParallelGroup, ...]:
        """The first ``size`` items of the seed's buffered shuffle, as groups; too few is :class:`TooFewGroups`."""
        chosen = []
        for item in buffered_shuffle(self.read(min_languages), seed):
            chosen.append(item)
            if len(chosen) == size:
                break
        if len(chosen) < size:
            raise TooFewGroups(f"train_size {size} is larger than the {len(chosen)} question groups of {self.name}; "
                             f"use at most {len(chosen)}")
        return self.resolve(chosen)

    def total(self) -> int:
        """The number of groups: declared, else counted (one pass over the source)."""
        if self.size is not None:
            return self.size
        if self.count is None:
            raise ValueError(f"{self.name}: its number of groups is unknown")
        return self.count()

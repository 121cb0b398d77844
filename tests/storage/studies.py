"""Study configurations shared by the storage tests."""

from __future__ import annotations

from vocabulary.config import RunConfig, StudyConfig


def grid_study(name: str = "grid", sizes=(2, 3, 4, 5, 6), seeds=(0, 1), baseline: bool = False) -> StudyConfig:
    """A study of len(sizes) x len(seeds) x 2 training runs (mono, cross), no hub access needed.

    Batches of 2 pairs, so every size from 2 up is a valid (if tiny) training set.
    """
    return StudyConfig(
        name=name,
        strategies=("mono", "cross"),
        train_sizes=tuple(sizes),
        seeds=tuple(seeds),
        include_baseline=baseline,
        template=RunConfig(batch_size=2),
    )

"""How many optimiser steps a run takes: computed from its settings and its training subset alone.

Both the sampler (which draws that many batches) and the setup form (which
estimates a study's cost before any data is loaded) use these functions, so
the estimate and the run can never disagree.
"""

from __future__ import annotations

import math

from vocabulary.config import RunConfig


def steps_per_epoch(num_groups: int, num_languages: int, batch_size: int) -> int:
    """Batches that show every (group, language) slot once on average."""
    return math.ceil(num_groups * num_languages / batch_size)


def total_steps(config: RunConfig, num_groups: int) -> int:
    """The run's number of optimiser steps: whole or fractional epochs, capped by ``max_steps``."""
    steps = math.ceil(config.epochs * steps_per_epoch(num_groups, len(config.train_languages), config.batch_size))
    return max(1, min(steps, config.max_steps) if config.max_steps is not None else steps)

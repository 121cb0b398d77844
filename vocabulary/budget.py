"""How much a run trains: its budget kind, its number of optimiser steps and its dev batches.

Both the sampler (which draws that many batches) and the setup form (which
estimates a study's cost before any data is loaded) use these functions, so
the estimate and the run can never disagree.

Budgets (``RunConfig.budget``):

- ``epochs``: ``ceil(epochs x steps_per_epoch)`` steps, so steps grow with the
  training size and a scaling curve moves data and compute together (the
  paper's setting, and what every study file written before budgets meant);
- ``steps``: the same number of optimiser steps at every size, so a curve
  measures data, not compute;
- ``pairs``: a fixed number of training pairs seen, ``ceil(pairs / batch_size)``
  steps at every size (the same as ``steps`` for one batch size, but it keeps
  its meaning when batch sizes are compared).

``max_steps`` caps any of them.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Protocol, Sequence

BUDGETS: tuple[str, ...] = ("epochs", "steps", "pairs")


class Budgeted(Protocol):
    """The settings a budget reads (a :class:`vocabulary.config.RunConfig` has them; config imports this module)."""

    budget: str
    epochs: float
    steps: int | None
    pairs: int | None
    max_steps: int | None
    batch_size: int
    train_languages: Sequence[str]


def steps_per_epoch(num_groups: int, num_languages: int, batch_size: int) -> int:
    """Batches that show every (group, language) slot once on average."""
    return math.ceil(num_groups * num_languages / batch_size)


def total_steps(config: Budgeted, num_groups: int) -> int:
    """The run's number of optimiser steps for its budget, capped by ``max_steps``."""
    if config.budget == "steps":
        steps = int(config.steps or 1)
    elif config.budget == "pairs":
        steps = math.ceil(int(config.pairs or 1) / config.batch_size)
    else:
        steps = math.ceil(config.epochs * steps_per_epoch(num_groups, len(config.train_languages), config.batch_size))
    return max(1, min(steps, config.max_steps) if config.max_steps is not None else steps)


def mono_batch_count(alpha: float, steps: int) -> int:
    """Monolingual batches of a hybrid run of ``steps`` steps: alpha x steps rounded half up (exact, not drawn)."""
    return math.floor(alpha * steps + 0.5)


def dev_batch_count(num_dev_groups: int, batch_size: int) -> int:
    """Fixed dev batches of a run: enough to show every dev group once on average (at least one)."""
    return max(1, math.ceil(num_dev_groups / batch_size))


def budget_label(values: Mapping[str, Any]) -> str:
    """What a run's budget is called in tables, legends and the CSV: ``1 epoch``, ``200 steps``, ``12800 pairs``.

    ``values`` is a config's dict or a tidy metrics row; a row without a
    ``budget`` (written before budgets existed) trained by epochs.
    """
    budget = values.get("budget") or "epochs"
    if budget == "steps":
        text = f"{values.get('steps')} steps"
    elif budget == "pairs":
        text = f"{values.get('pairs')} pairs"
    else:
        epochs = float(values.get("epochs") or 1.0)
        text = f"{epochs:g} epoch" + ("" if epochs == 1 else "s")
    cap = values.get("max_steps")
    return text if cap is None else f"{text}, at most {cap} steps"

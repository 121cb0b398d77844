"""Model selection on a dev split: the dev loss every ``dev_every`` steps, and the weights of the best one.

The dev loss is the run's own training objective (its batching rule, its
loss) on fixed batches of held-out groups of the training source
(:func:`engine.sampling.dev_batches`; never an evaluation set), computed in
eval mode (no dropout) without gradients. It is evaluated every
``dev_every`` steps and after the last step, never at step 0. Evaluating it
draws no random numbers, so a run trains exactly the same steps whether or
not it watches a dev loss.

With ``select: best_dev`` (the paper's early stopping on validation loss)
the weights of the lowest dev loss so far are kept in
``workdir/best-step-<N>/`` and loaded into the encoder when training ends;
otherwise (``last``) the dev loss is only logged and reported. With
``patience`` the run stops once that many evaluations in a row have not
improved on the lowest dev loss (the learning-rate schedule stays that of
the whole budget, so a run that stops trains the same steps as its
unstopped twin up to there).

Resuming: the history and the best step travel in the trainer checkpoint
(plain JSON). A newer best folder is written before the next checkpoint
records it, and older folders are deleted only after a checkpoint records
their successor, so the checkpoint's best step always has its folder
locally. A checkpoint fetched from an artifact mirror on another machine
comes without that folder: the run then logs a warning and selects among
the dev losses after the move.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

from safetensors.torch import load_model, save_model

from engine.folders import replaced_whole
from engine.model import Encoder
from engine.sampling import Batch
from vocabulary.config import RunConfig

BEST_PREFIX = "best-step-"
_WEIGHTS_FILE = "model.safetensors"

log = logging.getLogger(__name__)


class ModelSelection:
    """A run's dev losses, and (``best_dev``) the lowest one's weights on disk."""

    def __init__(self, config: RunConfig, batches: Sequence[Batch], workdir: Path, is_main: bool = True):
        self.every = config.dev_every
        self.keep_best = config.select == "best_dev"
        self.patience = config.patience
        self.batches = list(batches)
        self.workdir = Path(workdir)
        self.is_main = is_main
        self.history: list[tuple[int, float]] = []
        self.best: tuple[int, float] | None = None

    def should_stop(self) -> bool:
        """Early stopping: the dev loss has not improved for ``patience`` evaluations (never without patience).

        Read from the history alone, so a resumed run stops where an uninterrupted one does.
        """
        if self.patience is None:
            return False
        finite = [(loss, index) for index, (_, loss) in enumerate(self.history) if math.isfinite(loss)]
        if not finite:
            return len(self.history) >= self.patience
        return len(self.history) - 1 - min(finite)[1] >= self.patience

    @property
    def latest(self) -> float | None:
        return self.history[-1][1] if self.history else None

    def due(self, step: int, total: int) -> bool:
        """Whether the dev loss is evaluated after ``step`` (every ``dev_every`` steps and after the last)."""
        if self.every is None or (self.history and self.history[-1][0] == step):
            return False
        return step % self.every == 0 or step == total

    def evaluate(self, step: int, encoder: Encoder, batch_loss: Callable[[Batch], float]) -> float:
        """The mean loss of the dev batches after ``step``, in eval mode; keep the weights if it is the best."""
        was_training = encoder.training
        encoder.eval()
        try:
            loss = sum(batch_loss(batch) for batch in self.batches) / len(self.batches)
        finally:
            encoder.train(was_training)
        self.history.append((step, loss))
        log.info("step %d: dev loss %.4f", step, loss)
        if self.keep_best and math.isfinite(loss) and (self.best is None or loss < self.best[1]):
            self.best = (step, loss)
            if self.is_main:
                with replaced_whole(self._folder(step)) as work:
                    save_model(encoder, str(work / _WEIGHTS_FILE))
        return loss

    # ---- what a checkpoint keeps ------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": [[step, loss] for step, loss in self.history],
                "best": list(self.best) if self.best is not None else None}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Continue from a checkpoint's selection state (None: the checkpoint had none)."""
        if not state:
            return
        self.history = [(int(step), float(loss)) for step, loss in state["history"]]
        self.best = (int(state["best"][0]), float(state["best"][1])) if state["best"] else None
        if self.best is not None and not (self._folder(self.best[0]) / _WEIGHTS_FILE).is_file():
            log.warning("the weights of the best dev loss (step %d) are not in %s (a checkpoint from another "
                        "machine?); selecting among the dev losses from here on", self.best[0], self.workdir)
            self.best = None
        self.prune()

    def prune(self) -> None:
        """Delete every best folder but the recorded one's (call after a checkpoint is saved)."""
        if not self.is_main or not self.workdir.is_dir():
            return
        keep = self._folder(self.best[0]).name if self.best is not None else None
        for folder in self.workdir.glob(BEST_PREFIX + "*"):
            if folder.name != keep:
                shutil.rmtree(folder, ignore_errors=True)

    def restore_best(self, encoder: Encoder) -> int | None:
        """Load the best dev loss's weights into ``encoder`` (``best_dev``); return that step, else None."""
        if not self.keep_best or self.best is None:
            return None
        load_model(encoder, str(self._folder(self.best[0]) / _WEIGHTS_FILE), device=str(encoder.device))
        log.info("kept the weights of step %d (lowest dev loss %.4f)", *self.best)
        return self.best[0]

    def _folder(self, step: int) -> Path:
        return self.workdir / f"{BEST_PREFIX}{step:09d}"

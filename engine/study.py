"""Execute one run: data -> (train -> checkpoint) -> evaluate -> metric rows.

Pure engine code: no database, no Qt. Progress and cancellation travel as
plain callables (the Orange3 task-state idea), so the worker, the demo and
tests drive the same function. Under torchrun every rank calls
:func:`execute`: all ranks train, rank 0 alone evaluates (the others return
no rows), since evaluation is one pass over a corpus that one GPU encodes
quickly and its FAISS search is not data-parallel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.config import RunConfig
from engine.data import load_eval_set, load_training_set
from engine.distributed import DistContext
from engine.evaluate import EmbeddingCache, MetricRow, evaluate
from engine.model import EncoderSettings, load_encoder
from engine.train import TrainingCancelled, TrainProgress, train

log = logging.getLogger(__name__)

#: Share of a training run's progress bar given to training (the rest is evaluation).
TRAINING_SHARE = 0.8


class RunCancelled(Exception):
    """The user cancelled the run; nothing was stored."""


@dataclass(frozen=True)
class RunProgress:
    """What a run is doing now; ``fraction`` runs from 0 to 1 over the whole run."""

    phase: str
    fraction: float
    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None


def encoder_settings(config: RunConfig) -> EncoderSettings:
    return EncoderSettings(
        pooling=config.pooling,
        normalize=True,
        query_prefix=config.query_prefix,
        passage_prefix=config.passage_prefix,
        max_length=config.max_length,
    )


def execute(
    config: RunConfig,
    workdir: Path,
    *,
    device: str = "cpu",
    progress: Callable[[RunProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_checkpoint: Callable[[int, Path], None] | None = None,
    context: DistContext | None = None,
) -> list[MetricRow]:
    """Train (unless the config is evaluation-only), then evaluate on every eval set.

    A ``workdir`` holding a checkpoint from an interrupted attempt is resumed
    by the trainer, so a requeued run continues rather than starting over.
    Raises :class:`RunCancelled` when ``cancelled()`` turns true. With a
    several-process ``context`` (``device`` then being that rank's device)
    ranks other than 0 return ``[]`` after training.
    """
    report = progress or (lambda _p: None)
    is_cancelled = cancelled or (lambda: False)
    config.validate()
    workdir.mkdir(parents=True, exist_ok=True)
    eval_start = TRAINING_SHARE if config.is_training else 0.0

    report(RunProgress("loading model", 0.0))
    encoder = load_encoder(config.model, encoder_settings(config), device=device)
    if config.is_training:
        report(RunProgress("loading training data", 0.0))
        training_set = load_training_set(config.train_dataset, config.train_languages, "train")
        log.info("training %s on %d question groups of %s", config.label, config.train_size, training_set.name)

        def on_step(p: TrainProgress) -> None:
            report(RunProgress("training", TRAINING_SHARE * p.step / max(p.total_steps, 1), p.step, p.total_steps, p.loss))

        try:
            result = train(
                config, training_set, encoder, workdir,
                progress=on_step, cancelled=is_cancelled, on_checkpoint=on_checkpoint, context=context,
            )
        except TrainingCancelled as exc:
            raise RunCancelled(str(exc)) from exc
        log.info("trained %d steps in %.1f s, final loss %.4f", result.steps, result.seconds, result.final_loss)
    if context is not None and not context.is_main:
        return []

    rows: list[MetricRow] = []
    cache = EmbeddingCache()
    specs = config.evaluations
    for index, spec in enumerate(specs):
        share = (1.0 - eval_start) / len(specs)
        base = eval_start + index * share
        report(RunProgress(f"evaluating {spec.label}", base))
        eval_set = load_eval_set(spec)

        def on_encode(stage: str, done: int, total: int, base: float = base, label: str = spec.label) -> None:
            if is_cancelled():
                raise RunCancelled(f"cancelled while evaluating {label}")
            report(RunProgress(f"evaluating {label}: {stage}", base + share * done / max(total, 1)))

        rows += evaluate(
            encoder, eval_set, spec.label,
            top_k=config.top_k, batch_size=config.eval_batch_size, cache=cache, progress=on_encode,
        )
        log.info("evaluated %s: %d metric values", spec.label, len(rows))
    report(RunProgress("done", 1.0))
    return rows

"""Execute one run: data -> (train -> checkpoint) -> evaluate -> metric rows, per-query values, run files.

A ``bm25`` run has no model: it ranks every eval set with BM25
(:mod:`engine.bm25`) through the evaluator's own searches and measures.

Pure engine code: no database, no Qt. Progress and cancellation travel
through one :class:`engine.state.RunState`, so the worker, the demo and
tests drive the same function. Under torchrun every rank calls
:func:`execute`: all ranks train, rank 0 alone evaluates (the others return
no rows), since evaluation is one pass over a corpus that one GPU encodes
quickly and its FAISS search is not data-parallel.

Every eval set is loaded before training starts, so a missing corpus or a
malformed file fails the run in seconds rather than after hours of training.
Under torchrun rank 0 loads them and, for a training run, every rank learns
whether that worked, so all ranks stop together.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from engine.bm25 import BM25Pool
from engine.data import load_eval_set, load_training_data
from engine.distributed import DistContext
from engine.evaluate import EmbeddingCache, Evaluation, PassageTexts, evaluate, evaluate_lexical
from engine.folders import replaced_whole
from engine.loading import load_encoder
from engine.model import Encoder
from engine.state import Progress, RunState, Slice, TaskState
from engine.train import train
from vocabulary.config import EvalSpec, RunConfig
from vocabulary.datasets import DATASETS
from vocabulary.model_specs import bm25_options, is_bm25_spec
from vocabulary.records import EvalSet
from vocabulary.run_files import EVAL_DIR, eval_folder_name

log = logging.getLogger(__name__)

#: Share of a training run's progress bar given to training (the rest is evaluation).
TRAINING_SHARE = 0.8
def execute(
    config: RunConfig,
    workdir: Path,
    *,
    device: str = "cpu",
    state: RunState | None = None,
    on_checkpoint: Callable[[int, Path], None] | None = None,
    context: DistContext | None = None,
    frozen_cache_dir: Path | None = None,
) -> Evaluation:
    """Train (unless the config is evaluation-only), then evaluate on every eval set.

    ``frozen_cache_dir`` holds the frozen-prefix caches of ``frozen_cache``
    runs (:mod:`engine.frozen_prefix`), shared by the runs that use it.

    A ``workdir`` holding a checkpoint from an interrupted attempt is resumed
    by the trainer, so a requeued run continues rather than starting over.
    The evaluation files go to ``workdir/eval`` (:data:`EVAL_DIR`), replaced
    as a whole. Raises :class:`engine.state.Cancelled` when the state asks to
    stop. With a several-process ``context`` (``device`` then being that
    rank's device) ranks other than 0 return an empty Evaluation after training.
    """
    state = state or TaskState()
    config.validate()
    workdir.mkdir(parents=True, exist_ok=True)
    if is_bm25_spec(config.model):
        return _execute_bm25(config, workdir, state, context)
    state.report(Progress("loading model", 0.0))
    encoder = load_encoder(config.model, config.encoder_settings, device=device)
    log.info("encoder %s", encoder.describe())  # the settings used and where each came from, in the run log
    eval_sets = _load_eval_sets(config, state, context)
    if config.evaluates_through_frozen_cache:
        encoder.cache_frozen_prefix(config.trainable_layers, frozen_cache_dir)
    if config.is_training:
        _train(config, encoder, workdir, Slice(state, 0.0, TRAINING_SHARE), on_checkpoint, context,
               frozen_cache_dir)
    if context is not None and not context.is_main:
        return Evaluation()
    start = TRAINING_SHARE if config.is_training else 0.0
    with replaced_whole(workdir / EVAL_DIR) as files:
        result = _evaluate(config, encoder, eval_sets, Slice(state, start, 1.0 - start), files)
    if encoder.frozen_prefix is not None:
        encoder.frozen_prefix.flush()  # the eval texts' hidden states, for the study's next runs
    state.report(Progress("done", 1.0))
    return result


def _execute_bm25(config: RunConfig, workdir: Path, state: RunState, context: DistContext | None) -> Evaluation:
    """The BM25 reference: no model, every eval set ranked by :class:`engine.bm25.BM25Pool` on the evaluator's path."""
    options = bm25_options(config.model)
    eval_sets = _load_eval_sets(config, state, context)
    if context is not None and not context.is_main:
        return Evaluation()
    log.info("BM25 (bm25s, Lucene scoring) k1=%g b=%g", options["k1"], options["b"])
    result = Evaluation()
    share = 1.0 / len(eval_sets)
    with replaced_whole(workdir / EVAL_DIR) as files:
        for index, (spec, eval_set) in enumerate(eval_sets):
            part = Slice(state, index * share, share, f"evaluating {spec.label}")
            part.report(Progress("indexing", 0.0))
            corpus = BM25Pool.build([p.id for p in eval_set.passages], PassageTexts(eval_set.passages),
                                    k1=options["k1"], b=options["b"])
            evaluation = evaluate_lexical(corpus, eval_set, spec.label, measures=DATASETS[spec.dataset].measures,
                                          top_k=config.top_k, state=part,
                                          run_dir=files / eval_folder_name(spec.label))
            result.extend(evaluation)
            log.info("evaluated %s with BM25: %d metric values", spec.label, len(evaluation.rows))
    state.report(Progress("done", 1.0))
    return result


class EvalSetsUnavailable(RuntimeError):
    """On a rank other than 0: rank 0 could not load the eval sets, so no rank trains."""


def _load_eval_sets(config: RunConfig, state: RunState,
                    context: DistContext | None) -> list[tuple[EvalSpec, EvalSet]]:
    """Every eval set of the run (on rank 0; other ranks get []); raises on every rank if one fails to load."""
    main = context is None or context.is_main
    loaded, error = [], None
    if main:
        state.report(Progress("loading eval sets", 0.0))
        try:
            loaded = [(spec, load_eval_set(spec)) for spec in config.evaluations]
        except Exception as exc:  # raised below, once every rank knows
            error = exc
    # The ranks that are about to train together all ask; an evaluation-only run is rank 0's alone.
    together = context is not None and config.is_training
    anywhere = context.any(error is not None) if together else error is not None
    if error is not None:
        raise error
    if anywhere:
        raise EvalSetsUnavailable("rank 0 could not load the eval sets; its error is the run's")
    return loaded


def _train(config: RunConfig, encoder: Encoder, workdir: Path, state: RunState,
           on_checkpoint: Callable[[int, Path], None] | None, context: DistContext | None,
           frozen_cache_dir: Path | None) -> None:
    state.report(Progress("loading training data", 0.0))
    training_set, dev_set = load_training_data(config)
    log.info("training %s (%s) on %d question groups of %s", config.label, config.budget_label, config.train_size,
             " + ".join(source.name for source in training_set))
    result = train(config, training_set, encoder, workdir, dev_set=dev_set, state=state, on_checkpoint=on_checkpoint,
                   context=context, frozen_cache_dir=frozen_cache_dir)
    if encoder.frozen_prefix is not None:
        prefix = encoder.frozen_prefix
        log.info("frozen-prefix cache %s: %d texts computed, the rest read", prefix.folder or "in memory",
                 prefix.computed)
    log.info("trained %d steps in %.1f s, final loss %.4f", result.steps, result.seconds, result.final_loss)
    latest_dev = result.dev_losses[-1][1] if result.dev_losses else None
    state.report(Progress("trained", 1.0, result.steps, result.total_steps, loss=result.final_loss, dev_loss=latest_dev,
                          selected_step=result.selected_step))
    if config.select == "best_dev":
        log.info("kept the weights of step %d of %d (lowest dev loss)", result.selected_step, result.steps)


def _evaluate(config: RunConfig, encoder: Encoder, eval_sets: list[tuple[EvalSpec, EvalSet]], state: RunState,
              files: Path) -> Evaluation:
    """Every eval set in turn, each on an equal share of the progress bar; passages encoded once per corpus."""
    result = Evaluation()
    cache = EmbeddingCache()
    share = 1.0 / len(eval_sets)
    for index, (spec, eval_set) in enumerate(eval_sets):
        part = Slice(state, index * share, share, f"evaluating {spec.label}")
        part.report(Progress("", 0.0))
        evaluation = evaluate(
            encoder, eval_set, spec.label, measures=DATASETS[spec.dataset].measures, top_k=config.top_k,
            batch_size=config.eval_batch_size, cache=cache,
            state=part, run_dir=files / eval_folder_name(spec.label), passage_max_length=spec.passage_max_length,
            symmetric=bool(spec.symmetric), index=spec.index, vectors=spec.vectors,
        )
        result.extend(evaluation)
        log.info("evaluated %s: %d metric values, %d per-query cells", spec.label, len(evaluation.rows),
                 len(evaluation.per_query))
    return result

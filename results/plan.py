"""What a study will cost before it is submitted: run count, rough minutes, data limits.

Qt-free, and it loads no data: the setup form recomputes this on every
keystroke, so it works from the dataset facts of :mod:`vocabulary.datasets`
and from costs measured on this project's 2-core reference machine.

The time estimate is deliberately simple and says so in the form. Its
constants were measured on the 2-core reference machine (bench/RESULTS.md,
e5-small, fp32):

* a training step of 32 pairs of at most 64 tokens costs a forward pass
  through every layer (``FORWARD_S``), a backward pass through the trainable
  layers (``BACKWARD_ALL_LAYERS_S`` scaled by the share trained) and, when the
  word embeddings train, their AdamW update (``EMBEDDING_UPDATE_S``); it scales
  linearly with batch size and with ``min(max_length, 128) / 64`` (training
  texts are sentences, rarely longer than 128 tokens);
* a dev-loss evaluation (``dev_every``) is a forward pass (``FORWARD_S``) over each
  of the run's fixed dev batches (:func:`vocabulary.budget.dev_batch_count`),
  every ``dev_every`` steps and after the last;
* evaluation encodes every query (capped by ``max_queries``) and every passage
  of each eval-set language (the registry's ``eval_texts``) at the set's measured rate
  (``ENCODE_PER_SECOND_CPU``: short sentences ~85/s, long passages ~30/s);
* a GPU is taken to be ``GPU_SPEEDUP`` times faster for both (a guess: no GPU
  was measured).
"""

from __future__ import annotations

from dataclasses import dataclass

from results.wording import plural
from vocabulary.budget import dev_batch_count, total_steps
from vocabulary.config import RunConfig, StudyConfig
from vocabulary.datasets import dataset_info
from vocabulary.sources import describe_split, parse_source, split_size

#: (queries, passages) per language assumed for an eval split the registry has no count for.
UNKNOWN_EVAL_TEXTS = (300, 300)
#: Seconds per training step of 32 pairs x 64 tokens on the reference CPU (see the module docstring).
FORWARD_S = 1.0
BACKWARD_ALL_LAYERS_S = 2.9
EMBEDDING_UPDATE_S = 0.9
#: Texts encoded per second on the reference CPU, by eval set (their passages' typical length).
ENCODE_PER_SECOND_CPU: dict[str, float] = {"flores": 85.0, "xquad-r": 85.0, "ntrex": 70.0, "afriqa": 30.0, "miracl": 40.0}
DEFAULT_ENCODE_PER_SECOND = 50.0
#: e5-small's layers, for the share of them trained.
MODEL_LAYERS = 12
GPU_SPEEDUP = 40.0


def source_sizes(template: RunConfig) -> list[tuple[str, int | None]]:
    """Each training source's name and the groups of the split a run of ``template`` trains on (None: counted
    only when read)."""
    names = [parse_source(spec)[0] for spec in template.train_sources]
    return [(name, dataset_info(name).train_groups.get(template.train_split(name))) for name in names]


def largest_size_text(template: RunConfig, largest: int | None = None) -> str:
    """The largest valid size of ``template``'s sources, and how a size ``largest`` is split across them."""
    sizes = source_sizes(template)
    known = [(name, size) for name, size in sizes if size is not None]
    unknown = [name for name, size in sizes if size is None]
    if not sizes:
        return ""
    if unknown:
        counted = f"{describe_split(*zip(*known))}; " if known else ""
        return (f"{counted}{' and '.join(unknown)}: size known after reading, so a size too large for "
                "it is refused when a run starts.")
    total = sum(size for _name, size in known)
    if len(known) == 1:
        (name, size), = known
        return (f"At most {total:,} question groups (the {name} {template.train_split(name)} split)."
                + widened_text(template, name))
    hint = f"At most {total:,} question groups: {describe_split(*zip(*known))}."
    if largest is not None and 0 < largest <= total:
        hint += (f"\nA size is split across them in proportion: {largest:,} is "
                 f"{describe_split([n for n, _s in known], split_size(largest, [s for _n, s in known]))}.")
    return hint


def widened_text(template: RunConfig, name: str) -> str:
    """Why a source trains on more than its train split: no evaluation set holds its other articles out.

    Unticking XQuAD-R changes XQuAD's training pool from 698 to 1,190 groups;
    that must be said where it happens, not found out from the size hint.
    """
    entry = dataset_info(name)
    if template.train_split(name) == "train" or not entry.held_out_for:
        return ""
    held_out = " or ".join(sorted(entry.held_out_for))
    train_groups = entry.train_groups.get("train")
    size = f" ({train_groups:,} groups)" if train_groups else ""
    return (f" No {held_out} evaluation is ticked, so {name}'s evaluation articles are trained on too; "
            f"ticking one limits training to the train split{size}.")


def estimate_steps(config: RunConfig) -> int:
    """Optimiser steps of one run: :func:`vocabulary.budget.total_steps` of its (capped) training size."""
    if not config.is_training:
        return 0
    return total_steps(config, min(config.train_size, config.max_train_size or config.train_size))


def _batch_scale(config: RunConfig) -> float:
    """How much longer than the measured 32 pairs x 64 tokens a batch of ``config`` takes."""
    return (config.batch_size / 32) * (min(config.max_length or 128, 128) / 64)  # None: the model's own


def step_seconds(config: RunConfig) -> float:
    """Rough CPU seconds of one training step of ``config``."""
    trained = MODEL_LAYERS if config.trainable_layers is None else min(config.trainable_layers, MODEL_LAYERS)
    # trainable_layers freezes everything below the top layers, the embeddings included.
    embeddings_train = not config.freeze_embeddings and config.trainable_layers is None
    step = FORWARD_S + BACKWARD_ALL_LAYERS_S * trained / MODEL_LAYERS + (EMBEDDING_UPDATE_S if embeddings_train else 0.0)
    return step * _batch_scale(config)


def dev_seconds(config: RunConfig) -> float:
    """Rough CPU seconds of a run's dev-loss evaluations (forward passes over its fixed dev batches)."""
    if not config.is_training or config.dev_every is None:
        return 0.0
    info = dataset_info(parse_source(config.train_sources[0])[0])
    groups = config.dev_size if config.holds_out_dev else info.train_groups.get(info.dev_split or "", 0)
    steps = estimate_steps(config)
    evaluations = steps // config.dev_every + (1 if steps % config.dev_every else 0)
    return evaluations * dev_batch_count(groups, config.batch_size) * FORWARD_S * _batch_scale(config)


def estimate_seconds(config: RunConfig, device: str = "cpu") -> float:
    """Rough wall time of one run (training + evaluation) on ``device``."""
    encoding = 0.0
    for spec in config.evaluations:
        queries, passages = dataset_info(spec.dataset).eval_texts.get(spec.split, UNKNOWN_EVAL_TEXTS)
        if spec.max_queries is not None:
            queries = min(queries, spec.max_queries)
        encoding += len(spec.languages) * (queries + passages) / ENCODE_PER_SECOND_CPU.get(
            spec.dataset, DEFAULT_ENCODE_PER_SECOND)
    seconds = estimate_steps(config) * step_seconds(config) + dev_seconds(config) + encoding
    return seconds / GPU_SPEEDUP if device == "cuda" else seconds


@dataclass(frozen=True)
class StudyPlan:
    runs: int
    training_runs: int
    minutes: float
    device: str

    def summary(self) -> str:
        baseline = self.runs - self.training_runs
        parts = f"{self.training_runs} training" + (f" + {baseline} evaluation-only" if baseline else "")
        where = "a GPU" if self.device == "cuda" else "this machine's CPU"
        return f"{plural(self.runs, 'run')} ({parts}), about {_duration(self.minutes)} on {where} (rough estimate)"


def plan(study: StudyConfig, device: str = "cpu") -> StudyPlan:
    """Count the study's runs and estimate their total time, one worker at a time."""
    runs = study.expand()
    minutes = sum(estimate_seconds(r, device) for r in runs) / 60
    return StudyPlan(len(runs), sum(r.is_training for r in runs), minutes, device)


def _duration(minutes: float) -> str:
    if minutes < 90:
        return plural(max(1, round(minutes)), "minute")
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} hours"
    return f"{minutes / 1440:.1f} days"

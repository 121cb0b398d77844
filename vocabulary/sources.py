"""A run's training sources: how they are named, how a size is split across them, how batches pick one.

A run trains on one source or several (``RunConfig.train_dataset``). Each
batch comes from one source (as in arXiv 2408.10536, whose batches are
"sampled based on dataset size"; we read that as one dataset per batch,
drawn in proportion to its size, sentence-transformers' proportional
multi-dataset batch sampler), or the sources take turns (``round_robin``,
its other policy). The run's size N is the total number of groups, split
across sources in proportion to their sizes (:func:`split_size`).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from vocabulary.datasets import DATASETS
from vocabulary.languages import TARGET_LANGUAGES

#: How each batch picks its source.
SOURCE_SAMPLINGS: tuple[str, ...] = ("proportional", "round_robin")
#: What separates a source's name from its path (``file:/data/pairs.jsonl``, ``mmarco:/data/mmarco``).
SOURCE_SEPARATOR = ":"


def parse_source(spec: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME:PATH`` -> (name, path or None); only the first colon separates."""
    name, separator, path = spec.partition(SOURCE_SEPARATOR)
    return name.strip(), (path.strip() or None) if separator else None


def split_size(total: int, sizes: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``sizes`` (largest remainder, ties to the earlier source)."""
    whole = sum(sizes)
    if whole <= 0:
        raise ValueError("the sources have no groups")
    exact = [total * size / whole for size in sizes]
    shares = [int(value) for value in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def describe_split(names: Sequence[str], shares: Sequence[int]) -> str:
    """``mmarco 900 + xquad 100`` (what the form and the CSV say a size is made of)."""
    return " + ".join(f"{name} {share}" for name, share in zip(names, shares))


def zero_shot_note(trained_eval_languages: Sequence[str], ablation: bool) -> str:
    """What a run's labels add when it trains on a language it is evaluated in; empty when zero-shot."""
    if not trained_eval_languages:
        return ""
    languages = ", ".join(trained_eval_languages)
    return f"ablation: trains on {languages}" if ablation else f"not zero-shot: {languages}"


def trained_eval_languages(sources: str | Sequence[str], train_languages: Iterable[str],
                           evaluations: Iterable[Any]) -> tuple[str, ...]:
    """Evaluated zero-shot targets (sw, yo) that a training source trains on; ``evaluations``: EvalSpecs or dicts.

    Training on English and evaluating English is the paper's setting, not a
    zero-shot claim; only the research question's targets are guarded.
    """
    offered = set()
    for spec in [sources] if isinstance(sources, str) else sources:
        info = DATASETS.get(parse_source(spec)[0])
        offered.update(info.languages if info else ())
    evaluated = set()
    for spec in evaluations:
        evaluated.update(spec["languages"] if isinstance(spec, Mapping) else spec.languages)
    return tuple(sorted(offered.intersection(train_languages, evaluated, TARGET_LANGUAGES)))

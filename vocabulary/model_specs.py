"""Model spec strings, checked without loading anything: ``embedded:NAME``, ``tiny:OPTIONS``, ``bm25[:OPTIONS]``,
a folder, a hub name.

The engine loads models by these strings; config validation (the GUI form, ``submit``)
checks them here first, so a malformed ``tiny:`` spec or a folder that is not there
is refused before a run is queued rather than when a worker starts it.
"""

from __future__ import annotations

from pathlib import Path

#: ``tiny:`` defaults: a 2-layer random BERT (with the real vocabulary) for tests and demos.
TINY_DEFAULTS: dict[str, int] = {"layers": 2, "hidden": 32, "heads": 2, "seed": 0}
TINY_PREFIX = "tiny:"


def tiny_options(spec: str) -> dict[str, int]:
    """The options of a ``tiny:`` spec, defaults filled in; ValueError naming the bad option."""
    options = dict(TINY_DEFAULTS)
    body = spec.removeprefix(TINY_PREFIX)
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, _, value = item.partition("=")
        if key not in TINY_DEFAULTS or not value.strip().lstrip("-").isdigit():
            raise ValueError(f"{spec!r}: bad option {item!r}; use tiny: or tiny:layers=2,hidden=32,heads=2,seed=0")
        options[key] = int(value)
    if min(options["layers"], options["hidden"], options["heads"]) < 1 or options["hidden"] % options["heads"]:
        raise ValueError(f"{spec!r}: layers, hidden and heads must be positive and heads must divide hidden")
    return options


#: ``bm25``: the lexical reference, evaluation-only (engine.bm25). pyserini's parameters by default.
BM25_SPEC = "bm25"
BM25_DEFAULTS: dict[str, float] = {"k1": 0.9, "b": 0.4}


def is_bm25_spec(spec: str) -> bool:
    return spec == BM25_SPEC or spec.startswith(BM25_SPEC + ":")


def bm25_options(spec: str) -> dict[str, float]:
    """k1 and b of a ``bm25`` / ``bm25:k1=0.9,b=0.4`` spec, defaults filled in; ValueError naming the bad option."""
    options = dict(BM25_DEFAULTS)
    for item in filter(None, (part.strip() for part in spec.removeprefix(BM25_SPEC).removeprefix(":").split(","))):
        key, _, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if key not in BM25_DEFAULTS or not number >= 0 or number == float("inf"):
            raise ValueError(f"{spec!r}: bad option {item!r}; use bm25 or bm25:k1=0.9,b=0.4 (k1 >= 0, 0 <= b <= 1)")
        options[key] = number
    if options["b"] > 1:
        raise ValueError(f"{spec!r}: b must be between 0 and 1 (length normalisation); got {options['b']:g}")
    return options


def canonical_bm25_spec(spec: str) -> str:
    """One spelling per parameter set (``bm25`` and ``bm25:k1=0.9`` are the same run): ``bm25:k1=0.9,b=0.4``."""
    options = bm25_options(spec)
    return f"{BM25_SPEC}:k1={options['k1']:g},b={options['b']:g}"


def bm25_label(spec: str) -> str:
    """``BM25``, with its parameters when they are not the defaults: ``BM25 (k1=1.2, b=0.75)``."""
    options = bm25_options(spec)
    if options == BM25_DEFAULTS:
        return "BM25"
    return f"BM25 (k1={options['k1']:g}, b={options['b']:g})"


def is_folder_spec(spec: str) -> bool:
    """A spec written as a path (``./``, ``/``, ``~``) names a local folder, never a hub model."""
    return spec.startswith((".", "/", "~"))


def check_model_spec(spec: str) -> None:
    """ValueError when the spec cannot name a model: a malformed ``tiny:`` or a path that is not a folder."""
    if spec.startswith(TINY_PREFIX):
        tiny_options(spec)
    elif is_bm25_spec(spec):
        bm25_options(spec)
    elif is_folder_spec(spec) and not Path(spec).expanduser().is_dir():
        raise ValueError(f"model folder {spec!r} does not exist (or is not a folder); give an existing folder")

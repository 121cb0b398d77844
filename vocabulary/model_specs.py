"""Model spec strings, checked without loading anything: ``embedded:NAME``, ``tiny:OPTIONS``, a folder, a hub name.

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


def is_folder_spec(spec: str) -> bool:
    """A spec written as a path (``./``, ``/``, ``~``) names a local folder, never a hub model."""
    return spec.startswith((".", "/", "~"))


def check_model_spec(spec: str) -> None:
    """ValueError when the spec cannot name a model: a malformed ``tiny:`` or a path that is not a folder."""
    if spec.startswith(TINY_PREFIX):
        tiny_options(spec)
    elif is_folder_spec(spec) and not Path(spec).expanduser().is_dir():
        raise ValueError(f"model folder {spec!r} does not exist (or is not a folder); give an existing folder")

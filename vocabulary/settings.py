"""What each run setting is, declared once on its :class:`vocabulary.config.RunConfig` field.

A field's metadata says its role in the run id, its CSV column and its
entry in the setup form's Advanced section (label, editor kind, help, bounds);
the run identity, the tidy CSV's columns and the form are derived from it, so
a new setting is one field declaration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

#: A setting's part in the run id. ``training``: part of a training run's identity. ``evaluation``:
#: part of every run's (what an evaluation-only run reads too). ``frozen_cache``: also part of an
#: evaluation-only run's identity when it evaluates through the frozen-prefix cache. ``operational``:
#: how a run is executed or stored, never part of its identity.
Role = Literal["training", "evaluation", "frozen_cache", "operational"]
#: What a "not set" encoder setting means: the base model's own (see vocabulary.config.EncoderSettings).
MODELS_OWN = "the model's own"


@dataclass(frozen=True)
class FormField:
    """One setting in the setup form's Advanced section.

    ``kind``: ``float`` (a text box, so 3e-5 can be typed), ``int``,
    ``optional_int`` (the lowest value of the spin box means "not set"),
    ``bool``, ``text``, ``optional_text`` (a "not set" box beside the text)
    or ``choice`` (with ``none_text``, a first entry meaning "not set").
    """

    label: str
    kind: str
    help: str
    minimum: int = 0
    #: QSpinBox holds a C int; a bound this high never clamps a value a study file could hold.
    maximum: int = 2_000_000_000
    none_text: str = ""
    choices: tuple[str, ...] = ()
    #: The RunConfig field; filled in by :func:`form_fields`.
    name: str = ""


@dataclass(frozen=True)
class Setting:
    role: Role = "training"
    #: Copied next to every metric in the tidy CSV (storage.queries), in field order.
    csv: bool = False
    form: FormField | None = None


def setting(default: Any, *, role: Role = "training", csv: bool = False, form: FormField | None = None) -> Any:
    """A dataclass field with ``default`` and what the setting is (see the module docstring)."""
    return dataclasses.field(default=default, metadata={"setting": Setting(role, csv, form)})


def _settings(cls: type) -> list[tuple[str, Setting]]:
    return [(f.name, f.metadata.get("setting", Setting())) for f in dataclasses.fields(cls)]


def names_with_role(cls: type, *roles: Role) -> frozenset[str]:
    """The fields of ``cls`` whose role is one of ``roles``."""
    return frozenset(name for name, info in _settings(cls) if info.role in roles)


def csv_columns(cls: type) -> tuple[str, ...]:
    """The fields the tidy CSV carries, in field order."""
    return tuple(name for name, info in _settings(cls) if info.csv)


def form_fields(cls: type) -> tuple[FormField, ...]:
    """The Advanced section's settings, in field order, each with its field name."""
    return tuple(dataclasses.replace(info.form, name=name) for name, info in _settings(cls) if info.form is not None)

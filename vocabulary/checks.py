"""What a settings file can get wrong, said in one line that names the setting: types, finite numbers,
languages, run ids.

Shared by the run, study and eval-set settings (:mod:`vocabulary.config`,
:mod:`vocabulary.eval_specs`), and by storage, which checks a stored run id
before it becomes a path.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Mapping

from vocabulary.languages import LANGUAGE_NAMES

#: What :attr:`RunConfig.run_id` makes: 16 lowercase hexadecimal digits.
_RUN_ID = re.compile(r"[0-9a-f]{16}")


class ConfigError(ValueError):
    """A setting is invalid. ``field`` names it so a form can show the message beside it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Field annotation -> (test, what to say) for the settings a JSON file can get the type of wrong.
_TYPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "text"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "float": (_is_number, "a number"),
    "int | None": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "a whole number or null"),
    "float | None": (lambda v: v is None or _is_number(v), "a number or null"),
    "str | None": (lambda v: v is None or isinstance(v, str), "text or null"),
    "bool | None": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "str | tuple[str, ...]": (lambda v: isinstance(v, str) or (isinstance(v, (list, tuple)) and bool(v)
                                                               and all(isinstance(x, str) for x in v)),
                              "a text or a non-empty list of texts"),
    "tuple[str, ...]": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v),
                        "a list of texts"),
    "tuple[int, ...]": (lambda v: isinstance(v, (list, tuple))
                        and all(isinstance(x, int) and not isinstance(x, bool) for x in v), "a list of whole numbers"),
    "tuple[float, ...]": (lambda v: isinstance(v, (list, tuple)) and all(_is_number(x) for x in v),
                          "a list of numbers"),
}


def check_types(cls: type, values: Mapping[str, Any], where: str = "") -> None:
    """Name the first setting of a JSON object whose value has the wrong type (before it fails obscurely)."""
    for field_info in dataclasses.fields(cls):
        check = _TYPE_CHECKS.get(str(field_info.type))
        if check is not None and field_info.name in values and not check[0](values[field_info.name]):
            raise ConfigError(f"{where}{field_info.name}", f"must be {check[1]}, got {values[field_info.name]!r}")


def known_datasets(role: str) -> tuple[str, ...]:
    from vocabulary.datasets import dataset_ids

    return dataset_ids(role)


def dataset_entry(dataset: str):
    from vocabulary.datasets import dataset_info

    return dataset_info(dataset)


def check_finite(cls: type, instance: object) -> None:
    """Refuse NaN and infinite numbers (JSON gives ``1e400`` as inf), which no range check below would."""
    for field_info in dataclasses.fields(cls):
        value = getattr(instance, field_info.name)
        if str(field_info.type) in ("float", "float | None") and value is not None and not math.isfinite(value):
            raise ConfigError(field_info.name, f"must be a finite number, got {value!r}")


def is_run_id(value: object) -> bool:
    """Whether ``value`` has the form of a :attr:`RunConfig.run_id` (safe as a folder name or URL part)."""
    return isinstance(value, str) and _RUN_ID.fullmatch(value) is not None


def check_run_id(value: object) -> str:
    """``value`` when it is a run id; otherwise ConfigError, before it can become a path or a URL."""
    if not is_run_id(value):
        raise ConfigError(
            "run_id", f"{value!r} is not a run id (16 hexadecimal digits, as hybridscale makes them): "
            "the database row was changed outside hybridscale; delete that run"
        )
    return value


def check_languages(field_name: str, languages: tuple[str, ...]) -> None:
    if not languages:
        raise ConfigError(field_name, "choose at least one language")
    for lang in languages:
        if lang not in LANGUAGE_NAMES:
            raise ConfigError(
                field_name,
                f"unknown language {lang!r}; allowed: {', '.join(sorted(LANGUAGE_NAMES))}",
            )
    if len(set(languages)) != len(languages):
        raise ConfigError(field_name, "a language is listed twice")

"""The two error types every loader raises, and the checks of a user's choices.

Loaders are driven by study files and GUI forms, so a bad choice must come
back as one line that names the thing and what exists instead, never as a
``KeyError`` from deep inside a parser.
"""

from __future__ import annotations

from typing import Iterable

from vocabulary.datasets import dataset_info
from vocabulary.languages import to_iso


class DataError(ValueError):
    """Bad input: malformed file content, or a dataset/language/split that does not exist."""


class DataNotFoundError(FileNotFoundError):
    """A file, folder or online corpus the loader needs is not there."""


def check_split(dataset_id: str, split: str) -> None:
    splits = dataset_info(dataset_id).splits
    if split not in splits:
        raise DataError(f"{dataset_id}: unknown split {split!r}; use one of {', '.join(splits)}")


def check_languages(
    dataset_id: str, languages: Iterable[str], available: Iterable[str] | None = None, where: str = ""
) -> tuple[str, ...]:
    """Map ``languages`` to ISO 639-1 and check each is in ``available``.

    ``available`` defaults to the registry's list for the dataset (the shipped
    files); loaders pass what a user's folder actually holds instead, and
    ``where`` names that folder in the message.
    """
    requested = tuple(languages)
    if not requested:
        raise DataError(f"{dataset_id}: choose at least one language")
    try:
        codes = tuple(to_iso(code) for code in requested)
    except ValueError as exc:
        raise DataError(f"{dataset_id}: {exc}") from None
    allowed = sorted(available if available is not None else dataset_info(dataset_id).languages)
    for code in codes:
        if code not in allowed:
            raise DataError(
                f"{dataset_id}: no language {code!r}{where}; available: {', '.join(allowed) or 'none'}"
            )
    if len(set(codes)) != len(codes):
        raise DataError(f"{dataset_id}: a language is listed twice in {', '.join(requested)}")
    return codes

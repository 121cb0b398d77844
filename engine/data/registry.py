"""Which datasets exist, what they can be used for, and where their loader is.

Importing this module is cheap (no loader runs, no file is read), so config
validation and the GUI's pick lists can use it freely. Loaders are named by
``module:function`` and imported only when a dataset is actually loaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Literal

Role = Literal["train", "eval"]


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    description: str
    languages: tuple[str, ...]
    splits: tuple[str, ...]
    train_loader: str | None = None
    eval_loader: str | None = None

    def loader(self, role: Role) -> Callable:
        target = self.train_loader if role == "train" else self.eval_loader
        if target is None:
            raise ValueError(f"dataset {self.id!r} cannot be used for {role}ing")
        module_name, function_name = target.split(":")
        return getattr(importlib.import_module(module_name), function_name)


_XQUAD_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
_FLORES_LANGUAGES = (
    "ar", "de", "en", "es", "hi", "ig", "ln", "ru", "rw", "sw", "th", "tr", "wo", "xh", "yo", "zh", "zu",
)

DATASETS: dict[str, DatasetInfo] = {
    info.id: info
    for info in (
        DatasetInfo(
            "xquad",
            "XQuAD (SQuAD v1.1 format, 12 parallel languages): question -> answer sentence",
            _XQUAD_LANGUAGES,
            ("train", "eval", "all"),
            train_loader="engine.data.squad:load_training_set",
            eval_loader="engine.data.squad:load_eval_set",
        ),
        DatasetInfo(
            "xquad-r",
            "XQuAD-R (LAReQA): answer-sentence retrieval over every language's sentences",
            _XQUAD_LANGUAGES,
            ("train", "eval", "all"),
            eval_loader="engine.data.xquad_r:load_eval_set",
        ),
        DatasetInfo(
            "flores",
            "FLORES-200 (SIB-200 subset): parallel sentence retrieval",
            _FLORES_LANGUAGES,
            ("train", "dev", "test"),
            train_loader="engine.data.flores:load_training_set",
            eval_loader="engine.data.flores:load_eval_set",
        ),
        DatasetInfo(
            "afriqa",
            "AfriQA: sw/yo questions -> gold English Wikipedia passages",
            ("sw", "yo"),
            ("train", "test"),
            eval_loader="engine.data.afriqa:load_eval_set",
        ),
        DatasetInfo(
            "miracl",
            "MIRACL sw/yo: topics and qrels shipped; passage corpus via datasets or a local file",
            ("sw", "yo"),
            ("train", "dev"),
            eval_loader="engine.data.miracl:load_eval_set",
        ),
        DatasetInfo(
            "ntrex",
            "NTREX-128 news: en/sw/yo bitext retrieval",
            ("en", "sw", "yo"),
            ("test",),
            eval_loader="engine.data.ntrex:load_eval_set",
        ),
    )
}


def dataset_ids(role: Role | None = None) -> tuple[str, ...]:
    """Dataset ids usable for ``role`` ('train' or 'eval'), or all of them."""
    if role is None:
        return tuple(DATASETS)
    attribute = "train_loader" if role == "train" else "eval_loader"
    return tuple(i for i, info in DATASETS.items() if getattr(info, attribute))


def dataset_info(dataset_id: str) -> DatasetInfo:
    try:
        return DATASETS[dataset_id]
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset_id!r}: use one of {', '.join(DATASETS)}"
        ) from None

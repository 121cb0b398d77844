"""Runs pool as seeds only when nothing but their seeds differs; other differences name the series."""

from __future__ import annotations

import dataclasses
import pickle

from vocabulary.config import RunConfig
from vocabulary.series import series_key, series_names, series_order


def identity(**changes) -> dict:
    return RunConfig(strategy="hybrid", alpha=0.5, train_size=16, **changes).identity()


def test_seeds_and_sizes_pool_other_settings_split():
    base = identity()
    assert series_key(base) == series_key(identity(seed=3))
    assert series_key(base) == series_key({**base, "train_size": 64})
    assert series_key(base) != series_key(identity(learning_rate=1e-4))


def test_series_sharing_a_label_are_named_by_what_differs():
    names = series_names({
        "r1": identity(seed=0), "r2": identity(seed=1), "r3": identity(learning_rate=1e-4),
        "r4": RunConfig(strategy="mono", train_size=16).identity(),
    })
    assert names["r1"] == names["r2"]
    assert names["r1"] != names["r3"]
    assert names["r3"] == "hybrid α=0.5 (learning_rate=0.0001)"
    assert names["r1"] == "hybrid α=0.5 (learning_rate=3e-05)"
    assert names["r4"] == "mono"


def test_nested_differences_are_shown_by_letter():
    first = RunConfig(strategy="mono", train_size=16)
    second = dataclasses.replace(first, evaluations=first.evaluations[1:])  # keeps XQuAD-R: the same train split
    names = series_names({"a": first.identity(), "b": second.identity()})
    assert {names["a"], names["b"]} == {"mono (evaluations A)", "mono (evaluations B)"}


def test_an_evaluation_only_run_is_named_after_its_model():
    untrained = RunConfig(strategy="none", alpha=None, train_size=0, model="tiny:").identity()
    assert "strategy" not in untrained  # its identity keeps only what evaluation reads
    names = series_names({"u": untrained, "m": identity()})
    assert names["u"] == "untrained tiny:"


def test_a_series_carries_its_strategy_key_alpha_and_budget():
    names = series_names({"h": identity(), "m": RunConfig(strategy="mono", train_size=16).identity(),
                          "u": RunConfig(strategy="none", alpha=None, train_size=0, model="tiny:").identity()})
    hybrid, mono, untrained = names["h"], names["m"], names["u"]
    assert (hybrid.strategy, hybrid.alpha, hybrid.uses_alpha) == ("hybrid", 0.5, True)
    assert (mono.strategy, mono.alpha, mono.uses_alpha) == ("mono", None, False)
    assert (untrained.strategy, untrained.alpha, untrained.budget) == ("none", None, "")
    assert hybrid.budget == mono.budget == "1 epoch"
    assert hybrid.key == series_key(identity())
    # The table's order, evaluation-only runs first; pickling (worker threads, copies) keeps every part.
    assert sorted(names.values(), key=series_order) == [untrained, mono, hybrid]
    copied = pickle.loads(pickle.dumps(hybrid))
    assert (copied, copied.strategy, copied.alpha, copied.key) == (hybrid, "hybrid", 0.5, hybrid.key)


def test_the_untrained_model_and_bm25_are_told_apart_as_references():
    untrained = RunConfig(strategy="none", train_size=0, alpha=None).identity()
    lexical = RunConfig(model="bm25", strategy="none", train_size=0, alpha=None).identity()
    names = series_names({"u": untrained, "b": lexical, "h": identity()})
    assert names["u"].untrained and not names["u"].lexical
    assert names["b"].lexical and not names["b"].untrained
    assert not names["h"].untrained and not names["h"].lexical
    assert pickle.loads(pickle.dumps(names["b"])).lexical  # a worker process hands it back whole

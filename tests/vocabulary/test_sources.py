"""Several training sources in a run's settings: identity, sizes, splits, the zero-shot guard."""

from __future__ import annotations

import pytest

from vocabulary.config import ConfigError, EvalSpec, RunConfig
from vocabulary.series import base_label
from vocabulary.sources import parse_source, split_size

MIRACL = EvalSpec("miracl", ("sw",), "dev")
FLORES = EvalSpec("flores", ("en", "sw", "yo"), "test")


def test_a_single_source_keeps_the_run_id_it_had_before_sources_became_a_list():
    # The ids of these settings on the commit before train_dataset became a list (591c676).
    assert RunConfig().run_id == "92449268085ec35f"
    assert RunConfig(strategy="mono", train_size=300, seed=3).run_id == "dd8f576100e81271"
    assert RunConfig(train_dataset=["xquad"]).run_id == RunConfig().run_id
    assert RunConfig(train_dataset=["xquad"]).train_dataset == "xquad"
    assert RunConfig(source_sampling="round_robin").run_id == RunConfig().run_id  # unused with one source


def test_several_sources_are_a_list_whose_policy_is_part_of_the_identity():
    both = RunConfig(train_dataset=["xquad", "mmarco"], train_languages=("en", "de"))
    assert both.validate().train_sources == ("xquad", "mmarco")
    assert RunConfig.from_json(both.to_json()) == both
    assert both.run_id != RunConfig(train_dataset=["xquad", "mmarco"], train_languages=("en", "de"),
                                    source_sampling="round_robin").run_id


@pytest.mark.parametrize("values, field, message", [
    ({"train_dataset": ["xquad", "nope"]}, "train_dataset", "unknown training set 'nope'"),
    ({"train_dataset": "file"}, "train_dataset", "file needs a path"),
    ({"train_dataset": []}, "train_dataset", "give at least one training source"),
    ({"train_dataset": ["xquad", "xquad"]}, "train_dataset", "listed twice"),
    ({"train_dataset": ["xquad", "mmarco"], "source_sampling": "random"}, "source_sampling", "unknown policy"),
    ({"train_dataset": ["xquad", "miracl-train"], "train_size": 1500, "train_languages": ("en", "sw")},
     "train_size", "larger than the 1499 question groups of xquad \\+ miracl-train"),
])
def test_bad_sources_are_named(values, field, message):
    with pytest.raises(ConfigError, match=message) as error:
        RunConfig(**values).validate()
    assert error.value.field == field


def test_a_size_is_split_across_sources_in_proportion():
    assert split_size(100, [698, 801]) == [47, 53]
    assert split_size(7, [1, 1, 1]) == [3, 2, 2]
    assert sum(split_size(1001, [3, 5, 11])) == 1001
    assert parse_source("file:C:\\data\\pairs.jsonl") == ("file", "C:\\data\\pairs.jsonl")
    assert parse_source("xquad") == ("xquad", None)


def test_xquad_trains_on_more_articles_only_when_xquad_r_is_not_evaluated():
    assert RunConfig().train_split("xquad") == "train"  # XQuAD-R is a default eval set
    alone = RunConfig(evaluations=(FLORES,))
    assert alone.train_split("xquad") == "all" and alone.max_train_size == 1190
    with_dev = RunConfig(evaluations=(FLORES,), dev_every=10)
    assert with_dev.train_split("xquad") == "nodev" and with_dev.max_train_size == 980
    assert RunConfig(evaluations=(FLORES,), train_size=1190).validate()
    with pytest.raises(ConfigError, match="larger than the 698"):
        RunConfig(train_size=699).validate()
    assert alone.identity()["train_splits"] == ["all"] and "train_splits" not in RunConfig().identity()


def test_training_on_an_evaluated_language_is_labelled_not_zero_shot_unless_an_ablation():
    in_language = RunConfig(train_dataset=["xquad", "miracl-train"], train_languages=("en", "de", "sw"),
                            evaluations=(MIRACL, FLORES))
    assert in_language.validate().trained_eval_languages == ("sw",)
    assert in_language.zero_shot_note == "not zero-shot: sw"
    assert base_label(in_language.identity()) == "hybrid α=0.5 [not zero-shot: sw]"
    ablation = RunConfig(**{**in_language.to_dict(), "ablation": True})
    assert ablation.zero_shot_note == "ablation: trains on sw"
    assert base_label(ablation.identity()) == "hybrid α=0.5 [ablation: trains on sw]"
    assert RunConfig().zero_shot_note == "" and base_label(RunConfig().identity()) == "hybrid α=0.5"


def test_a_monolingual_only_run_may_use_a_cross_strategy():
    RunConfig(strategy="hybrid", train_dataset="miracl-train", train_languages=("sw",), train_size=200,
              evaluations=(FLORES,)).validate()
    with pytest.raises(ConfigError, match="needs at least two languages"):
        RunConfig(strategy="cross", train_languages=("en",)).validate()

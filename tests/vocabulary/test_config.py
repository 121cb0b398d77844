"""RunConfig / StudyConfig: JSON round trip, identity, expansion and validation messages."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from vocabulary.budget import total_steps
from vocabulary.config import (
    DEFAULT_EVALUATIONS,
    EVALUATION_PROCEDURE,
    PAPER_PRESET,
    PLAIN_MODEL_SETTINGS,
    TRAINING_PROCEDURE,
    ConfigError,
    EncoderSettings,
    EvalSpec,
    RunConfig,
    StudyConfig,
    check_run_id,
    is_run_id,
    resolve_encoder_settings,
)


def test_defaults_are_ours_for_a_cpu_and_the_paper_is_a_preset():
    config = RunConfig()
    assert (config.learning_rate, config.weight_decay, config.alpha) == (3e-5, 0.01, 0.5)  # the paper's
    assert (config.batch_size, config.temperature) == (32, 0.05)  # ours, for a CPU
    assert (config.budget, config.select) == ("epochs", "last")
    # The encoder settings are the base model's own unless a run sets them.
    assert (config.pooling, config.query_prefix, config.passage_prefix, config.max_length) == (None,) * 4
    assert config.encoder_settings == EncoderSettings(None, True, None, None, None)
    assert config.model == "embedded:e5-small"
    paper = RunConfig.from_dict({"preset": "paper"}).validate()
    assert (paper.batch_size, paper.learning_rate, paper.weight_decay, paper.temperature) == (100, 3e-5, 0.01, 1.0)
    assert (paper.select, paper.dev_every) == ("best_dev", 50)
    # Explicit values override the preset's; a preset is expanded, never stored.
    mine = RunConfig.from_dict({"preset": "paper", "batch_size": 64})
    assert mine.batch_size == 64 and mine.temperature == 1.0 and "preset" not in mine.to_dict()
    assert set(PAPER_PRESET) <= set(mine.to_dict())
    with pytest.raises(ConfigError, match="preset: unknown preset 'huge'; allowed: paper"):
        RunConfig.from_dict({"preset": "huge"})


def test_the_default_study_and_run_fit_the_default_training_set():
    StudyConfig("defaults").validate()
    RunConfig().validate()
    with pytest.raises(ConfigError, match="train_size: size 1000 is larger than the 698 question groups of "
                                          "xquad's training split; use at most 698"):
        StudyConfig("old defaults", train_sizes=(250, 500, 1000)).validate()


def test_run_config_json_round_trip_keeps_nested_eval_specs():
    config = RunConfig(strategy="contrastive", train_size=7, evaluations=(EvalSpec("flores", ("sw", "en"), max_queries=5),))
    back = RunConfig.from_json(config.to_json())
    assert back == config
    assert isinstance(back.evaluations[0], EvalSpec) and back.evaluations[0].languages == ("sw", "en")
    assert back.contrastive_weight == 0.1


def test_study_round_trip_and_expansion_counts():
    study = StudyConfig(
        "scaling", strategies=("mono", "cross", "hybrid"), alphas=(0.25, 0.5, 0.75),
        train_sizes=(100, 200), seeds=(0, 1, 2),
    )
    runs = study.expand()
    # baseline + (mono + cross + 3 hybrid alphas) x 2 sizes x 3 seeds
    assert len(runs) == 1 + 5 * 2 * 3
    assert len({r.run_id for r in runs}) == len(runs)
    assert sorted({r.alpha for r in runs if r.strategy == "hybrid"}) == [0.25, 0.5, 0.75]
    assert {r.alpha for r in runs if r.strategy != "hybrid"} == {None}
    assert StudyConfig.from_json(study.to_json()) == study
    study.validate()


def test_run_id_is_stable_and_ignores_operational_fields():
    config = RunConfig(train_size=10)
    assert config.run_id == RunConfig(train_size=10).run_id
    assert len(config.run_id) == 16
    assert dataclasses.replace(config, checkpoint_every=7).run_id == config.run_id
    assert dataclasses.replace(config, learning_rate=1e-4).run_id != config.run_id
    # Pinned value: changing it silently would orphan every stored result.
    assert RunConfig().run_id == RunConfig.from_dict(json.loads(RunConfig().to_json())).run_id


def test_alpha_ignored_outside_hybrid_so_identities_do_not_split():
    assert RunConfig(strategy="mono", alpha=0.3).run_id == RunConfig(strategy="mono", alpha=0.9).run_id


def test_contrastive_weight_reaches_contrastive_runs_and_splits_only_their_identity():
    template = RunConfig(contrastive_weight=0.3)  # the template's own strategy is hybrid
    runs = {r.strategy: r for r in StudyConfig("w", strategies=("mono", "contrastive"), template=template).expand()}
    assert runs["contrastive"].contrastive_weight == 0.3
    assert runs["contrastive"].run_id != dataclasses.replace(runs["contrastive"], contrastive_weight=0.1).run_id
    assert runs["mono"].run_id == dataclasses.replace(runs["mono"], contrastive_weight=0.1).run_id
    with pytest.raises(ConfigError, match="contrastive_weight: must be 0 or more"):
        RunConfig(strategy="contrastive", contrastive_weight=-1.0).validate()


def test_baseline_identity_ignores_training_settings():
    a = RunConfig(strategy="none", train_size=0, learning_rate=1e-3, seed=5)
    b = RunConfig(strategy="none", train_size=0)
    assert a.run_id == b.run_id
    assert a.label.startswith("untrained")


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"strategy": "bogus"}, "strategy", "allowed: mono, cross, hybrid, multi, contrastive"),
        ({"alpha": 1.5}, "alpha", "between 0 and 1"),
        ({"train_languages": ("en", "xx")}, "train_languages", "unknown language 'xx'"),
        ({"strategy": "cross", "train_languages": ("en",)}, "train_languages", "at least two"),
        ({"batch_size": 1}, "batch_size", "at least 2"),
        ({"learning_rate": 0.0}, "learning_rate", "greater than 0"),
        ({"train_dataset": "nope"}, "train_dataset", "allowed: xquad"),
        ({"evaluations": (EvalSpec("nope", ("sw",)),)}, "evaluations", "unknown eval set 'nope'"),
        ({"evaluations": ()}, "evaluations", "at least one"),
        ({"pooling": "attention"}, "pooling", "allowed: mean, cls, max, lasttoken"),
        ({"max_length": 4}, "max_length", "between 8 and 512"),
        ({"train_size": 0}, "train_size", "at least 1"),
    ],
)
def test_validation_names_field_and_allowed_values(changes, field, fragment):
    with pytest.raises(ConfigError) as caught:
        dataclasses.replace(RunConfig(), **changes).validate()
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_study_validation_messages():
    with pytest.raises(ConfigError, match="alpha 1.2 is outside"):
        StudyConfig("s", alphas=(1.2,)).validate()
    with pytest.raises(ConfigError, match="listed twice"):
        StudyConfig("s", train_sizes=(10, 10)).validate()
    with pytest.raises(ConfigError, match="give the study a name"):
        StudyConfig(" ").validate()
    with pytest.raises(ConfigError, match="not valid JSON"):
        StudyConfig.from_json("{oops")
    with pytest.raises(ConfigError, match="colour: is not a study setting"):
        StudyConfig.from_dict({"name": "s", "colour": "red"})


def test_default_evaluations_target_sw_and_yo():
    languages = {lang for spec in DEFAULT_EVALUATIONS for lang in spec.languages}
    assert {"sw", "yo"} <= languages


def test_a_training_size_smaller_than_the_batch_is_refused_before_any_run_starts():
    with pytest.raises(ConfigError, match="batch_size: batch size 32 is larger than training size 16: a batch needs"):
        StudyConfig("s", train_sizes=(16, 64)).validate()
    StudyConfig("s", train_sizes=(16, 64), template=RunConfig(batch_size=16)).validate()


def test_configs_written_before_contrastive_weight_had_a_default_still_load_and_keep_their_ids():
    old = json.loads(RunConfig(strategy="mono", train_size=64).to_json())
    old["contrastive_weight"] = None  # what every non-contrastive config held before
    config = RunConfig.from_dict(old).validate()
    assert config.contrastive_weight == 0.1 and config.run_id == RunConfig(strategy="mono", train_size=64).run_id


def test_zero_trainable_layers_is_refused_rather_than_failing_at_the_first_step():
    with pytest.raises(ConfigError, match="trainable_layers: must be at least 1"):
        RunConfig(trainable_layers=0).validate()
    RunConfig(trainable_layers=1).validate()


@pytest.mark.parametrize(
    "study, message",
    [
        ({"name": "s", "seeds": 3}, "seeds: must be a list of whole numbers, got 3"),
        ({"name": "s", "alphas": ["half"]}, "alphas: must be a list of numbers, got ['half']"),
        ({"name": "s", "template": {"batch_size": "32"}}, "batch_size: must be a whole number, got '32'"),
        ({"name": "s", "template": {"freeze_embeddings": "yes"}}, "freeze_embeddings: must be true or false"),
        ({"name": "s", "template": {"evaluations": [{"dataset": "flores", "languages": "sw"}]}},
         "evaluations[flores].languages: must be a list of texts, got 'sw'"),
        ({"name": "s", "template": {"evaluations": ["flores"]}}, "evaluations: each eval set is an object"),
        ({"name": "s", "template": 5}, "template: must be an object of run settings"),
    ],
)
def test_a_hand_written_study_with_a_wrong_type_names_the_setting(study, message):
    with pytest.raises(ConfigError) as error:
        StudyConfig.from_json(json.dumps(study))
    assert message in str(error.value)


def test_numbers_may_be_written_as_integers_where_floats_are_expected():
    config = RunConfig.from_dict({"learning_rate": 1, "temperature": 1, "max_steps": None})
    assert config.learning_rate == 1 and config.max_steps is None


def test_default_evaluations_are_the_hard_pools_and_the_papers_unseen_languages():
    flores, afriqa, xquad_r = DEFAULT_EVALUATIONS
    assert (flores.split, len(flores.languages)) == ("all", 11) and flores.symmetric
    assert {"el", "vi"} <= set(xquad_r.languages) and len(xquad_r.languages) == 11
    assert all(spec.passage_max_length == 512 for spec in DEFAULT_EVALUATIONS)
    assert afriqa.label == "afriqa/test (gold passages only)"
    assert xquad_r.label == "xquad-r/eval (held-out articles, own sentence splitter)"
    assert EvalSpec("xquad-r", ("en", "de"), "all", path="/data/lareqa/xquad-r").label == "xquad-r/all (LAReQA sentences)"
    assert EvalSpec("afriqa", ("sw",), corpus="corpus.jsonl").label == "afriqa/test (Wikipedia collection, answer match)"
    assert flores.label == "flores/all"
    RunConfig().validate()


def test_evaluating_on_the_sentences_a_run_trains_on_is_refused():
    flores_all = (EvalSpec("flores", ("en", "sw"), "all"),)
    with pytest.raises(ConfigError, match=r"evaluations\[flores\]\.split: split 'all' holds the flores training "
                                          r"sentences this run trains on; evaluate on dev, test"):
        RunConfig(train_dataset="flores", train_languages=("en", "sw"), evaluations=flores_all).validate()
    RunConfig(train_dataset="flores", train_languages=("en", "sw"),
              evaluations=(EvalSpec("flores", ("en", "sw"), "test"),)).validate()
    RunConfig(strategy="none", train_size=0, train_dataset="flores", evaluations=flores_all).validate()  # untrained
    with pytest.raises(ConfigError, match=r"evaluations\[xquad-r\]\.split: split 'all' holds the xquad training"):
        RunConfig(evaluations=(EvalSpec("xquad-r", ("en", "de"), "all"),)).validate()


@pytest.mark.parametrize(("spec", "field", "fragment"), [
    (EvalSpec("flores", ("en", "sw"), passage_max_length=4), "evaluations[flores].passage_max_length", "between 8"),
    (EvalSpec("miracl", ("sw",), "dev", corpus="c.jsonl"), "evaluations[miracl].corpus", "MIRACL takes its corpus as path"),
])
def test_eval_spec_settings_are_validated(spec, field, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)) as error:
        RunConfig(evaluations=(spec,)).validate()
    assert error.value.field == field


def test_eval_spec_settings_round_trip_through_json():
    spec = EvalSpec("flores", ("en", "sw"), "all", passage_max_length=256, symmetric=False)
    config = RunConfig(evaluations=(spec,))
    assert RunConfig.from_json(config.to_json()).evaluations == (spec,)
    with pytest.raises(ConfigError, match=r"symmetric: must be true, false or null"):
        RunConfig.from_dict({"evaluations": [{"dataset": "flores", "languages": ["en", "sw"], "symmetric": "yes"}]})


def test_encoder_settings_come_from_the_first_layer_that_sets_them():
    run = EncoderSettings(query_prefix="Query: ", max_length=64)
    model = EncoderSettings("cls", True, None, None, 256)
    card = EncoderSettings(query_prefix="query: ", passage_prefix="passage: ")
    settings, sources = resolve_encoder_settings(
        [("run", run), ("model folder", model), ("model card", card), ("default", PLAIN_MODEL_SETTINGS)]
    )
    assert settings == EncoderSettings("cls", True, "Query: ", "passage: ", 64)
    assert sources == {"pooling": "model folder", "normalize": "model folder", "query_prefix": "run",
                       "passage_prefix": "model card", "max_length": "run"}
    # An explicit empty prefix is a setting, not a gap.
    settings, sources = resolve_encoder_settings([("run", EncoderSettings(query_prefix="")), ("default", card)])
    assert settings.query_prefix == "" and sources["query_prefix"] == "run"


def test_null_encoder_settings_round_trip_and_validate():
    config = RunConfig.from_json(json.dumps({"pooling": None, "query_prefix": None, "max_length": None}))
    assert config.validate().pooling is None and RunConfig.from_json(config.to_json()) == config
    assert RunConfig(pooling="lasttoken", max_length=300).validate().pooling == "lasttoken"
    with pytest.raises(ConfigError, match="query_prefix: must be text or null"):
        RunConfig.from_dict({"query_prefix": 3})


def test_a_study_refuses_negative_seeds_and_names_every_size_below_the_batch():
    template = RunConfig(batch_size=32)
    with pytest.raises(ConfigError, match="seeds: seed -1, -2 is outside 0..2147483647"):
        StudyConfig("s", seeds=(0, -1, -2), train_sizes=(100,), template=template).validate()
    with pytest.raises(ConfigError, match="batch_size: batch size 32 is larger than training size 16, 24:"):
        StudyConfig("s", train_sizes=(16, 24, 100), template=template).validate()
    with pytest.raises(ConfigError, match="seed: -3 is outside 0..2147483647"):
        RunConfig(seed=-3).validate()


def test_old_study_files_still_load_and_train_by_epochs():
    old = {"name": "old", "strategies": ["mono"], "train_sizes": [100],
           "template": {"epochs": 2.0, "max_steps": 30, "batch_size": 16}}
    (run,) = StudyConfig.from_dict(old).validate().expand()[1:]
    assert (run.budget, run.steps, run.pairs, run.data_seed, run.select) == ("epochs", None, None, None, "last")
    assert total_steps(run, 100) == 30  # min(2 x ceil(100 x 9 / 16), 30)
    assert total_steps(dataclasses.replace(run, max_steps=None), 100) == 114


def test_budgets_and_their_values():
    steps = RunConfig(budget="steps", steps=200).validate()
    pairs = RunConfig(budget="pairs", pairs=6400, batch_size=32).validate()
    assert total_steps(steps, 75) == total_steps(steps, 675) == 200
    assert total_steps(pairs, 75) == total_steps(pairs, 675) == 200
    assert total_steps(dataclasses.replace(steps, max_steps=50), 675) == 50
    assert steps.budget_label == "200 steps" and pairs.budget_label == "6400 pairs"
    assert RunConfig(epochs=0.5).budget_label == "0.5 epochs" and RunConfig().budget_label == "1 epoch"
    assert steps.label.endswith(" 200 steps") and RunConfig().label == "hybrid α=0.5 n=675 seed=0"
    for changes, field, fragment in [
        ({"budget": "minutes"}, "budget", "unknown budget 'minutes'; allowed: epochs, steps, pairs"),
        ({"budget": "steps"}, "steps", "budget 'steps' needs steps"),
        ({"steps": 10}, "steps", "is only used with budget 'steps' (this run's is 'epochs')"),
        ({"budget": "pairs", "pairs": 0}, "pairs", "budget 'pairs' needs pairs"),
    ]:
        with pytest.raises(ConfigError) as caught:
            RunConfig(**changes).validate()
        assert caught.value.field == field and fragment in str(caught.value)


def test_settings_a_run_does_not_use_do_not_split_its_identity():
    steps = RunConfig(budget="steps", steps=100)
    assert steps.run_id == dataclasses.replace(steps, epochs=3.0).run_id
    assert steps.run_id != dataclasses.replace(steps, steps=101).run_id
    assert RunConfig(seed=3).run_id == RunConfig(seed=3, data_seed=3).run_id
    assert RunConfig(seed=3).run_id != RunConfig(seed=3, data_seed=0).run_id
    assert RunConfig(dev_every=20).run_id == RunConfig().run_id  # select "last": the dev loss is only watched
    best = RunConfig(dev_every=20, select="best_dev")
    assert best.run_id != RunConfig(dev_every=10, select="best_dev").run_id != RunConfig().run_id


def test_runs_carry_the_procedures_that_made_their_results():
    assert RunConfig().identity()["procedure"] == TRAINING_PROCEDURE == 2
    baseline = RunConfig(strategy="none", train_size=0)
    assert "procedure" not in baseline.identity()
    # An evaluation-only run is identified by what it evaluates and how, nothing of training.
    assert set(baseline.identity()) == {"model", "pooling", "query_prefix", "passage_prefix", "max_length",
                                        "evaluations", "top_k", "evaluation"}
    # Both carry the evaluation procedure: results measured the old way are never reused as today's.
    assert baseline.identity()["evaluation"] == RunConfig().identity()["evaluation"] == EVALUATION_PROCEDURE == 2
    # A training run of the same settings trains something else now: a new id (it was 3091f4c6e2f2c7c0).
    assert RunConfig(strategy="mono", train_size=64).run_id != "3091f4c6e2f2c7c0"


def test_model_selection_settings():
    RunConfig(dev_every=10, select="best_dev").validate()
    flores_test = (EvalSpec("flores", ("en", "sw"), "test"),)
    RunConfig(train_dataset="flores", train_size=100, dev_every=10, select="best_dev", evaluations=flores_test).validate()
    for changes, field, fragment in [
        ({"select": "best_dev"}, "dev_every", "select 'best_dev' needs a dev loss"),
        ({"select": "best"}, "select", "unknown selection 'best'; allowed: last, best_dev"),
        ({"dev_every": 0}, "dev_every", "must be at least 1 step"),
        ({"dev_every": 5, "evaluations": (EvalSpec("xquad", ("en",), "dev"),)}, "evaluations[xquad].split",
         "xquad/dev is the dev split model selection uses"),
    ]:
        with pytest.raises(ConfigError) as caught:
            RunConfig(**changes).validate()
        assert caught.value.field == field and fragment in str(caught.value)


def test_data_seeds_cross_the_seeds_so_a_study_separates_data_from_optimisation():
    study = StudyConfig("spread", strategies=("mono",), train_sizes=(100,), seeds=(0, 1), data_seeds=(0, 1, 2),
                        include_baseline=False).validate()
    runs = study.expand()
    assert sorted((r.seed, r.data_seed) for r in runs) == [(s, d) for s in (0, 1) for d in (0, 1, 2)]
    assert len({r.run_id for r in runs}) == 6
    assert "data_seed=2" in next(r.label for r in runs if (r.seed, r.data_seed) == (0, 2))
    assert StudyConfig.from_json(study.to_json()) == study
    # Without data_seeds, each run's subset follows its seed (what every older study did).
    assert {r.subset_seed for r in StudyConfig("s", seeds=(4, 5)).expand()[1:]} == {4, 5}


def test_keep_model_is_operational_and_on_by_default():
    config = RunConfig(train_size=10)
    assert config.keep_model is True
    assert dataclasses.replace(config, keep_model=False).run_id == config.run_id


def test_run_ids_are_what_run_id_makes_and_nothing_else():
    assert is_run_id(RunConfig().run_id) and check_run_id(RunConfig().run_id) == RunConfig().run_id
    for bad in ("../../../x", "0123456789ABCDEF", "0123456789abcdef0", "", None, "0123456789abcde/"):
        assert not is_run_id(bad)
        with pytest.raises(ConfigError, match="is not a run id"):
            check_run_id(bad)


@pytest.mark.parametrize("name", ["learning_rate", "temperature", "weight_decay", "epochs", "warmup_ratio"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), float("-inf")])
def test_no_setting_takes_a_number_that_is_not_finite(name, value):
    with pytest.raises(ConfigError) as caught:
        dataclasses.replace(RunConfig(), **{name: value}).validate()
    assert caught.value.field == name and "must be a finite number" in str(caught.value)


@pytest.mark.parametrize("name, shown", [("a\x1b[2Jb", "\\x1b"), ("bell\x07", "\\x07"), ("nul\x00", "\\x00"),
                                         ("evil\u202etxt.exe", "\\u202e"), ("two\nlines", "\\n")])
def test_a_study_name_with_a_control_character_is_refused_naming_it(name, shown):
    with pytest.raises(ConfigError, match=f"name: .*{re.escape(shown)}") as refused:
        StudyConfig(name, train_sizes=(100,)).validate()
    assert "\n" not in str(refused.value) and "\x1b" not in str(refused.value)
    StudyConfig("Kiswahili – Yorùbá (ẹ̀kọ́) 日本", train_sizes=(100,)).validate()  # letters and marks of any script pass


def test_the_opt_in_search_settings_keep_earlier_run_ids_at_their_defaults_and_split_them_when_set():
    """index and vectors came after run ids were stored: at their defaults they are not part of the identity."""
    plain = RunConfig(evaluations=(EvalSpec("miracl", ("sw",), "dev"),))
    assert plain.identity()["evaluations"] == [
        {"dataset": "miracl", "languages": ("sw",), "split": "dev", "max_queries": None, "path": None,
         "passage_max_length": 512, "symmetric": False, "corpus": None}]
    assert plain.run_id == "ae7e3f668280c811"  # the id this config had before the two settings existed
    half = RunConfig(evaluations=(EvalSpec("miracl", ("sw",), "dev", vectors="float16"),))
    approximate = RunConfig(evaluations=(EvalSpec("miracl", ("sw",), "dev", index="hnsw"),))
    assert len({plain.run_id, half.run_id, approximate.run_id}) == 3

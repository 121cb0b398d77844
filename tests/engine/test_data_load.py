"""engine.data entry points: registry dispatch, defaults, clear errors, the max_queries subset."""

from __future__ import annotations

import pytest

from engine.data import DataError, load, load_eval_set, load_training_set
from engine.data.load import loader
from vocabulary.config import DEFAULT_EVALUATIONS, EvalSpec
from vocabulary.datasets import DATASETS, dataset_ids
from vocabulary.records import EvalSet, TrainingSet


def test_every_registered_loader_resolves():
    for info in DATASETS.values():
        for role in ("train", "eval"):
            if getattr(info, f"{role}_loader"):
                assert callable(loader(info.id, role))


def test_default_evaluations_load():
    for spec in DEFAULT_EVALUATIONS:
        eval_set = load_eval_set(spec)
        assert eval_set.name == spec.label and eval_set.queries and eval_set.passages


def test_load_dispatches_with_per_dataset_default_splits():
    assert load("flores", ("en", "sw")).name == "flores/test"
    assert load("xquad-r", ("en", "de")).name == "xquad-r/eval (held-out articles, own sentence splitter)"
    assert load("afriqa", ("yo",)).name == "afriqa/test (gold passages only)"
    training = load("xquad", ("en", "de"), role="train")
    assert isinstance(training, TrainingSet) and training.name == "xquad/train" and len(training.groups) == 698
    assert isinstance(load("ntrex", ("en", "sw"), max_queries=3), EvalSet)
    assert load_training_set("flores", ["en", "yo"], "dev").languages == ("en", "yo")


def test_flores_codes_are_accepted_and_mapped():
    assert load("flores", ("eng_Latn", "swh_Latn")).query_languages == ("en", "sw")


def test_unknown_dataset_language_split_and_role_errors():
    with pytest.raises(DataError, match=rf"^unknown eval set 'tatoeba'; use one of {', '.join(dataset_ids('eval'))}$"):
        load("tatoeba", ("sw",))
    with pytest.raises(DataError, match=r"^unknown training set 'afriqa'; use one of xquad, mmarco, miracl-train, file, flores$"):
        load_training_set("afriqa", ("sw",))
    with pytest.raises(DataError, match=r"^ntrex: no language 'de' in .*; available: en, sw, yo$"):
        load("ntrex", ("en", "de"))
    with pytest.raises(DataError, match=r"^flores: unknown language 'klingon'"):
        load("flores", ("en", "klingon"))
    with pytest.raises(DataError, match=r"^flores: a language is listed twice"):
        load("flores", ("en", "eng_Latn"))
    with pytest.raises(DataError, match=r"^ntrex: unknown split 'dev'; use one of test$"):
        load("ntrex", ("en", "sw"), "dev")
    with pytest.raises(DataError, match=r"max_queries limits eval queries"):
        load("flores", ("en", "sw"), role="train", max_queries=5)


def test_max_queries_keeps_whole_groups_deterministically_and_never_cuts_the_corpus():
    full = load("flores", ("en", "sw", "yo"))
    small = load_eval_set(EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=10))
    again = load_eval_set(EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=10))
    bigger = load_eval_set(EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=20))
    assert small == again
    keys = {lang: {q.id.split(":")[1] for q in small.queries if q.language == lang} for lang in ("en", "sw", "yo")}
    assert len(keys["en"]) == 10 and keys["en"] == keys["sw"] == keys["yo"]
    assert set(small.queries) < set(bigger.queries) and len(bigger.queries) == 60
    assert small.passages == full.passages
    assert set(small.qrels) == {q.id for q in small.queries}
    # Spread over SIB-200's category-sorted file, not its first rows (all science/technology).
    first_rows = {q.id.split(":")[1] for q in full.queries[:10]}
    assert keys["en"] != first_rows


def test_max_queries_groups_afriqa_native_and_english_together():
    small = load("afriqa", ("sw", "yo"), max_queries=7)
    assert len(small.queries) == 14
    natives = {q.id for q in small.queries if q.language != "en"}
    assert {q.id for q in small.queries if q.language == "en"} == {f"{qid}:en" for qid in natives}


def test_a_shipped_training_set_is_read_once_per_process():
    first = load_training_set("xquad", ("en", "de"), "train")
    assert load_training_set("xquad", ["en", "de"], "train") is first  # every run of a study shares it
    assert load_training_set("xquad", ("en", "es"), "train") is not first
    assert load_training_set("xquad", ("en", "de"), "all") is not first

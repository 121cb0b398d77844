"""The ``bm25`` model spec: options checked without loading anything, one identity per parameter set, its label."""

from __future__ import annotations

import pytest

from vocabulary.config import ConfigError, EvalSpec, RunConfig, StudyConfig
from vocabulary.model_specs import bm25_label, bm25_options, check_model_spec
from vocabulary.series import series_names

EVAL = (EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=8),)


def test_options_default_to_pyserini_and_bad_ones_are_named():
    assert bm25_options("bm25") == {"k1": 0.9, "b": 0.4}
    assert bm25_options("bm25:k1=1.2,b=0.75") == {"k1": 1.2, "b": 0.75}
    for bad, named in (("bm25:k=1", "'k=1'"), ("bm25:k1=x", "'k1=x'"), ("bm25:b=2", "b must be between 0 and 1")):
        with pytest.raises(ValueError, match=named):
            check_model_spec(bad)


def test_bm25_is_evaluation_only_and_its_spellings_are_one_run():
    with pytest.raises(ConfigError, match="evaluation-only"):
        RunConfig(model="bm25", strategy="mono", train_size=8, evaluations=EVAL).validate()
    plain = RunConfig(model="bm25", strategy="none", train_size=0, alpha=None, evaluations=EVAL).validate()
    spelled = RunConfig(model="bm25:k1=0.9,b=0.4", strategy="none", train_size=0, evaluations=EVAL, max_length=64)
    assert plain.run_id == spelled.run_id  # the encoder's settings do not apply to BM25
    assert plain.label == "BM25" and bm25_label("bm25:k1=1.2") == "BM25 (k1=1.2, b=0.4)"


def test_a_study_with_include_bm25_holds_the_reference_named_bm25():
    template = RunConfig(model="tiny:", train_languages=("en", "de"), evaluations=EVAL, batch_size=4)
    study = StudyConfig("s", strategies=("mono",), train_sizes=(8,), include_bm25=True, template=template).validate()
    runs = study.expand()
    assert [r.model for r in runs] == ["tiny:", "bm25", "tiny:"]
    names = series_names({r.run_id: r.identity() for r in runs})
    assert sorted(names.values()) == ["BM25", "mono", "untrained tiny:"]
    assert StudyConfig.from_json(study.to_json()) == study

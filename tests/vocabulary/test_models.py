"""The base-model registry (what each model's own training saw) and the encoder presets."""

from __future__ import annotations

import re

import pytest

from vocabulary.config import RunConfig
from vocabulary.models import BASE_MODELS, PRESETS, base_model, preset


def test_specs_and_local_copies_find_their_model():
    assert base_model("embedded:e5-small").key == "multilingual-e5-small"
    assert base_model("intfloat/multilingual-e5-base").key == "multilingual-e5-base"
    assert base_model("sentence-transformers/LaBSE").key == "labse"
    assert base_model("/data/models/LaBSE/").key == "labse"  # a local copy keeps the hub name
    assert base_model("xlm-roberta-base").key == base_model("FacebookAI/xlm-roberta-base").key == "xlm-roberta-base"
    assert base_model("tiny:") is None and base_model("/runs/abc/model") is None


def saw(key: str, language: str, kind: str | None = None) -> list[str]:
    model = next(m for m in BASE_MODELS if m.key == key)
    return [e.kind for e in model.exposures(language, kind)]


def test_what_each_model_saw_in_swahili_and_yoruba():
    # mE5 was fine-tuned on MIRACL and Mr. TyDi train, Swahili included; Yoruba has no train split there.
    assert saw("multilingual-e5-small", "sw") == ["retrieval"] and saw("multilingual-e5-small", "yo") == []
    retrieval = next(m for m in BASE_MODELS if m.key == "multilingual-e5-small").exposures("sw", "retrieval")[0]
    assert "MIRACL" in retrieval.data and "Mr. TyDi" in retrieval.data and retrieval.eval_sets == ("miracl",)
    # LaBSE: translation pairs in both.
    assert saw("labse", "sw", "translation") == saw("labse", "yo", "translation") == ["translation"]
    # XLM-R: CC-100 text only; Yoruba is not one of its 100 languages.
    assert saw("xlm-roberta-base", "sw") == ["text"] and saw("xlm-roberta-base", "yo") == []
    summary = base_model("embedded:e5-small").summary()
    assert summary.splitlines()[0].startswith("sw: supervised retrieval pairs: MIRACL train")
    assert summary.splitlines()[1] == "yo: none listed"
    assert "NLLB" in summary.splitlines()[2]


def test_every_claim_has_a_source_and_language_codes():
    for model in BASE_MODELS:
        assert model.saw, model.key
        for exposure in model.saw:
            assert exposure.source.strip(), (model.key, exposure.data)
            assert all(re.fullmatch("[a-z]{2,3}", code) for code in exposure.languages), model.key
            assert len(set(exposure.languages)) == len(exposure.languages), model.key
    labse = next(m for m in BASE_MODELS if m.key == "labse")
    assert len(labse.saw[0].languages) == 109


def test_presets_are_valid_runs_with_the_papers_prefixes():
    for entry in PRESETS:
        RunConfig(**entry.run_settings()).validate()
    xlmr, labse = preset("paper-xlmr"), preset("paper-labse")
    assert (xlmr.model, xlmr.pooling, xlmr.query_prefix, xlmr.passage_prefix) == (
        "FacebookAI/xlm-roberta-base", "mean", "Query: ", "Passage: ")
    # LaBSE as published: its own pooling, Dense, Normalize and length, only the paper's prefixes on top.
    assert (labse.model, labse.pooling, labse.max_length, labse.query_prefix) == (
        "sentence-transformers/LaBSE", None, None, "Query: ")
    assert {p.model for p in PRESETS} >= {"embedded:e5-small", "intfloat/multilingual-e5-small",
                                          "intfloat/multilingual-e5-base"}
    assert all(base_model(p.model) is not None for p in PRESETS)
    with pytest.raises(ValueError, match="unknown preset 'bert'"):
        preset("bert")

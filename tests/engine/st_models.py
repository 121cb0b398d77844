"""Tiny sentence-transformers models built and saved by sentence-transformers itself (offline).

A 1-layer, 16-d BERT over a 60-token lower-case vocabulary (letters as
WordPiece continuations, so any ASCII word tokenises into real ids), then a
sentence-transformers stack on top, saved with ``SentenceTransformer.save``
(the 6.x layout), and :func:`legacy_copy` rewriting such a folder the way
2.x-5.x models on the hub (LaBSE, multilingual-e5) are laid out.
"""

from __future__ import annotations

import json
import shutil
import string
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", "?", ".", ",", "query", "passage"] + list(
    string.ascii_lowercase
) + ["##" + c for c in string.ascii_lowercase]
HIDDEN = 16
#: Mixed case and punctuation: the tokenizer lower-cases (BERT-uncased style).
TEXTS = [
    "Where is Zanzibar?",
    "Mtoto anakwenda shuleni na rafiki zake wawili kila asubuhi.",
    "x",
    "A much longer sentence, with punctuation, and words that split into many pieces of text.",
]


def tiny_bert(folder: Path, seed: int = 0, lower_case: bool = True) -> Path:
    """A random BERT and its tokenizer as a plain transformers folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    # transformers 5 ignores vocab_file=; the vocabulary must be given as vocab=.
    BertTokenizerFast(vocab={t: i for i, t in enumerate(VOCAB)}, do_lower_case=lower_case).save_pretrained(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = BertConfig(vocab_size=len(VOCAB), hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=128)
        BertModel(config).save_pretrained(folder)
    return folder


def st_model(folder: Path, *, pooling: str = "cls", include_prompt: bool = True, dense: bool = True,
             prompts: dict[str, str] | None = None, max_seq_length: int = 32, seed: int = 0,
             lower_case: bool = True) -> Path:
    """Transformer -> Pooling -> [Dense 16->8 tanh] -> Normalize, saved by sentence-transformers."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    base = tiny_bert(folder.with_name(folder.name + "-base"), seed, lower_case)
    modules = [Transformer(str(base), max_seq_length=max_seq_length),
               Pooling(HIDDEN, pooling_mode=pooling, include_prompt=include_prompt)]
    if dense:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            modules.append(Dense(in_features=HIDDEN, out_features=8, bias=True, activation_function=torch.nn.Tanh()))
    modules.append(Normalize())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SentenceTransformer(modules=modules, prompts=prompts, device="cpu").save(str(folder))
    return folder


def load_st(folder: Path):
    from sentence_transformers import SentenceTransformer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SentenceTransformer(str(folder), device="cpu")


def legacy_copy(source: Path, target: Path, *, max_seq_length: int, do_lower_case: bool = False,
                dense_as_pickle: bool = False) -> Path:
    """``source`` (a 6.x save) in the 2.x-5.x layout: old type strings, pooling booleans, the maximum length
    in ``sentence_bert_config.json``, prompts "query"/"passage"; with ``dense_as_pickle`` the Dense weights
    only as ``pytorch_model.bin``, as some old hub folders have them."""
    shutil.copytree(source, target)
    modules = json.loads((target / "modules.json").read_text())
    for entry in modules:
        entry["type"] = "sentence_transformers.models." + entry["type"].rsplit(".", 1)[-1]
    (target / "modules.json").write_text(json.dumps(modules))
    (target / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": do_lower_case}))
    pooling = json.loads((target / "1_Pooling" / "config.json").read_text())
    legacy = {"word_embedding_dimension": pooling["embedding_dimension"], "include_prompt": pooling["include_prompt"]}
    for key, mode in (("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"),
                      ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                      ("pooling_mode_weightedmean_tokens", "weightedmean"), ("pooling_mode_lasttoken", "lasttoken")):
        legacy[key] = pooling["pooling_mode"] == mode
    (target / "1_Pooling" / "config.json").write_text(json.dumps(legacy))
    dense = target / "2_Dense"
    if dense.is_dir():
        config = json.loads((dense / "config.json").read_text())
        (dense / "config.json").write_text(json.dumps({k: config[k] for k in
                                                       ("in_features", "out_features", "bias", "activation_function")}))
        if dense_as_pickle:
            torch.save(load_file(str(dense / "model.safetensors")), dense / "pytorch_model.bin")
            (dense / "model.safetensors").unlink()
    prompts = json.loads((target / "config_sentence_transformers.json").read_text())
    prompts["prompts"] = {k: v for k, v in prompts["prompts"].items() if k != "document"} | (
        {"passage": prompts["prompts"]["document"]} if prompts["prompts"].get("document") else {})
    (target / "config_sentence_transformers.json").write_text(json.dumps(prompts))
    return target

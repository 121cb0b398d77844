"""How passage vectors are kept: float16 opt-in (within its stated bound, named in the label) and the
checked on-disk embedding cache."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from engine.evaluate import EmbeddingCache, TextEncoding, encode_passages, evaluate
from engine.trec import read_run
from vocabulary.checks import ConfigError
from vocabulary.config import EvalSpec, RunConfig
from vocabulary.records import EvalSet, Passage, Query
from vocabulary.strategies import NO_TRAINING

WORDS = ["mvua", "ilinyesha", "usiku", "kucha", "ọ̀rọ̀", "ilé", "ẹ̀kọ́", "soko", "jiji", "habari"]


def _set() -> EvalSet:
    rng = np.random.default_rng(3)
    passages = tuple(Passage(f"p{i}", " ".join(rng.choice(WORDS, size=rng.integers(3, 30))), "sw") for i in range(200))
    queries = tuple(Query(f"q{i}", " ".join(rng.choice(WORDS, size=4)), "sw") for i in range(20))
    return EvalSet("vectors", queries, passages, {f"q{i}": {f"p{7 * i}": 1, f"p{7 * i + 1}": 1} for i in range(20)})


def test_float16_scores_are_within_2_to_the_minus_11_of_float32_and_the_default_is_float32(tiny_encoder, tmp_path):
    eval_set = _set()
    default = evaluate(tiny_encoder, eval_set, "e", run_dir=tmp_path / "default")
    float32 = evaluate(tiny_encoder, eval_set, "e", run_dir=tmp_path / "32", vectors="float32")
    half = evaluate(tiny_encoder, eval_set, "e", run_dir=tmp_path / "16", vectors="float16")
    assert default == float32
    full = encode_passages(tiny_encoder, eval_set.passages, 64, None, TextEncoding(), "float32")
    halved = encode_passages(tiny_encoder, eval_set.passages, 64, None, TextEncoding(), "float16")
    assert full.dtype == np.float32 and halved.dtype == np.float16 and halved.nbytes * 2 == full.nbytes
    # Each component of a unit vector is rounded to 11 significant bits, so an inner product with a unit query
    # moves by at most 2**-11 (Cauchy-Schwarz); the scores in the run files show it.
    ours, theirs = read_run(tmp_path / "16" / "mono.sw-sw.run.gz"), read_run(tmp_path / "32" / "mono.sw-sw.run.gz")
    shared = [(q, p) for q in ours for p in ours[q] if p in theirs[q]]
    assert len(shared) > 0.9 * sum(len(r) for r in ours.values())  # near ties may swap at the cut, no more
    differences = [abs(ours[q][p] - theirs[q][p]) for q, p in shared]
    assert 0 < max(differences) <= 2**-11
    # The same cells over the same queries; their values may move where near ties swap (the random tiny
    # encoder makes many), which is why float16 is opt-in and named in the label.
    cells = [(r.setting, r.query_language, r.passage_language, r.metric, r.num_queries) for r in half.rows]
    assert cells == [(r.setting, r.query_language, r.passage_language, r.metric, r.num_queries) for r in float32.rows]


def test_float16_and_approximate_indexes_are_opt_in_and_named_in_the_label():
    assert EvalSpec("miracl", ("sw",), "dev").label == "miracl/dev"
    assert EvalSpec("miracl", ("sw",), "dev", vectors="float16").label == "miracl/dev (float16 vectors)"
    assert EvalSpec("miracl", ("sw",), "dev", index="hnsw").label == "miracl/dev (hnsw index)"
    assert (EvalSpec("afriqa", ("sw",), "test", index="ivf").label
            == "afriqa/test (gold passages only, ivf index)")
    for spec, where in ((EvalSpec("miracl", ("sw",), "dev", vectors="float8"), "vectors"),
                        (EvalSpec("miracl", ("sw",), "dev", index="annoy"), "index"),
                        (EvalSpec("miracl", ("sw",), "dev", index="hnsw", vectors="float16"), "vectors")):
        with pytest.raises(ConfigError, match=rf"evaluations\[miracl\]\.{where}"):
            spec.validate()
    bm25 = RunConfig(model="bm25", strategy=NO_TRAINING, train_size=0, alpha=None,
                     evaluations=(EvalSpec("miracl", ("sw",), "dev", vectors="float16"),))
    with pytest.raises(ConfigError, match="bm25 has no vectors"):
        bm25.validate()


def test_a_damaged_or_unchecked_cache_file_is_encoded_again_never_used(tiny_encoder, tmp_path, caplog):
    eval_set = _set()
    folder = tmp_path / "cache"
    first = EmbeddingCache(folder).passage_embeddings(tiny_encoder, eval_set.passages, 64)
    (cached,) = folder.glob("*.npy")
    check = cached.with_suffix(".json")
    assert json.loads(check.read_text())["shape"] == list(first.shape)
    assert np.array_equal(EmbeddingCache(folder).passage_embeddings(tiny_encoder, eval_set.passages, 64), first)
    damaged = bytearray(cached.read_bytes())
    damaged[-5] ^= 0xFF  # one flipped byte in the last vector
    for harm in (lambda: cached.write_bytes(bytes(damaged)),  # a flipped byte
                 lambda: cached.write_bytes(cached.read_bytes()[:-64]),  # cut short
                 lambda: check.unlink()):  # no checksum (e.g. written by an older version)
        harm()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="engine.evaluate"):
            again = EmbeddingCache(folder).passage_embeddings(tiny_encoder, eval_set.passages, 64)
        assert np.array_equal(again, first)
        assert "are not used" in caplog.text and cached.name in caplog.text
        assert check.is_file()  # written anew with the encoding
    # float16 vectors are another cache entry, not a float32 one cut down.
    half = EmbeddingCache(folder).passage_embeddings(tiny_encoder, eval_set.passages, 64, vectors="float16")
    assert half.dtype == np.float16 and len(list(folder.glob("*.npy"))) == 2

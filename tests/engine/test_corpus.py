"""The on-disk passage corpus (engine/data/corpus.py): the same passages back, and the same evaluation as a tuple."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

import engine.data.corpus as corpus_module
import engine.evaluate as evaluator
from engine.bm25 import BM25Pool
from engine.data.corpus import StoredPassages, stored
from engine.evaluate import PassageTexts, evaluate, evaluate_lexical
from vocabulary.records import EvalSet, Passage, Query

WORDS = ["mvua", "ilinyesha", "usiku", "kucha", "ọ̀rọ̀", "ilé", "ẹ̀kọ́", "soko", "jiji", "habari", "Ọjà", "gari"]


def _passages(count: int, seed: int = 5) -> tuple[Passage, ...]:
    rng = np.random.default_rng(seed)
    return tuple(Passage(f"{'sw' if i % 3 else 'yo'}:{i}", " ".join(rng.choice(WORDS, size=rng.integers(3, 30))),
                         "sw" if i % 3 else "yo", title="" if i % 4 else f"Kichwa {i}") for i in range(count))


def test_stored_passages_read_back_equal_in_order_by_index_and_slice(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "BATCH_ROWS", 7)  # many record batches, slices across them
    passages = _passages(50)
    store = StoredPassages.write(iter(passages), folder=str(tmp_path))
    assert len(store) == 50 and list(store) == list(passages) and store == passages and passages == store
    assert [store[i] for i in (0, 6, 7, 49, -1, 13, 12)] == [passages[i] for i in (0, 6, 7, 49, -1, 13, 12)]
    assert store[5:23] == list(passages[5:23]) and store[40:] == list(passages[40:])
    assert store[::9] == list(passages[::9])
    assert store[48:70] == list(passages[48:]) and store[30:30] == []
    with pytest.raises(IndexError):
        store[50]
    assert store != passages[:-1] and store != passages[::-1]
    assert stored(store) is store
    # On POSIX the file is unlinked as soon as it is open: nothing is left behind, whatever ends the process.
    if os.name == "posix":
        assert not list(tmp_path.iterdir())
    empty = StoredPassages.write([], folder=str(tmp_path))
    assert len(empty) == 0 and list(empty) == [] and empty == ()


def _eval_set(passages) -> EvalSet:
    rng = np.random.default_rng(11)
    queries = tuple(Query(f"q{i}", " ".join(rng.choice(WORDS, size=4)), "sw" if i % 2 else "yo") for i in range(16))
    qrels = {f"q{i}": {f"sw:{3 * i + 1}": 1, f"yo:{3 * i}": 1, f"sw:{3 * i + 2}": 0} for i in range(16)}
    return EvalSet("stored", queries, passages, qrels)


def _files(folder):
    return {path.name: gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            for path in sorted(folder.iterdir())}


def test_a_stored_corpus_gives_the_tuples_values_and_run_files_dense_and_bm25(tiny_encoder, tmp_path, monkeypatch):
    """What the loaders give (a stored corpus, read a batch at a time and encoded a shard at a time) is evaluated
    exactly as the same passages in a tuple: per-query values, rows, run files and texts file alike."""
    monkeypatch.setattr(corpus_module, "BATCH_ROWS", 16)
    monkeypatch.setattr(evaluator, "PASSAGE_SHARD", 40)  # shards that start and end inside record batches
    passages = _passages(150)
    in_memory, on_disk = _eval_set(passages), _eval_set(stored(passages))
    assert isinstance(on_disk.passages, StoredPassages)
    results = {}
    for name, eval_set in (("tuple", in_memory), ("stored", on_disk)):
        dense = evaluate(tiny_encoder, eval_set, "e", run_dir=tmp_path / name / "dense")
        corpus = BM25Pool.build([p.id for p in eval_set.passages], PassageTexts(eval_set.passages))
        lexical = evaluate_lexical(corpus, eval_set, "e", run_dir=tmp_path / name / "bm25")  # per-language subsets too
        results[name] = (dense, lexical)
    assert results["stored"] == results["tuple"]
    assert {row.setting for row in results["tuple"][1].rows} == {"mono", "cross", "multi"}
    for kind in ("dense", "bm25"):
        assert _files(tmp_path / "stored" / kind) == _files(tmp_path / "tuple" / kind)


def test_a_loaded_flores_set_is_stored_and_evaluates_as_its_passages_in_a_tuple(tiny_encoder, tmp_path):
    """The loader path itself (a small shipped set): the stored corpus gives the values and files a tuple gives."""
    import dataclasses

    from engine.data import load_eval_set
    from vocabulary.config import EvalSpec

    spec = EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=20)
    loaded = load_eval_set(spec)
    assert isinstance(loaded.passages, StoredPassages) and len(loaded.passages) == 3 * 204
    in_memory = dataclasses.replace(loaded, passages=tuple(loaded.passages))
    results = [evaluate(tiny_encoder, eval_set, spec.label, top_k=10, measures=["nDCG@10"], symmetric=True,
                        run_dir=tmp_path / name) for name, eval_set in (("stored", loaded), ("tuple", in_memory))]
    assert results[0] == results[1] and results[0].per_query
    assert _files(tmp_path / "stored") == _files(tmp_path / "tuple")

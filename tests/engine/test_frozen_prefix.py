"""The frozen-prefix cache on a 3-layer tiny encoder: same vectors, same training, reuse, resume, invalidation."""

from __future__ import annotations

import copy
import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from engine.frozen_prefix import FrozenPrefix
from engine.loading import load_encoder
from engine.losses import RetrievalLoss
from engine.sampling import BatchSampler
from engine.state import Cancelled, TaskState
from engine.train import BatchBackward, train
from tests.engine.test_train import config as train_config
from tests.engine.test_train import easy_set
from tests.file_reads import reads
from vocabulary.batching import batch_plan
from vocabulary.config import ConfigError, EvalSpec, RunConfig

MODEL = "tiny:layers=3"
TEXTS = ["Where is Zanzibar?", "Mvua ilinyesha usiku kucha huko Mombasa na Lagos.", "Ẹ káàárọ̀", "x"]


@pytest.fixture(scope="module")
def three_layers():
    return load_encoder(MODEL)


def config(**changes) -> RunConfig:
    return train_config(**{"model": MODEL, "trainable_layers": 1, "frozen_cache": True, **changes})


def reference(encoder, depth: int):
    """The uncached model with the cached one's semantics: frozen part in eval mode, its output in float16."""
    plain = copy.deepcopy(encoder)
    layers = plain.backbone.encoder.layer
    layers[depth - 1].register_forward_hook(lambda _m, _i, out: out.to(torch.float16).float())
    frozen = [plain.backbone.embeddings, *layers[:depth]]
    original_train = plain.train

    def train_mode(mode: bool = True):
        original_train(mode)
        for module in frozen:
            module.eval()
        return plain

    plain.train = train_mode
    return plain


def test_cached_vectors_equal_the_full_model_with_a_float16_frozen_output(three_layers):
    cached = copy.deepcopy(three_layers)
    cached.cache_frozen_prefix(1, None)
    expected = reference(three_layers, 2)
    for kind in ("query", "passage"):
        first = cached.encode(TEXTS, kind, batch_size=3)
        again = cached.encode(TEXTS[::-1], kind, batch_size=2)[::-1]  # other batches, all from the cache
        np.testing.assert_allclose(first, expected.encode(TEXTS, kind), atol=2e-6)
        np.testing.assert_allclose(again, first, atol=2e-6)
    assert cached.frozen_prefix.computed == 2 * len(TEXTS)  # each (text, prefix) once


def test_a_cached_training_step_equals_the_uncached_one(three_layers):
    """Same loss and gradients as the full model whose frozen layers run without dropout (dropout above stays)."""
    cfg = config()
    batch = BatchSampler(batch_plan(cfg), easy_set()).next_batch()
    cached = copy.deepcopy(three_layers)
    cached.cache_frozen_prefix(1, None)
    results = []
    for encoder in (cached, reference(three_layers, 2)):
        encoder.freeze(True, 1)
        encoder.train()
        torch.manual_seed(5)
        loss = BatchBackward(encoder, RetrievalLoss.from_config(cfg))(batch).item()
        results.append((loss, {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}))
    (cached_loss, cached_grads), (plain_loss, plain_grads) = results
    assert cached_loss == pytest.approx(plain_loss, rel=1e-5)
    assert cached_grads.keys() == plain_grads.keys() and any("layer.2" in n for n in cached_grads)
    for name, grad in cached_grads.items():
        torch.testing.assert_close(grad, plain_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_second_run_reads_what_the_first_wrote_and_trains_the_same(three_layers, tmp_path):
    cache = tmp_path / "cache"
    first_encoder, second_encoder = copy.deepcopy(three_layers), copy.deepcopy(three_layers)
    first = train(config(), easy_set(), first_encoder, tmp_path / "a", frozen_cache_dir=cache)
    second = train(config(), easy_set(), second_encoder, tmp_path / "b", frozen_cache_dir=cache)

    assert first_encoder.frozen_prefix.computed > 0 and second_encoder.frozen_prefix.computed == 0
    assert second.losses == first.losses and len(set(first.losses)) == first.steps == 6
    (folder,) = cache.iterdir()
    assert folder.name == first_encoder.frozen_prefix.identity
    parts = sorted(folder.glob("part-*.npy"))
    assert parts and all(p.with_suffix(".json").is_file() for p in parts)
    for part in parts:  # plain arrays: nothing to unpickle
        matrix = np.load(part, allow_pickle=False)
        index = json.loads(part.with_suffix(".json").read_text())
        assert matrix.dtype == np.float16 and matrix.shape == (sum(index["lengths"]), 32)


def test_a_resumed_cached_run_reproduces_the_uninterrupted_one(three_layers, tmp_path):
    cfg = config(checkpoint_every=2)
    straight = train(cfg, easy_set(), copy.deepcopy(three_layers), tmp_path / "straight",
                     frozen_cache_dir=tmp_path / "cache-1")
    steps: list[int] = []
    with pytest.raises(Cancelled):
        train(cfg, easy_set(), copy.deepcopy(three_layers), tmp_path / "resumed",
              state=TaskState(lambda p: steps.append(p.step), lambda: len(steps) >= 3),
              frozen_cache_dir=tmp_path / "cache-2")
    resumed = train(cfg, easy_set(), copy.deepcopy(three_layers), tmp_path / "resumed",
                    frozen_cache_dir=tmp_path / "cache-2")
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-6)


def test_other_frozen_weights_or_depth_use_another_folder(three_layers, tmp_path):
    folders = {
        FrozenPrefix(three_layers.backbone, 2, tmp_path).identity,
        FrozenPrefix(three_layers.backbone, 1, tmp_path).identity,
        FrozenPrefix(load_encoder("tiny:layers=3,seed=1").backbone, 2, tmp_path).identity,
    }
    assert len(folders) == 3
    changed = copy.deepcopy(three_layers)
    with torch.no_grad():
        changed.backbone.encoder.layer[0].output.dense.bias.add_(1e-3)
    assert FrozenPrefix(changed.backbone, 2, tmp_path).identity not in folders
    top_only = copy.deepcopy(three_layers)
    with torch.no_grad():  # a change above the frozen depth keeps the cache valid
        top_only.backbone.encoder.layer[2].output.dense.bias.add_(1e-3)
    assert FrozenPrefix(top_only.backbone, 2, tmp_path).identity == FrozenPrefix(three_layers.backbone, 2, tmp_path).identity


def test_a_damaged_part_is_ignored_and_recomputed(three_layers, tmp_path):
    prefix = copy.deepcopy(three_layers).cache_frozen_prefix(1, tmp_path)
    batch = three_layers.tokenize(TEXTS, "query")
    expected = prefix.hidden(batch["input_ids"], batch["attention_mask"])
    prefix.flush()
    (part,) = (tmp_path / prefix.identity).glob("part-*.npy")
    part.write_bytes(b"not an array")
    again = copy.deepcopy(three_layers).cache_frozen_prefix(1, tmp_path)
    torch.testing.assert_close(again.hidden(batch["input_ids"], batch["attention_mask"]), expected)
    assert again.computed == len(TEXTS)


def test_frozen_cache_is_part_of_the_identity_only_when_on():
    off = train_config(trainable_layers=1)
    assert "frozen_cache" not in off.identity()
    assert off.run_id == RunConfig.from_dict({k: v for k, v in off.to_dict().items() if k != "frozen_cache"}).run_id
    assert train_config(trainable_layers=1, frozen_cache=True).run_id != off.run_id
    with pytest.raises(ConfigError, match="frozen_cache.*trainable_layers"):
        train_config(frozen_cache=True).validate()


def test_the_untrained_reference_of_a_frozen_cache_study_is_evaluated_through_the_cache(tmp_path):
    """Its numbers are the cached model's (what the trained runs start from), and it leaves every eval text cached."""
    from engine.study import execute
    from vocabulary.strategies import NO_TRAINING

    evaluations = (EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=6),)
    reference_run = dataclasses.replace(config(evaluations=evaluations), strategy=NO_TRAINING, train_size=0,
                                        alpha=None).validate()
    plain = dataclasses.replace(reference_run, frozen_cache=False)
    assert reference_run.evaluates_through_frozen_cache and not plain.evaluates_through_frozen_cache
    assert {"frozen_cache", "trainable_layers"} <= reference_run.identity().keys()
    assert reference_run.run_id != plain.run_id
    bm25 = dataclasses.replace(reference_run, model="bm25")  # no encoder: the setting cannot split its runs
    assert not bm25.evaluates_through_frozen_cache
    assert bm25.run_id == dataclasses.replace(bm25, frozen_cache=False, trainable_layers=None).run_id

    cache = tmp_path / "cache"
    first = execute(reference_run, tmp_path / "first", frozen_cache_dir=cache)
    parts = sorted(cache.glob("*/part-*.npy"))
    assert parts
    again = execute(reference_run, tmp_path / "again", frozen_cache_dir=cache)
    assert sorted(cache.glob("*/part-*.npy")) == parts  # every text was read back, none computed again
    values = {(r.setting, r.query_language, r.passage_language, r.metric): r.value for r in first.rows}
    assert values == {(r.setting, r.query_language, r.passage_language, r.metric): r.value for r in again.rows}
    uncached = execute(plain, tmp_path / "plain")
    assert not (tmp_path / "plain" / "frozen_prefix").exists()
    for row in uncached.rows:  # the float16 rounding of one layer's output moves the numbers little
        assert values[(row.setting, row.query_language, row.passage_language, row.metric)] == pytest.approx(
            row.value, rel=0.01, abs=0.05)


# ---- a damaged cache on disk (issue 30) -----------------------------------------------------------
def _written(three_layers, folder, texts=TEXTS):
    """A cache of ``texts`` flushed to ``folder``; its hidden states, batch and (only) part's files."""
    prefix = copy.deepcopy(three_layers).cache_frozen_prefix(1, folder)
    batch = three_layers.tokenize(texts, "query")
    expected = prefix.hidden(batch["input_ids"], batch["attention_mask"])
    prefix.flush()
    (part,) = (folder / prefix.identity).glob("part-*.npy")
    return expected, batch, part, part.with_suffix(".json")


def _reread(three_layers, folder, batch):
    again = copy.deepcopy(three_layers).cache_frozen_prefix(1, folder)
    return again, again.hidden(batch["input_ids"], batch["attention_mask"])


def test_a_part_is_read_whole_once_per_process_until_it_changes(three_layers, tmp_path, caplog):
    """A worker builds a FrozenPrefix per run over the same parts: their checksums are not read again each time."""
    with reads() as flushing:
        expected, batch, part, index = _written(three_layers, tmp_path)
    assert part not in flushing  # the written part's checksum comes from memory
    hour_ago = part.stat().st_mtime_ns - 3600 * 10**9  # a part written by an earlier process
    os.utime(part, ns=(hour_ago, hour_ago))
    with reads() as first:
        _reread(three_layers, tmp_path, batch)
    with reads() as second:
        again, hidden = _reread(three_layers, tmp_path, batch)
    assert first.count(part) == second.count(part) + 1  # the check's whole read, once; the rest is the memory map
    torch.testing.assert_close(hidden, expected, rtol=0, atol=0)
    assert again.computed == 0
    data = bytearray(part.read_bytes())  # rewritten: a new modification time, so it is checked again
    data[-2] ^= 0x5A
    part.write_bytes(bytes(data))
    damaged, hidden = _reread(three_layers, tmp_path, batch)
    torch.testing.assert_close(hidden, expected, rtol=0, atol=0)
    assert damaged.computed == len(TEXTS) and "damaged" in caplog.text and not part.exists()


def test_flipped_bytes_inside_a_part_are_caught_and_the_clean_values_recomputed(three_layers, tmp_path, caplog):
    expected, batch, part, index = _written(three_layers, tmp_path)
    data = bytearray(part.read_bytes())
    for offset in range(len(data) - 200, len(data), 7):  # inside the float16 rows, past the header
        data[offset] ^= 0x5A
    part.write_bytes(bytes(data))
    again, hidden = _reread(three_layers, tmp_path, batch)
    torch.testing.assert_close(hidden, expected, rtol=0, atol=0)
    assert again.computed == len(TEXTS)
    assert [r.levelname for r in caplog.records if "damaged" in r.getMessage()] == ["WARNING"]
    assert not part.exists() and not index.exists()  # discarded, not read again by every later run


def test_two_keys_of_equal_length_swapped_in_the_index_are_caught(three_layers, tmp_path, caplog):
    texts = ["one two three", "three two one"]  # same length, different states
    expected, batch, part, index = _written(three_layers, tmp_path, texts)
    entries = json.loads(index.read_text())
    assert entries["lengths"][0] == entries["lengths"][1]
    entries["keys"].reverse()
    index.write_text(json.dumps(entries))
    again, hidden = _reread(three_layers, tmp_path, batch)
    torch.testing.assert_close(hidden, expected, rtol=0, atol=0)
    assert again.computed == 2 and "damaged" in caplog.text


@pytest.mark.parametrize("damage", [
    "non-hex key", "no lengths", "a list", "lengths shifted", "a key dropped", "not JSON", "no matrix"])
def test_a_malformed_index_is_discarded_and_rebuilt(three_layers, tmp_path, caplog, damage):
    expected, batch, part, index = _written(three_layers, tmp_path)
    entries = json.loads(index.read_text())
    if damage == "non-hex key":
        entries["keys"][0] = "zz" + entries["keys"][0][2:]
    elif damage == "no lengths":
        del entries["lengths"]
    elif damage == "a list":
        entries = [entries["keys"], entries["lengths"]]
    elif damage == "lengths shifted":
        entries["lengths"] = entries["lengths"][1:] + entries["lengths"][:1]
    elif damage == "a key dropped":
        entries["keys"], entries["lengths"] = entries["keys"][1:], entries["lengths"][1:]
    elif damage == "no matrix":
        part.unlink()
    index.write_text("{" if damage == "not JSON" else json.dumps(entries))
    again, hidden = _reread(three_layers, tmp_path, batch)
    torch.testing.assert_close(hidden, expected, rtol=0, atol=0)
    assert again.computed == len(TEXTS) and "damaged" in caplog.text
    again.flush()  # rebuilt: the next reader finds everything
    assert _reread(three_layers, tmp_path, batch)[0].computed == 0


def test_files_a_killed_writer_left_are_removed_at_the_next_start(three_layers, tmp_path):
    """A kill during the save leaves ``.partial`` files; one between rename and index leaves an unindexed part."""
    expected, batch, part, index = _written(three_layers, tmp_path)
    folder = part.parent
    leftovers = [folder / "part-0a.partial.npy", folder / "part-0b.npy", folder / "part-0c.partial.json"]
    for leftover in leftovers:
        leftover.write_bytes(part.read_bytes() if leftover.suffix == ".npy" else b"{")
    again, hidden = _reread(three_layers, tmp_path, batch)
    torch.testing.assert_close(hidden, expected, rtol=0, atol=0)
    assert again.computed == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted([part.name, index.name, ".lock"])
    assert again._stored_bytes == np.load(part, mmap_mode="r").nbytes  # the unindexed part counted nowhere


_SHORT_WRITE_CHILD = """
import resource, signal, sys
import torch
from engine.disk_full import DiskFullError
from engine.loading import load_encoder
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write is cut short (EFBIG), not killed
encoder = load_encoder("tiny:layers=3")
prefix = encoder.cache_frozen_prefix(1, sys.argv[1])
batch = encoder.tokenize(["Mvua ilinyesha usiku kucha huko Mombasa na Lagos."] * 3 + ["x " * 30], "query")
prefix.hidden(batch["input_ids"], batch["attention_mask"])
resource.setrlimit(resource.RLIMIT_FSIZE, (256, resource.RLIM_INFINITY))  # the header fits, not the rows
try:
    prefix.flush()
except DiskFullError as exc:
    print("stopped:", exc)
"""


def test_a_short_write_of_a_part_is_a_full_disk_and_leaves_no_file(tmp_path):
    """numpy reports a write cut short as ``N requested and M written`` (no errno); a file size limit cuts it
    here without privileges (the worker test on a real small tmpfs needs root)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _SHORT_WRITE_CHILD, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stopped: no space left on ") and len(done.stdout.splitlines()) == 1
    (folder,) = tmp_path.iterdir()
    assert [p.name for p in folder.iterdir()] == [".lock"]


def test_numpys_short_write_is_recognised_as_a_full_disk():
    """What ``np.save`` raises on a full tmpfs: no errno, only the byte counts."""
    from engine.disk_full import is_disk_full

    assert is_disk_full(OSError("124808 requested and 6080 written"))
    assert not is_disk_full(OSError("124808 requested"))


def test_a_cache_of_nan_states_fails_the_run_in_one_line(tmp_path):
    """Checksums cannot catch NaN that was written as NaN (a broken model): the evaluator refuses the vectors."""
    from engine.finite import NonFiniteVectorsError
    from engine.study import execute
    from vocabulary.strategies import NO_TRAINING

    evaluations = (EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=6),)
    reference_run = dataclasses.replace(config(evaluations=evaluations), strategy=NO_TRAINING, train_size=0,
                                        alpha=None).validate()
    cache = tmp_path / "cache"
    execute(reference_run, tmp_path / "first", frozen_cache_dir=cache)
    prefix = FrozenPrefix(load_encoder(MODEL).backbone, 2, cache)
    for old in prefix.folder.glob("part-*"):
        old.unlink()
    prefix._pending = [(key, np.full(rows.shape, np.nan, dtype=np.float16)) for key, rows in prefix._rows.items()]
    prefix.flush()
    with pytest.raises(NonFiniteVectorsError) as failed:
        execute(reference_run, tmp_path / "again", frozen_cache_dir=cache)
    message = str(failed.value)
    assert "\n" not in message and message.startswith(f"{MODEL} on flores/test: 18 of 18 query vectors hold NaN")


def test_a_study_run_on_a_damaged_cache_gives_the_clean_runs_values(tmp_path, caplog):
    """The issue's probe: bytes flipped inside a part changed 68 of 76 values of a later study, silently."""
    from engine.study import execute
    from vocabulary.strategies import NO_TRAINING

    evaluations = (EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=6),)
    reference_run = dataclasses.replace(config(evaluations=evaluations), strategy=NO_TRAINING, train_size=0,
                                        alpha=None).validate()
    cache = tmp_path / "cache"
    clean = execute(reference_run, tmp_path / "clean", frozen_cache_dir=cache)
    for part in cache.glob("*/part-*.npy"):
        data = bytearray(part.read_bytes())
        for offset in range(128, len(data), 2):  # float16's low mantissa bits (past the header): no NaN
            data[offset] ^= 0x07
        part.write_bytes(bytes(data))
    again = execute(reference_run, tmp_path / "again", frozen_cache_dir=cache)
    assert [(r.setting, r.query_language, r.passage_language, r.metric, r.value) for r in again.rows] == \
        [(r.setting, r.query_language, r.passage_language, r.metric, r.value) for r in clean.rows]
    assert "damaged" in caplog.text


def test_a_read_only_cache_is_read_and_left_as_it_is(three_layers, tmp_path):
    """No lock file can be made there and nothing can be removed: the cache is still read (a shared copy)."""
    from tests.faults import remount_read_only, small_tmpfs

    with small_tmpfs(tmp_path / "cache", "4m") as cache:
        expected, batch, part, index = _written(three_layers, cache)
        (part.parent / "part-0b.partial.npy").write_bytes(b"left")
        (part.parent / ".lock").unlink()
        remount_read_only(cache)
        again, hidden = _reread(three_layers, cache, batch)
        torch.testing.assert_close(hidden, expected, rtol=0, atol=0)
        assert again.computed == 0 and (part.parent / "part-0b.partial.npy").exists()

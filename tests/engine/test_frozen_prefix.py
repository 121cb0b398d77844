"""The frozen-prefix cache on a 3-layer tiny encoder: same vectors, same training, reuse, resume, invalidation."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from engine.frozen_prefix import FrozenPrefix
from engine.losses import RetrievalLoss
from engine.loading import load_encoder
from engine.sampling import BatchSampler
from engine.state import Cancelled, TaskState
from engine.train import BatchBackward, train
from tests.engine.test_train import config as train_config
from tests.engine.test_train import easy_set
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

"""What only a GPU can show: bf16 training, GradCache under bf16, resume on CUDA, GPU evaluation equal to CPU.

Marked ``gpu`` and skipped without CUDA. ``bench/gpu_check.sh`` runs them on
a GPU machine; ``HYBRIDSCALE_GPU_TEST_DEVICE=cpu`` (what ``gpu_check.sh
--device cpu`` sets) runs the same code paths on the CPU as a dry run, where
they check the tests themselves, not the GPU.
"""

from __future__ import annotations

import copy
import math
import os

import pytest
import torch

from engine.evaluate import evaluate
from engine.loading import load_encoder
from engine.losses import RetrievalLoss
from engine.sampling import BatchSampler
from engine.state import Cancelled, TaskState
from engine.train import train
from tests.engine.test_train import assert_same_gradients, config, dev_set, easy_set, gradients
from vocabulary.batching import batch_plan
from vocabulary.records import EvalSet, Passage, Query

DEVICE = os.environ.get("HYBRIDSCALE_GPU_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="needs CUDA"),
]
#: bf16 keeps 8 bits of mantissa: sums of a few hundred products agree to about this.
BF16_ATOL = 2e-2


@pytest.fixture()
def gpu_encoder():
    return load_encoder("tiny:", device=DEVICE)


def test_bf16_training_gives_a_finite_falling_loss(gpu_encoder, tmp_path):
    result = train(config(max_steps=8, epochs=20.0, learning_rate=3e-3), easy_set(), gpu_encoder, tmp_path)
    assert all(math.isfinite(loss) for loss in result.losses)
    assert sum(result.losses[-3:]) / 3 < sum(result.losses[:3]) / 3, result.losses


def test_grad_cache_equals_the_full_batch_within_bf16_tolerance(gpu_encoder):
    cfg = config(strategy="hybrid")
    batch = BatchSampler(batch_plan(cfg), easy_set()).next_batch()
    loss = RetrievalLoss.from_config(cfg)
    gpu_encoder.eval()  # no dropout, so chunks must reproduce the full batch's gradient
    plain = gradients(gpu_encoder, batch, loss, None)
    assert_same_gradients(gradients(gpu_encoder, batch, loss, 3), plain, atol=BF16_ATOL)


def test_resume_equals_an_uninterrupted_run(gpu_encoder, tmp_path):
    cfg = config(max_steps=4, checkpoint_every=2, dev_every=2, select="best_dev")
    steps: list[int] = []
    with pytest.raises(Cancelled):
        train(cfg, easy_set(), copy.deepcopy(gpu_encoder), tmp_path / "resumed", dev_set=dev_set(),
              state=TaskState(lambda p: steps.append(p.step), lambda: len(steps) >= 3))
    resumed = train(cfg, easy_set(), copy.deepcopy(gpu_encoder), tmp_path / "resumed", dev_set=dev_set())
    straight = train(cfg, easy_set(), copy.deepcopy(gpu_encoder), tmp_path / "straight", dev_set=dev_set())
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-3)
    assert resumed.selected_step == straight.selected_step


def _eval_set() -> EvalSet:
    data = easy_set()
    queries = tuple(Query(f"q{i}-{lang}", g.queries[lang], lang) for i, g in enumerate(data.groups) for lang in ("en", "de"))
    passages = tuple(Passage(f"p{i}-{lang}", g.passages[lang], lang) for i, g in enumerate(data.groups) for lang in ("en", "de"))
    qrels = {q.id: {f"p{q.id[1:].split('-')[0]}-{lang}": 1 for lang in ("en", "de")} for q in queries}
    return EvalSet("easy/eval", queries, passages, qrels)


def test_gpu_evaluation_equals_cpu_within_1e_3(gpu_encoder):
    on_device = evaluate(gpu_encoder, _eval_set(), "easy", top_k=100).rows
    on_cpu = evaluate(load_encoder("tiny:", device="cpu"), _eval_set(), "easy", top_k=100).rows
    assert len(on_device) == len(on_cpu) > 10
    for a, b in zip(on_device, on_cpu):
        assert (a.setting, a.query_language, a.passage_language, a.metric) == \
            (b.setting, b.query_language, b.passage_language, b.metric)
        assert a.value == pytest.approx(b.value, abs=1e-3), a

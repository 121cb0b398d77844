"""Data-parallel training on CPU: two real processes, the gloo backend, the tiny encoder.

Each pair of processes goes through :func:`engine.distributed.init_from_env`
(the environment torchrun would set) and saves what it computed; the
assertions compare it with the same computation in this single process. The
processes are forked from a clean fork server (started once, it imports torch
once), so a start takes a fraction of a second rather than the ~5 s of a fresh
interpreter, and one pair per module fixture keeps the file at two process starts.
"""

from __future__ import annotations

import copy
import os
import pickle
import socket
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
import torch.multiprocessing as mp

from engine.distributed import (
    DistContext,
    DistributedSetupError,
    gather_with_grad,
    init_from_env,
    shard_batch,
    shard_training_batch,
    shutdown,
)
from engine.loading import load_encoder
from engine.losses import RetrievalLoss, info_nce
from engine.sampling import BatchSampler
from engine.state import Cancelled, TaskState
from engine.train import BatchBackward, NonFiniteLossError, train
from tests.engine.test_train import assert_same_gradients, config, easy_set, negatives_set, weights
from vocabulary.batching import batch_plan

#: A collective that never completes would otherwise hang until the suite's 600 s timeout.
pytestmark = pytest.mark.timeout(180)

WORLD = 2
#: The loss variants whose gradients must match: plain, symmetric, semantic contrastive, hard negatives
#: (some of them another rank's positive, which the loss must mask with the global batch's ids).
LOSS_CASES = {
    "infonce": config(strategy="hybrid"),
    "symmetric": config(strategy="cross", symmetric_loss=True),
    "contrastive": config(strategy="contrastive"),
    "negatives": config(strategy="multi"),
}


def loss_data(case: str):
    return negatives_set() if case == "negatives" else easy_set()
#: Plain backward, and GradCache in uneven chunks (a rank's 4 rows as 3 + 1).
CHUNKS = (None, 3)
TRAIN_CONFIG = config(max_steps=6, checkpoint_every=2, learning_rate=2e-3)
#: The top layer of the tiny encoder's two trains; the ranks share one frozen-prefix cache folder, as the
#: ranks of a worker on one machine share its artifacts.
CACHED_CONFIG = config(max_steps=6, learning_rate=2e-3, trainable_layers=1, frozen_cache=True)
SAMPLER_CONFIGS = {
    "hybrid": config(strategy="hybrid", alpha=0.5, seed=3),
    "mono": config(strategy="mono"),
    "contrastive": config(strategy="contrastive"),
    "multi": config(strategy="multi"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, port: int, task: Callable[[DistContext, Path], Any], out: Path, results) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    context = init_from_env("cpu")
    try:
        # Bytes through a pipe to the parent: nothing is unpickled from disk, not even in tests.
        results.put((rank, pickle.dumps(task(context, out))))
    finally:
        shutdown()


def run_on_two_ranks(task: Callable[[DistContext, Path], Any], out: Path) -> list[Any]:
    """Run ``task(context, out)`` in 2 processes forked from a clean fork server; return each rank's result."""
    out.mkdir(parents=True, exist_ok=True)
    # forkserver, not fork: the pytest process has threads by now (heartbeats, torch's pools), and a
    # fork of a threaded process can deadlock on a lock some thread held; the fork server has none.
    results = mp.get_context("forkserver").SimpleQueue()
    processes = mp.start_processes(_entry, args=(_free_port(), task, out, results), nprocs=WORLD, join=False,
                                   start_method="forkserver")
    received: dict[int, Any] = {}
    while len(received) < WORLD:  # read while they run: a large result fills the pipe before a rank exits
        if not results.empty():
            rank, payload = results.get()
            received[rank] = pickle.loads(payload)
        elif processes.join(timeout=0.05) and results.empty():  # join raises if a rank failed
            raise RuntimeError(f"ranks {sorted(set(range(WORLD)) - set(received))} exited without a result")
    while not processes.join():
        pass
    return [received[r] for r in range(WORLD)]


def copy_weights(encoder):
    """A private copy of the weights; the tokenizer (slow to deep-copy) is shared."""
    return copy.deepcopy(encoder, memo={id(encoder.tokenizer): encoder.tokenizer})


def no_dropout(encoder):
    """Dropout masks are drawn per rank; without dropout the 1- and 2-process runs must agree exactly."""
    for module in encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return encoder


# ---- what the ranks compute ------------------------------------------------
def _gather(context: DistContext) -> dict[str, Any]:
    """Raw tensors through gather_with_grad: the loss and this rank's slice gradients."""
    generator = torch.Generator().manual_seed(5)
    queries, passages = torch.randn(8, 16, generator=generator), torch.randn(8, 16, generator=generator)
    mine = slice(4 * context.rank, 4 * context.rank + 4)
    q, p = queries[mine].clone().requires_grad_(), passages[mine].clone().requires_grad_()
    loss = info_nce(gather_with_grad(q), gather_with_grad(p), 0.05, symmetric=True)
    loss.backward()
    return {"loss": loss.item(), "q_grad": q.grad, "p_grad": p.grad}


def _gradient_task(context: DistContext, _out: Path) -> dict[str, Any]:
    """BatchBackward under DDP: each rank's global loss and DDP-averaged parameter gradients."""
    base = load_encoder("tiny:").eval()  # no dropout: the gradients must match to float rounding
    results: dict[str, Any] = {"gather": _gather(context)}
    for name, cfg in LOSS_CASES.items():
        batch = BatchSampler(batch_plan(cfg), loss_data(name)).next_batch()  # the global batch; ranks embed slices
        for chunk in CHUNKS:
            encoder = copy_weights(base)  # a fresh module per DDP wrapper
            loss = BatchBackward(encoder, RetrievalLoss.from_config(cfg), chunk_size=chunk, context=context)(batch)
            grads = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}
            results[name, chunk] = (loss.item(), grads)
    return results


def _training_task(context: DistContext, out: Path) -> dict[str, Any]:
    """Cancel on rank 0 at step 3, resume, and a NaN run: what every rank saw."""
    base = no_dropout(load_encoder("tiny:"))
    seen, saved = [], []
    cancel = (lambda: len(seen) >= 3) if context.is_main else None
    try:
        train(TRAIN_CONFIG, easy_set(), copy_weights(base), out / "work", state=TaskState(seen.append, cancel),
              on_checkpoint=lambda step, _: saved.append(step), context=context)
        stopped = False
    except Cancelled:
        stopped = True
    encoder = copy_weights(base)
    result = train(TRAIN_CONFIG, easy_set(), encoder, out / "work", state=TaskState(seen.append),
                   on_checkpoint=lambda step, _: saved.append(step), context=context)
    try:
        train(config(temperature=1e-45), easy_set(), copy_weights(base), out / "nan", context=context)
        nan_error = ""
    except NonFiniteLossError as exc:
        nan_error = str(exc)
    sampler = BatchSampler(batch_plan(SAMPLER_CONFIGS["hybrid"]), easy_set())
    slices = [shard_training_batch(sampler.next_batch(), context.rank, context.world_size) for _ in range(8)]
    cached_encoder = copy_weights(base)
    cached = train(CACHED_CONFIG, easy_set(), cached_encoder, out / f"cached-{context.rank}", context=context,
                   frozen_cache_dir=out / "frozen-prefix")
    return {
        "stopped": stopped, "progress": [p.step for p in seen], "checkpoints": saved,
        "losses": result.losses, "weights": weights(encoder), "nan_error": nan_error, "slices": slices,
        "cached_losses": cached.losses, "cached_weights": weights(cached_encoder),
    }


@pytest.fixture(scope="module")
def ddp_gradients(tmp_path_factory):
    return run_on_two_ranks(_gradient_task, tmp_path_factory.mktemp("gradients"))


@pytest.fixture(scope="module")
def ddp_training(tmp_path_factory):
    out = tmp_path_factory.mktemp("training")
    return out, run_on_two_ranks(_training_task, out)


# ---- (a) the gathered loss and its gradients --------------------------------
def test_gather_with_grad_gives_the_global_loss_and_summed_slice_gradients(ddp_gradients):
    generator = torch.Generator().manual_seed(5)
    queries = torch.randn(8, 16, generator=generator).requires_grad_()
    passages = torch.randn(8, 16, generator=generator).requires_grad_()
    loss = info_nce(queries, passages, 0.05, symmetric=True)
    loss.backward()
    for rank, result in enumerate(r["gather"] for r in ddp_gradients):
        mine = slice(4 * rank, 4 * rank + 4)
        assert result["loss"] == pytest.approx(loss.item(), abs=1e-5)
        # Every rank computed the same global loss, so the gather's backward sums WORLD copies
        # of each slice's gradient: DDP's average over ranks divides that factor out again.
        assert torch.allclose(result["q_grad"], WORLD * queries.grad[mine], atol=1e-5)
        assert torch.allclose(result["p_grad"], WORLD * passages.grad[mine], atol=1e-5)
    assert queries.grad.abs().max() > 1e-3


@pytest.mark.parametrize("chunk", CHUNKS, ids=["plain", "gradcache"])
@pytest.mark.parametrize("case", list(LOSS_CASES))
def test_ddp_loss_and_gradients_equal_the_single_process_global_batch(ddp_gradients, tiny_encoder, case, chunk):
    cfg = LOSS_CASES[case]
    batch = BatchSampler(batch_plan(cfg), loss_data(case)).next_batch()
    encoder = copy_weights(tiny_encoder).eval()
    encoder.zero_grad(set_to_none=True)
    backward = BatchBackward(encoder, RetrievalLoss.from_config(cfg))  # one process, no GradCache
    expected_loss = backward(batch).item()
    reference = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}
    for loss, grads in (ddp_gradients[0][case, chunk], ddp_gradients[1][case, chunk]):
        assert loss == pytest.approx(expected_loss, abs=1e-5)
        assert_same_gradients(grads, reference, atol=1e-5)
    # Not a batch-4 objective: the loss of one rank's slice alone differs.
    assert abs(backward(shard_training_batch(batch, 0, WORLD)).item() - expected_loss) > 1e-3


# ---- (b) the sampler on every rank --------------------------------------------
@pytest.mark.parametrize("name", list(SAMPLER_CONFIGS))
def test_rank_slices_share_kind_and_language_and_concatenate_to_the_global_batch(name):
    cfg = SAMPLER_CONFIGS[name]
    reference, *ranks = [BatchSampler(batch_plan(cfg), easy_set()) for _ in range(1 + WORLD)]
    kinds = set()
    for _ in range(12):
        batch = reference.next_batch()
        slices = [shard_training_batch(s.next_batch(), rank, WORLD) for rank, s in enumerate(ranks)]
        assert sum((s.pairs for s in slices), ()) == batch.pairs
        assert sum((s.translations for s in slices), ()) == batch.translations
        assert {s.kind for s in slices} == {batch.kind}
        if batch.kind == "mono":  # one language on every rank
            assert len({p.query_language for s in slices for p in s.pairs}) == 1
        if batch.kind == "cross":
            assert all(p.query_language != p.passage_language for s in slices for p in s.pairs)
        kinds.add(batch.kind)
    assert name != "hybrid" or kinds == {"mono", "cross"}


def test_slices_in_separate_processes_match_this_process(ddp_training):
    _, ranks = ddp_training
    sampler = BatchSampler(batch_plan(SAMPLER_CONFIGS["hybrid"]), easy_set())
    for index in range(8):
        batch = sampler.next_batch()
        slices = [rank["slices"][index] for rank in ranks]
        assert slices[0].pairs + slices[1].pairs == batch.pairs
        assert slices[0].kind == slices[1].kind == batch.kind


def test_shard_batch_needs_a_divisible_batch():
    assert shard_batch(list(range(6)), 1, 3) == [2, 3]
    with pytest.raises(DistributedSetupError, match="batch_size 6 .* over 4 processes; choose a multiple of 4"):
        shard_batch(list(range(6)), 0, 4)


# ---- (c) training: curve, cancel, resume, NaN --------------------------------
def test_two_process_training_follows_the_one_process_curve(ddp_training, tiny_encoder, tmp_path):
    out, (rank0, rank1) = ddp_training
    encoder = no_dropout(copy_weights(tiny_encoder))
    straight = train(TRAIN_CONFIG, easy_set(), encoder, tmp_path)
    assert len(set(straight.losses)) == 6
    assert rank0["losses"] == pytest.approx(straight.losses, abs=1e-4)
    assert rank1["losses"] == rank0["losses"]  # every rank holds the same global loss
    reference = weights(encoder)
    for name, value in rank0["weights"].items():
        assert torch.allclose(value, reference[name], atol=1e-4), name
        assert torch.equal(value, rank1["weights"][name]), name
    assert (out / "work" / "model" / "config.json").is_file()


def test_two_process_training_through_the_frozen_prefix_cache_follows_the_one_process_curve(
        ddp_training, tiny_encoder, tmp_path):
    out, (rank0, rank1) = ddp_training
    encoder = no_dropout(copy_weights(tiny_encoder))
    straight = train(CACHED_CONFIG, easy_set(), encoder, tmp_path / "run", frozen_cache_dir=tmp_path / "cache")
    assert rank0["cached_losses"] == pytest.approx(straight.losses, abs=1e-4)
    assert rank1["cached_losses"] == rank0["cached_losses"]
    reference = weights(encoder)
    for name, value in rank0["cached_weights"].items():
        assert torch.allclose(value, reference[name], atol=1e-4), name
        assert torch.equal(value, rank1["cached_weights"][name]), name
    assert any((out / "frozen-prefix").rglob("*.npy"))  # the ranks wrote their shared cache


def test_cancel_on_rank_zero_stops_every_rank_and_the_run_resumes(ddp_training):
    _, (rank0, rank1) = ddp_training
    assert rank0["stopped"] and rank1["stopped"]  # rank 1 was never asked, it followed rank 0
    assert rank0["progress"] == [1, 2, 3, 4, 5, 6]  # resumed at step 4, not from scratch
    assert rank1["progress"] == [] and rank1["checkpoints"] == []  # rank 0 alone reports and writes
    assert rank0["checkpoints"] == [2, 3, 4, 6]


def test_non_finite_loss_stops_every_rank(ddp_training):
    _, ranks = ddp_training
    for rank in ranks:
        assert rank["nan_error"].startswith("loss became nan at step 1")


def test_settings_a_parallel_run_cannot_honour_fail_clearly(tiny_encoder, tmp_path):
    # Raised on every rank before the first collective, so a plain context of size 2 shows them.
    two = DistContext(0, 2, 0, torch.device("cpu"))
    with pytest.raises(DistributedSetupError, match="batch_size 7 .* over 2 processes; choose a multiple of 2"):
        train(config(batch_size=7), easy_set(), copy_weights(tiny_encoder), tmp_path, context=two)

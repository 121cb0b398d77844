"""Data-parallel training over several GPUs (torchrun + DDP) with GLOBAL in-batch negatives.

In-batch negatives are the experiment: a hybrid run's batches are either all
X-X or all X-Y, and InfoNCE contrasts each query with every passage of its
batch. Split over W processes naively, each GPU would see only its own slice
as negatives, so a 4-GPU run with 32 pairs per GPU would train a batch-32
objective, not the batch-128 one of the single-GPU run. Here:

- ``RunConfig.batch_size`` stays the GLOBAL batch (so a run's identity does
  not depend on how many GPUs trained it); every rank draws the same global
  batch from a sampler seeded identically and keeps its contiguous slice
  (:func:`shard_training_batch`), so all ranks agree on the batch's kind and
  language.
- Each rank embeds its slice, all-gathers every embedding column WITH
  gradients (:func:`gather_with_grad`) and computes the unchanged
  :class:`engine.losses.RetrievalLoss` (InfoNCE, its symmetric direction and
  the semantic contrastive term) on the global tensors. Every rank thus holds
  the very loss a single process computes on the global batch, and the
  single- and multi-GPU paths share one loss implementation.

Why the gradients are exact (the open_clip recipe). Every rank computes the
same global loss L. The gather's backward SUMS, over ranks, the gradients for
rank r's slice: W copies of dL/dE_r. Rank r's parameter gradient is therefore
W x (dL/dE_r)(dE_r/dtheta); DDP averages over ranks, giving
sum_r (dL/dE_r)(dE_r/dtheta) = dL/dtheta, the single-process gradient. (The
other common recipe, a gather whose backward keeps only the local slice plus
a loss multiplied by W, is equally correct; mixing the two is not.)

Control traffic (the claimed run, stop flags, the wait while rank 0
evaluates) goes over a separate gloo group with a long timeout, so a GPU job
does not trip NCCL's watchdog while rank 0 evaluates for half an hour.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from engine.model import resolve_device
from engine.sampling import Batch

T = TypeVar("T")

#: The variables torchrun sets for every process it starts.
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
#: How long ranks may wait on each other outside training steps (rank 0 evaluating, claiming).
CONTROL_TIMEOUT = dt.timedelta(hours=24)


class DistributedSetupError(ValueError):
    """The torchrun environment, the device request or the run's settings cannot be honoured."""


@dataclass(frozen=True)
class DistContext:
    """Who this process is in a data-parallel job; world_size 1 is a plain single process."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    #: The gloo group with a long timeout for control traffic (None for one process).
    control: dist.ProcessGroup | None = field(default=None, compare=False, repr=False)

    @classmethod
    def single(cls, device: str | torch.device = "cpu") -> "DistContext":
        """One process, no process group: every collective below is then the identity."""
        return cls(0, 1, 0, torch.device(device))

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, reports progress, evaluates and talks to the queue."""
        return self.rank == 0

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module as DDP when several processes train it, unchanged otherwise.

        ``find_unused_parameters``: a Hugging Face backbone computes a pooler
        head that our mean/CLS pooling never uses, and DDP refuses trainable
        parameters that get no gradient. The search costs one graph walk per
        forward, negligible next to the encoder.
        """
        if self.world_size == 1:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)

    # ---- control collectives (identities for one process) ------------------
    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one: how all ranks stop together."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([int(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.control)
        return bool(value.item())

    def broadcast(self, value: T | None) -> T | None:
        """Rank 0's ``value`` on every rank (other ranks pass anything, usually None)."""
        if self.world_size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value`` in rank order, on every rank."""
        if self.world_size == 1:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value, group=self.control)
        return values

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier(group=self.control)


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DistributedSetupError(
            f"environment variable {name}={value!r} is not an integer; launch with torchrun, "
            "which sets RANK, WORLD_SIZE and LOCAL_RANK"
        ) from None


def _device(name: str, local_rank: int, world_size: int) -> torch.device:
    device = resolve_device(name)
    if device.type != "cuda" or world_size == 1:
        return device
    if device.index is not None:
        raise DistributedSetupError(
            f"device {name!r}: under torchrun give 'cuda' or 'auto'; each process takes the GPU of its LOCAL_RANK"
        )
    if local_rank >= torch.cuda.device_count():
        raise DistributedSetupError(
            f"LOCAL_RANK {local_rank} has no GPU: this node sees {torch.cuda.device_count()}; "
            "give --nproc-per-node at most that many"
        )
    return torch.device("cuda", local_rank)


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ


def torchrun_command(nproc_per_node: int, program: Sequence[str]) -> list[str]:
    """The command starting ``program`` (``-m module ARGS`` or ``script ARGS``) as N processes of this node.

    ``--standalone`` gives each job its own rendezvous on a free local port,
    so several such jobs on one node do not collide.
    """
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc_per_node}",
            *program]


def init_from_env(device: str = "auto") -> DistContext:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK and join the process group (NCCL on GPUs, gloo on CPUs).

    Without WORLD_SIZE (a plain ``hybridscale worker``) this is a single
    process: rank 0 of 1, no process group. MASTER_ADDR and MASTER_PORT come
    from torchrun as well; ``init_process_group`` reads them itself.
    """
    if not launched_by_torchrun():
        return DistContext.single(resolve_device(device))
    rank, world_size, local_rank = (_env_int(name) for name in _ENV)
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise DistributedSetupError(
            f"RANK={rank}, WORLD_SIZE={world_size}, LOCAL_RANK={local_rank} are inconsistent "
            "(need 0 <= RANK < WORLD_SIZE); launch with torchrun"
        )
    where = _device(device, local_rank, world_size)
    if world_size == 1:
        return DistContext(rank, world_size, local_rank, where)
    if where.type == "cuda":
        torch.cuda.set_device(where)
        dist.init_process_group("nccl", device_id=where)
    else:
        dist.init_process_group("gloo")
    control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    return DistContext(rank, world_size, local_rank, where, control)


def shutdown() -> None:
    """Leave the process group (a no-op for a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward hands each rank the SUM of all ranks' gradients for its slice.

    Written here rather than taken from ``torch.distributed.nn.functional.all_gather``
    (deprecated since torch 2.x and emulated through all-to-all on gloo): one
    all-reduce of a (global batch x dim) gradient works on every backend and
    costs nothing next to the encoder.
    """

    @staticmethod
    def forward(ctx, local: Tensor) -> Tensor:  # type: ignore[override]
        parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, local.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        total = grad.contiguous().clone()  # all_reduce works in place; autograd may still hold grad
        dist.all_reduce(total)
        rank, world_size = dist.get_rank(), dist.get_world_size()
        size = total.shape[0] // world_size
        return total[rank * size : (rank + 1) * size]


def gather_with_grad(t: Tensor) -> Tensor:
    """Concatenate every rank's ``t`` (same shape on all ranks) in rank order, differentiably.

    The identity for a single process, so callers need no special case.
    """
    if _world_size() == 1:
        return t
    return _GatherWithGrad.apply(t)


def shard_batch(batch: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Rank ``rank``'s contiguous slice of one global batch; every rank gets the same number of items.

    Ranks that drew the same global batch (a sampler with the shared seed) get
    disjoint slices whose concatenation in rank order is the batch, which is
    the row order :func:`gather_with_grad` reassembles.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1} for world_size {world_size}")
    check_divisible(len(batch), world_size)
    size = len(batch) // world_size
    return list(batch[rank * size : (rank + 1) * size])


def check_divisible(batch_size: int, world_size: int) -> None:
    if batch_size % world_size:
        raise DistributedSetupError(
            f"batch_size {batch_size} (the global batch) cannot be split evenly over {world_size} processes; "
            f"choose a multiple of {world_size}"
        )


def shard_training_batch(batch: Batch, rank: int, world_size: int) -> Batch:
    """A sampler batch's slice for one rank: same kind, translations (and hard negatives) aligned with their pairs."""
    def part(values: tuple) -> tuple:
        return tuple(shard_batch(values, rank, world_size)) if values else ()

    return dataclasses.replace(
        batch,
        pairs=part(batch.pairs),
        translations=part(batch.translations),
        translation_languages=part(batch.translation_languages),
        translation_ids=part(batch.translation_ids),
    )

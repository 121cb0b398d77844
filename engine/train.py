"""The training loop: sampler -> encoder -> InfoNCE -> AdamW, resumable and cancellable.

It only uses the :class:`engine.model.Encoder` API (``tokenize``, ``forward``,
``freeze``, ``save``), so it trains the embedded e5-small and any HF encoder alike.

- Optimiser: AdamW (weight decay on matrices only, the usual HF/sentence-transformers
  split; fused on CUDA), linear warmup then linear decay, gradient clipping.
- Precision: bf16 autocast on CUDA, fp32 on CPU; logits are always fp32 (see losses).
- GradCache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under
  Memory Limited Setup"): with ``grad_cache_chunk`` set, the batch is embedded in
  chunks without a graph, the loss is backpropagated to the embeddings only, and
  each chunk is then re-encoded with a graph and given its cached gradient.
  Dropout masks are replayed by restoring each chunk's RNG state, so the
  gradients equal the plain full-batch ones while memory is that of one chunk.
- Inputs: every text is tokenised once (a cache keyed by text) and batches are
  padded to their own longest text, so a step does no tokenizer work after the
  first epoch. Batches are not length-bucketed across the run: their
  composition is the experiment and belongs to the sampler.
- Host syncs: one per step, reading the loss, which the NaN check and the
  progress callback need anyway.
- Checkpoints (``workdir/checkpoint``): ``model.safetensors`` holds every weight,
  ``trainer.pt`` the optimiser, scheduler, sampler, every rank's RNG states,
  step and loss history, ``step.json`` the step alone (so a mirror can compare
  checkpoints without loading them). They are written to a temporary folder
  and renamed into place. A ``train()`` call that finds one resumes from it
  and reproduces the loss curve of an uninterrupted run.
- Several GPUs (a :class:`engine.distributed.DistContext` from torchrun): every
  rank draws the same global batch, embeds its slice, and the loss is computed
  on embeddings gathered with gradients, so N GPUs train exactly the
  single-GPU objective of the global batch (see :mod:`engine.distributed`).
  The encoder is wrapped in DDP; rank 0 alone writes checkpoints and the model
  and reports progress; a cancel request or a NaN on any rank stops all ranks
  at the same step. Dropout masks are drawn per rank (rank 0 keeps the run's
  seed), so with dropout a 2-GPU curve equals the 1-GPU one in distribution,
  and exactly without dropout. GradCache works under DDP too: the cached
  embeddings are gathered, and each rank re-encodes only its own slice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import Tensor
from transformers import get_linear_schedule_with_warmup

from engine.config import RunConfig
from engine.distributed import (
    DistContext,
    check_divisible,
    gather_with_grad,
    shard_training_batch,
)
from engine.losses import RetrievalLoss
from engine.model import Encoder
from engine.records import TrainingSet
from engine.sampling import Batch, BatchSampler

CHECKPOINT_DIR = "checkpoint"
MODEL_DIR = "model"
_WEIGHTS_FILE = "model.safetensors"
_STATE_FILE = "trainer.pt"
_STEP_FILE = "step.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainProgress:
    step: int
    total_steps: int
    loss: float
    samples_per_second: float
    learning_rate: float


@dataclass(frozen=True)
class TrainResult:
    steps: int
    final_loss: float
    losses: list[float]
    model_dir: Path
    seconds: float


class TrainingCancelled(Exception):
    """``cancelled()`` turned true; a checkpoint was saved first, so the run can resume."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the optimiser was not stepped with it."""


class CheckpointMismatchError(ValueError):
    """The workdir's checkpoint belongs to another run's settings."""


# ---- inputs ---------------------------------------------------------------
class _TokenCache:
    """Token ids of every text seen so far, so each text is tokenised once per run."""

    def __init__(self, encoder: Encoder):
        self._encoder = encoder
        self._ids: dict[tuple[str, str], np.ndarray] = {}
        self._pad = encoder.tokenizer.pad_token_id

    def rows(self, texts: Sequence[str], kind: str) -> list[np.ndarray]:
        missing = [t for t in dict.fromkeys(texts) if (kind, t) not in self._ids]
        if missing:
            encoded = self._encoder.tokenize(missing, kind)
            for text, ids, mask in zip(missing, encoded["input_ids"], encoded["attention_mask"]):
                self._ids[(kind, text)] = ids[mask.bool()].numpy()
        return [self._ids[(kind, t)] for t in texts]

    def collate(self, rows: Sequence[np.ndarray], device: torch.device) -> tuple[Tensor, Tensor]:
        """Right-pad ``rows`` to the longest one: (input_ids, attention_mask) on ``device``."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        pinned = device.type == "cuda"
        tensors = [torch.from_numpy(a) for a in (ids, mask)]
        if pinned:
            tensors = [t.pin_memory() for t in tensors]
        return tensors[0].to(device, non_blocking=pinned), tensors[1].to(device, non_blocking=pinned)


def _batch_texts(batch: Batch, with_translations: bool) -> list[tuple[list[str], str]]:
    """The text columns of a batch, in the order the loss takes them."""
    columns = [(batch.queries, "query"), (batch.passages, "passage")]
    if with_translations:
        columns.append((list(batch.translations), "passage"))
    return columns


# ---- one step's gradients ------------------------------------------------
class _RngState:
    """The torch RNG state of CPU and the encoder's CUDA device, for replaying dropout."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block with this state, leaving the global RNG as it was."""
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


class BatchBackward:
    """Embeds a batch, computes its loss and accumulates the parameters' gradients.

    ``chunk_size`` None: one forward pass per text column with a graph.
    Otherwise GradCache, exact up to float rounding (see the module docstring).
    Under a several-process ``context`` the batch given is this rank's slice,
    the encoder runs under DDP and the loss sees every rank's embeddings.
    """

    def __init__(
        self, encoder: Encoder, loss: RetrievalLoss, chunk_size: int | None = None, compile_model: bool = False,
        context: DistContext | None = None,
    ):
        self.device = torch.device(encoder.device)
        self.context = context or DistContext.single(self.device)
        self.loss = loss
        self.chunk_size = chunk_size
        self.tokens = _TokenCache(encoder)
        self._module = self.context.wrap(encoder)
        self._forward: Callable[[Tensor, Tensor], Tensor] = (
            torch.compile(self._module, dynamic=True) if compile_model else self._module
        )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self, batch: Batch) -> Tensor:
        """Backpropagate the batch's loss; return it (detached, still on the device)."""
        columns = [self.tokens.rows(texts, kind) for texts, kind in _batch_texts(batch, self.loss.needs_translations)]
        if self.chunk_size is None:
            with self._autocast():
                embeddings = [self._forward(*self.tokens.collate(rows, self.device)) for rows in columns]
            loss = self.loss(*(gather_with_grad(e) for e in embeddings))
            loss.backward()
            return loss.detach()
        return self._grad_cache(columns, self.chunk_size)

    def _grad_cache(self, columns: list[list[np.ndarray]], size: int) -> Tensor:
        chunks = [
            [self.tokens.collate(rows[i : i + size], self.device) for i in range(0, len(rows), size)]
            for rows in columns
        ]
        states: list[list[_RngState]] = []
        embeddings: list[Tensor] = []
        with torch.no_grad(), self._autocast():
            for column in chunks:
                states.append([])
                parts = []
                for inputs in column:
                    states[-1].append(_RngState(self.device))
                    parts.append(self._forward(*inputs))
                embeddings.append(torch.cat(parts).float())
        # Under DDP the loss sees every rank's embeddings (gathered, no graph needed yet); this
        # rank then backpropagates its own rows' gradients, times the world size because DDP
        # averages over ranks (the second recipe of engine.distributed's docstring).
        leaves = [gather_with_grad(e).detach().requires_grad_() for e in embeddings]
        loss = self.loss(*leaves)
        loss.backward()
        rank, world_size = self.context.rank, self.context.world_size
        local_grads = [leaf.grad.chunk(world_size)[rank] * world_size for leaf in leaves]
        passes = [(inputs, state, grad) for column, column_states, grads in zip(chunks, states, local_grads)
                  for inputs, state, grad in zip(column, column_states, grads.split(size))]
        for index, (inputs, state, grad) in enumerate(passes):
            # DDP all-reduces once, in the last pass; the others only accumulate.
            accumulate = self._no_sync() if index < len(passes) - 1 else contextlib.nullcontext()
            with accumulate:
                with state.replay(), self._autocast():
                    embedding = self._forward(*inputs)
                embedding.backward(grad.to(embedding.dtype))
        return loss.detach()

    def _no_sync(self) -> contextlib.AbstractContextManager:
        if isinstance(self._module, torch.nn.parallel.DistributedDataParallel):
            return self._module.no_sync()
        return contextlib.nullcontext()


# ---- optimiser ------------------------------------------------------------
def _optimizer(encoder: Encoder, config: RunConfig, device: torch.device) -> torch.optim.AdamW:
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("no trainable parameters: raise trainable_layers or unfreeze the embeddings")
    groups = [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},  # biases, LayerNorm
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate, fused=device.type == "cuda")


def warmup_steps(config: RunConfig, total_steps: int) -> int:
    return math.ceil(config.warmup_ratio * total_steps)


# ---- checkpoints ----------------------------------------------------------
def _rng_states(device: torch.device) -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def _seed(seed: int, rank: int) -> None:
    """The run's seed; other ranks get their own torch stream so their dropout masks are independent."""
    torch.manual_seed(seed if rank == 0 else int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _restore_rng_states(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], device)
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def _save_checkpoint(directory: Path, encoder: Encoder, state: dict[str, Any]) -> None:
    """Write weights + trainer state to a temporary folder, then swap it into place."""
    temporary = directory.with_name(directory.name + ".tmp")
    previous = directory.with_name(directory.name + ".old")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    save_model(encoder, str(temporary / _WEIGHTS_FILE))
    torch.save(state, temporary / _STATE_FILE)
    (temporary / _STEP_FILE).write_text(json.dumps({"step": state["step"]}))
    if directory.exists():
        directory.rename(previous)
    temporary.rename(directory)
    shutil.rmtree(previous, ignore_errors=True)


def checkpoint_step(directory: Path) -> int | None:
    """The step of the checkpoint in ``directory`` (None when there is none), without loading it."""
    _finish_interrupted_swap(directory)
    step_file = Path(directory) / _STEP_FILE
    return int(json.loads(step_file.read_text())["step"]) if step_file.is_file() else None


def _finish_interrupted_swap(directory: Path) -> None:
    previous = directory.with_name(directory.name + ".old")
    if not directory.exists() and previous.exists():  # interrupted between the two renames
        previous.rename(directory)


def _load_checkpoint(directory: Path, encoder: Encoder, config: RunConfig) -> dict[str, Any] | None:
    if not directory.exists():
        return None
    # Our own file: it holds numpy and Python RNG states, which weights_only refuses.
    state = torch.load(directory / _STATE_FILE, map_location="cpu", weights_only=False)
    if state["run_id"] != config.run_id:
        raise CheckpointMismatchError(
            f"{directory} belongs to run {state['run_id']}, not {config.run_id}; "
            "delete it or use another working folder"
        )
    load_model(encoder, str(directory / _WEIGHTS_FILE), device=str(encoder.device))
    return state


# ---- the loop -------------------------------------------------------------
def train(
    config: RunConfig,
    training_set: TrainingSet,
    encoder: Encoder,
    workdir: Path,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_checkpoint: Callable[[int, Path], None] | None = None,
    context: DistContext | None = None,
) -> TrainResult:
    """Train ``encoder`` in place on ``training_set`` as ``config`` says; save it to ``workdir/model``.

    Resumes from ``workdir/checkpoint`` when present. Raises
    :class:`TrainingCancelled` (after checkpointing) when ``cancelled()``
    turns true on any rank, and :class:`NonFiniteLossError` on a NaN/inf loss.
    Under a several-process ``context`` every rank calls this with the same
    arguments and the same ``workdir`` (one node); ``progress`` and
    ``on_checkpoint`` are called on rank 0 only.
    """
    workdir = Path(workdir)
    device = torch.device(encoder.device)
    context = context or DistContext.single(device)
    check_divisible(config.batch_size, context.world_size)  # on every rank, before any collective
    _seed(config.seed, context.rank)

    sampler = BatchSampler(config, training_set)
    total = sampler.total_steps
    encoder.freeze(config.freeze_embeddings, config.trainable_layers)
    optimizer = _optimizer(encoder, config, device)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps(config, total), total)

    checkpoint_dir = workdir / CHECKPOINT_DIR
    if context.is_main:
        _finish_interrupted_swap(checkpoint_dir)
    context.barrier()
    step, losses, seconds_before = 0, [], 0.0
    state = _load_checkpoint(checkpoint_dir, encoder, config)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        if context.rank < len(state["rng"]):
            _restore_rng_states(state["rng"][context.rank], device)
        else:
            log.info("checkpoint was written by %d process(es); rank %d starts a fresh dropout stream",
                     len(state["rng"]), context.rank)
        step, losses, seconds_before = state["step"], list(state["losses"]), state["seconds"]
    backward = BatchBackward(
        encoder, RetrievalLoss.from_config(config), config.grad_cache_chunk, config.compile, context
    )
    started = time.perf_counter()

    def checkpoint() -> None:
        rng = context.gather(_rng_states(device))
        if not context.is_main:
            return
        _save_checkpoint(checkpoint_dir, encoder, {
            "run_id": config.run_id,
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "sampler": sampler.state_dict(),
            "rng": rng,
            "losses": losses,
            "seconds": seconds_before + time.perf_counter() - started,
        })
        if on_checkpoint is not None:
            on_checkpoint(step, checkpoint_dir)

    encoder.train()
    try:
        samples = 0
        saved_at = step
        while step < total:
            if context.any(cancelled is not None and cancelled()):
                checkpoint()
                raise TrainingCancelled(f"training cancelled at step {step} of {total}; checkpoint in {checkpoint_dir}")
            learning_rate = scheduler.get_last_lr()[0]
            batch = sampler.next_batch()
            loss = backward(shard_training_batch(batch, context.rank, context.world_size)).item()
            if context.any(not math.isfinite(loss)):
                raise NonFiniteLossError(
                    f"loss became {loss} at step {step + 1} (lr {learning_rate:g}): lower learning_rate or check the data"
                )
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], config.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(loss)
            samples += len(batch.pairs)
            if progress is not None and context.is_main:
                rate = samples / max(time.perf_counter() - started, 1e-9)
                progress(TrainProgress(step, total, loss, rate, learning_rate))
            if step % config.checkpoint_every == 0:
                checkpoint()
                saved_at = step
        if saved_at != step:
            checkpoint()
    finally:
        optimizer.zero_grad(set_to_none=True)
        encoder.eval()
    model_dir = workdir / MODEL_DIR
    if context.is_main:
        encoder.save(model_dir)
    context.barrier()
    return TrainResult(
        steps=step,
        final_loss=losses[-1] if losses else float("nan"),
        losses=losses,
        model_dir=model_dir,
        seconds=seconds_before + time.perf_counter() - started,
    )

"""The training loop: sampler -> encoder -> InfoNCE -> AdamW, resumable and cancellable.

It only uses the :class:`engine.model.Encoder` API (``tokenize``, ``forward``,
``prompt_length``, ``freeze``, ``save``), so it trains the embedded e5-small and
any HF or sentence-transformers encoder alike: every parameter of the encoder
(backbone and Dense head) is in the optimiser unless ``freeze`` froze it.

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
  checkpoints without loading them). They are replaced whole
  (:mod:`engine.folders`). A ``train()`` call that finds one resumes from it
  and reproduces the loss curve of an uninterrupted run.
- Progress and cancel go through a :class:`engine.state.RunState`: each step
  is reported, and a cancel request is honoured between steps, after a
  checkpoint, by raising :class:`engine.state.Cancelled`.
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import Tensor
from transformers import get_linear_schedule_with_warmup

from engine.distributed import DistContext, check_divisible, gather_with_grad, shard_training_batch
from engine.folders import recover_interrupted_swap, replaced_whole
from engine.losses import RetrievalLoss
from engine.model import Encoder, right_pad
from engine.sampling import Batch, BatchSampler
from engine.state import Cancelled, Progress, RunState, TaskState
from vocabulary.config import RunConfig
from vocabulary.records import TrainingSet

CHECKPOINT_DIR = "checkpoint"
MODEL_DIR = "model"
_WEIGHTS_FILE = "model.safetensors"
_STATE_FILE = "trainer.pt"
_STEP_FILE = "step.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    steps: int
    final_loss: float
    losses: list[float]
    model_dir: Path
    seconds: float


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
        pinned = device.type == "cuda"
        tensors = right_pad(rows, self._pad)
        if pinned:
            tensors = tuple(t.pin_memory() for t in tensors)
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
        self._prompt_lengths = {kind: encoder.prompt_length(kind) for kind in ("query", "passage")}
        self._module = self.context.wrap(encoder)
        self._forward: Callable[[Tensor, Tensor, int], Tensor] = (
            torch.compile(self._module, dynamic=True) if compile_model else self._module
        )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self, batch: Batch) -> Tensor:
        """Backpropagate the batch's loss; return it (detached, still on the device)."""
        texts = _batch_texts(batch, self.loss.needs_translations)
        columns = [self.tokens.rows(column, kind) for column, kind in texts]
        skips = [self._prompt_lengths[kind] for _, kind in texts]
        if self.chunk_size is None:
            with self._autocast():
                embeddings = [self._forward(*self.tokens.collate(rows, self.device), skip)
                              for rows, skip in zip(columns, skips)]
            loss = self.loss(*(gather_with_grad(e) for e in embeddings))
            loss.backward()
            return loss.detach()
        return self._grad_cache(columns, skips, self.chunk_size)

    def _grad_cache(self, columns: list[list[np.ndarray]], skips: list[int], size: int) -> Tensor:
        """``skips``: each column's prompt length (tokens pooling leaves out)."""
        chunks = [
            [(*self.tokens.collate(rows[i : i + size], self.device), skip) for i in range(0, len(rows), size)]
            for rows, skip in zip(columns, skips)
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
    """Write weights + trainer state into a work folder that then replaces ``directory`` whole."""
    with replaced_whole(directory) as work:
        save_model(encoder, str(work / _WEIGHTS_FILE))
        torch.save(state, work / _STATE_FILE)
        (work / _STEP_FILE).write_text(json.dumps({"step": state["step"]}))


def checkpoint_step(directory: Path) -> int | None:
    """The step of the checkpoint in ``directory`` (None when there is none), without loading it."""
    recover_interrupted_swap(Path(directory))
    step_file = Path(directory) / _STEP_FILE
    return int(json.loads(step_file.read_text())["step"]) if step_file.is_file() else None


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
@dataclass
class _Training:
    """One run's optimiser, schedule, sampler and position: what a checkpoint saves and restores."""

    config: RunConfig
    encoder: Encoder
    sampler: BatchSampler
    optimizer: torch.optim.AdamW
    scheduler: Any
    context: DistContext
    checkpoint_dir: Path
    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds_before: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    @property
    def total(self) -> int:
        return self.sampler.total_steps

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def resume(self) -> None:
        """Continue from the workdir's checkpoint, if there is one (it must be this run's)."""
        if self.context.is_main:
            recover_interrupted_swap(self.checkpoint_dir)
        self.context.barrier()
        state = _load_checkpoint(self.checkpoint_dir, self.encoder, self.config)
        if state is None:
            return
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        rank = self.context.rank
        if rank < len(state["rng"]):
            _restore_rng_states(state["rng"][rank], self.encoder.device)
        else:
            log.info("checkpoint was written by %d process(es); rank %d starts a fresh dropout stream",
                     len(state["rng"]), rank)
        self.step, self.losses, self.seconds_before = state["step"], list(state["losses"]), state["seconds"]

    def checkpoint(self, on_checkpoint: Callable[[int, Path], None] | None) -> None:
        """Save on rank 0 (every rank's RNG state is gathered first); then tell ``on_checkpoint``."""
        rng = self.context.gather(_rng_states(self.encoder.device))
        if not self.context.is_main:
            return
        _save_checkpoint(self.checkpoint_dir, self.encoder, {
            "run_id": self.config.run_id,
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng,
            "losses": self.losses,
            "seconds": self.seconds,
        })
        if on_checkpoint is not None:
            on_checkpoint(self.step, self.checkpoint_dir)

    def take_step(self, backward: "BatchBackward") -> tuple[float, float, int]:
        """One optimiser step on the next batch: (loss, learning rate it used, pairs in the batch)."""
        learning_rate = self.scheduler.get_last_lr()[0]
        batch = self.sampler.next_batch()
        context = self.context
        loss = backward(shard_training_batch(batch, context.rank, context.world_size)).item()
        if context.any(not math.isfinite(loss)):
            raise NonFiniteLossError(
                f"loss became {loss} at step {self.step + 1} (lr {learning_rate:g}): lower learning_rate or check the data"
            )
        parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(parameters, self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.losses.append(loss)
        return loss, learning_rate, len(batch.pairs)


def _prepare(config: RunConfig, training_set: TrainingSet, encoder: Encoder, workdir: Path,
             context: DistContext) -> _Training:
    """Seed, sampler, frozen layers, optimiser and schedule of a run (before any checkpoint is read)."""
    device = torch.device(encoder.device)
    check_divisible(config.batch_size, context.world_size)  # on every rank, before any collective
    _seed(config.seed, context.rank)
    sampler = BatchSampler(config, training_set)
    encoder.freeze(config.freeze_embeddings, config.trainable_layers)
    optimizer = _optimizer(encoder, config, device)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps(config, sampler.total_steps), sampler.total_steps)
    return _Training(config, encoder, sampler, optimizer, scheduler, context, workdir / CHECKPOINT_DIR)


def train(
    config: RunConfig,
    training_set: TrainingSet,
    encoder: Encoder,
    workdir: Path,
    *,
    state: RunState | None = None,
    on_checkpoint: Callable[[int, Path], None] | None = None,
    context: DistContext | None = None,
) -> TrainResult:
    """Train ``encoder`` in place on ``training_set`` as ``config`` says; save it to ``workdir/model``.

    Resumes from ``workdir/checkpoint`` when present. Raises
    :class:`engine.state.Cancelled` (after checkpointing) when the state asks
    to stop on any rank, and :class:`NonFiniteLossError` on a NaN/inf loss.
    Under a several-process ``context`` every rank calls this with the same
    arguments and the same ``workdir`` (one node); ``state.report`` and
    ``on_checkpoint`` are called on rank 0 only.
    """
    workdir = Path(workdir)
    state = state or TaskState()
    context = context or DistContext.single(torch.device(encoder.device))
    run = _prepare(config, training_set, encoder, workdir, context)
    run.resume()
    backward = BatchBackward(
        encoder, RetrievalLoss.from_config(config), config.grad_cache_chunk, config.compile, context
    )
    encoder.train()
    try:
        _loop(run, backward, state, on_checkpoint)
    finally:
        run.optimizer.zero_grad(set_to_none=True)
        encoder.eval()
    model_dir = workdir / MODEL_DIR
    if context.is_main:
        encoder.save(model_dir)
    context.barrier()
    return TrainResult(
        steps=run.step,
        final_loss=run.losses[-1] if run.losses else float("nan"),
        losses=run.losses,
        model_dir=model_dir,
        seconds=run.seconds,
    )


def _loop(run: _Training, backward: BatchBackward, state: RunState,
          on_checkpoint: Callable[[int, Path], None] | None) -> None:
    """Step until the budget is spent, reporting each step and checkpointing every ``checkpoint_every``."""
    context, total = run.context, run.total
    samples, saved_at, started = 0, run.step, time.perf_counter()
    while run.step < total:
        if context.any(state.cancelled()):
            run.checkpoint(on_checkpoint)
            raise Cancelled(f"training cancelled at step {run.step} of {total}; checkpoint in {run.checkpoint_dir}")
        loss, learning_rate, pairs = run.take_step(backward)
        samples += pairs
        if context.is_main:
            rate = samples / max(time.perf_counter() - started, 1e-9)
            state.report(Progress("training", run.step / total, run.step, total, loss, learning_rate, rate))
        if run.step % run.config.checkpoint_every == 0:
            run.checkpoint(on_checkpoint)
            saved_at = run.step
    if saved_at != run.step:
        run.checkpoint(on_checkpoint)

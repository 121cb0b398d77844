"""The training loop: sampler -> encoder -> InfoNCE -> AdamW, resumable and cancellable.

It only uses the :class:`engine.model.Encoder` API (``tokenize``, ``forward``,
``prompt_length``, ``freeze``, ``save``), so it trains the embedded e5-small and
any HF or sentence-transformers encoder alike: every parameter of the encoder
(backbone and Dense head) is in the optimiser unless ``freeze`` froze it.

- Optimiser: AdamW (weight decay on matrices only, the usual HF/sentence-transformers
  split; fused on CUDA), gradient clipping, and a linear warm-up then linear decay
  that never runs a step at learning rate 0 (:func:`learning_rate_factor`).
- Negatives: the loss sees the whole (global) batch's passage ids, so a copy of a
  row's positive is never its negative, and the pairs' hard negatives where the
  source has them (see :mod:`engine.losses`).
- Model selection (:mod:`engine.selection`): with ``dev_every`` the loss on fixed
  dev batches is evaluated and reported; ``select: best_dev`` keeps the weights
  of the lowest one, and ``patience`` stops the run early.
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
- Checkpoints (``workdir/checkpoint``) hold no pickle, since they may come
  from a shared mirror that others can write: ``model.safetensors`` holds
  every weight (only the trainable ones when part of the model is frozen: the
  rest is the base model's), ``trainer.safetensors`` the optimiser's and the
  RNG states' tensors, ``trainer.json`` the rest of the trainer state (scheduler, sampler
  and its numpy bit-generator state, every rank's numpy and Python RNG
  states, step, loss history; tensors referenced by name), and ``run.json``
  the run id and step, which is read and checked before anything else (and
  lets a mirror compare checkpoints without loading them). They are replaced
  whole (:mod:`engine.folders`). A ``train()`` call that finds one resumes
  from it and reproduces the loss curve of an uninterrupted run.
- The model (``workdir/model``): a full HF / sentence-transformers folder, or
  for a run with ``trainable_layers`` only the trained tensors and a reference
  to the base model (:mod:`engine.compact`; ``load_encoder`` reads either).
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
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR

from engine.compact import save_trained
from engine.disk_full import disk_full_as_error
from engine.distributed import DistContext, check_divisible, gather_with_grad, shard_training_batch
from engine.folders import recover_interrupted_swap, replaced_whole
from engine.losses import PassageIds, RetrievalLoss
from engine.model import Encoder
from engine.padding import right_pad
from engine.sampling import Batch, BatchSampler, dev_batches
from engine.selection import ModelSelection
from engine.state import Cancelled, Progress, RunState, TaskState
from vocabulary.batching import batch_plan
from vocabulary.config import RunConfig
from vocabulary.records import TrainingSet

CHECKPOINT_DIR = "checkpoint"
MODEL_DIR = "model"
_WEIGHTS_FILE = "model.safetensors"
_TENSORS_FILE = "trainer.safetensors"
_STATE_FILE = "trainer.json"
_RUN_FILE = "run.json"
#: The pickled trainer state of hybridscale 0.1; never read (unpickling a file can run any code).
_LEGACY_STATE_FILE = "trainer.pt"
#: How trainer.json points at a tensor of trainer.safetensors.
_TENSOR_KEY = "__tensor__"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a finished training did; ``selected_step`` is the step whose weights were kept, ``total_steps`` the
    budget's steps (more than ``steps`` after an early stop)."""

    steps: int
    final_loss: float
    losses: list[float]
    model_dir: Path
    seconds: float
    dev_losses: list[tuple[int, float]] = field(default_factory=list)
    selected_step: int = 0
    total_steps: int = 0


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the optimiser was not stepped with it."""


class CheckpointMismatchError(ValueError):
    """The workdir's checkpoint belongs to another run's settings."""


class CheckpointError(ValueError):
    """The workdir's checkpoint is incomplete, damaged, or in a format that is not read any more."""


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
    """The text columns of a batch, in the order :meth:`BatchBackward._loss` takes them."""
    columns = [(batch.queries, "query"), (batch.passages, "passage")]
    if with_translations:
        columns.append((list(batch.translations), "passage"))
    if batch.negatives:
        columns.append((batch.negatives, "passage"))
    return columns


def _passage_ids(batch: Batch) -> PassageIds:
    return PassageIds(tuple(batch.passage_ids), tuple(batch.negative_ids), tuple(batch.translation_ids))


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
    The batch given is the global one: under a several-process ``context``
    this rank embeds its slice, the encoder runs under DDP and the loss sees
    every rank's embeddings (and the global batch's passage ids).
    """

    def __init__(
        self, encoder: Encoder, loss: RetrievalLoss, chunk_size: int | None = None, compile_model: bool = False,
        context: DistContext | None = None,
    ):
        self.device = torch.device(encoder.device)
        self.context = context or DistContext.single(self.device)
        self.encoder = encoder
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
        """Backpropagate the global batch's loss; return it (detached, still on the device)."""
        local = shard_training_batch(batch, self.context.rank, self.context.world_size)
        columns, skips = self._columns(local)
        ids = _passage_ids(batch)
        if self.chunk_size is None:
            with self._autocast():
                embeddings = [self._forward(*self.tokens.collate(rows, self.device), skip)
                              for rows, skip in zip(columns, skips)]
            loss = self._loss([gather_with_grad(e) for e in embeddings], ids)
            loss.backward()
            return loss.detach()
        return self._grad_cache(columns, skips, self.chunk_size, ids)

    @torch.no_grad()
    def loss_only(self, batch: Batch) -> float:
        """The loss of the whole batch on this process, without gradients or DDP (the dev loss)."""
        columns, skips = self._columns(batch)
        with self._autocast():
            embeddings = [self.encoder(*self.tokens.collate(rows, self.device), skip)
                          for rows, skip in zip(columns, skips)]
        return self._loss(embeddings, _passage_ids(batch)).item()

    def _columns(self, batch: Batch) -> tuple[list[list[np.ndarray]], list[int]]:
        """The batch's token rows per text column, and each column's prompt length (tokens pooling skips)."""
        texts = _batch_texts(batch, self.loss.needs_translations)
        return ([self.tokens.rows(column, kind) for column, kind in texts],
                [self._prompt_lengths[kind] for _, kind in texts])

    def _loss(self, embeddings: list[Tensor], ids: PassageIds) -> Tensor:
        """The loss of the columns of :func:`_batch_texts`: queries, passages, [translations], [negatives]."""
        queries, passages, *rest = embeddings
        translations = rest.pop(0) if self.loss.needs_translations else None
        negatives = rest.pop(0) if rest else None
        return self.loss(queries, passages, translations, negatives=negatives, ids=ids)

    def _grad_cache(self, columns: list[list[np.ndarray]], skips: list[int], size: int, ids: PassageIds) -> Tensor:
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
        loss = self._loss(leaves, ids)
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


def learning_rate_factor(step: int, total: int, warmup: int) -> float:
    """The share of the peak learning rate that 1-based ``step`` of ``total`` uses; never 0.

    The peak is step P = max(warmup, 1): a linear warm-up ``step / P`` before it
    (step 1 at 1/P of the peak, not at 0 as transformers' schedule has it),
    then a linear decay ``(total - step + 1) / (total - P + 1)`` down to
    1/(total - P + 1) of the peak at the last step.
    """
    peak = max(warmup, 1)
    if step <= peak:
        return step / peak
    return (total - step + 1) / (total - peak + 1)


def _schedule(optimizer: torch.optim.Optimizer, total: int, warmup: int) -> LambdaLR:
    """:func:`learning_rate_factor` as a scheduler (its state is the step count: plain values)."""
    return LambdaLR(optimizer, lambda index: learning_rate_factor(index + 1, total, warmup))


# ---- checkpoints ----------------------------------------------------------
def _rng_states(device: torch.device) -> dict[str, Any]:
    """This process's RNG states as tensors and JSON values (no numpy arrays, no tuples)."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": numpy_state["state"]["key"].tolist(),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
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
    numpy_state = states["numpy"]
    np.random.set_state({
        "bit_generator": numpy_state["bit_generator"],
        "state": {"key": np.array(numpy_state["key"], dtype=np.uint32), "pos": numpy_state["pos"]},
        "has_gauss": numpy_state["has_gauss"],
        "gauss": numpy_state["gauss"],
    })
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _split_tensors(value: Any, tensors: dict[str, Tensor], key: str) -> Any:
    """A JSON-able copy of ``value`` whose tensors are moved into ``tensors``, each named by its place."""
    if isinstance(value, Tensor):
        tensors[key] = value.detach().cpu().contiguous()
        return {_TENSOR_KEY: key}
    if isinstance(value, dict):
        return {str(k): _split_tensors(v, tensors, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_tensors(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"trainer state {key}: a {type(value).__name__} has no place in a checkpoint")


def _join_tensors(value: Any, tensors: dict[str, Tensor]) -> Any:
    """The inverse of :func:`_split_tensors` (lists stay lists; the readers convert what they need)."""
    if isinstance(value, dict):
        if set(value) == {_TENSOR_KEY}:
            return tensors[value[_TENSOR_KEY]]
        return {k: _join_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_tensors(v, tensors) for v in value]
    return value


def _nbytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _trained_tensors(encoder: Encoder) -> dict[str, Tensor] | None:
    """The trainable tensors when part of the encoder is frozen (the rest is the base model's, loaded again
    on resume, so a checkpoint need not repeat it); None when everything trains."""
    trainable = {name for name, p in encoder.named_parameters() if p.requires_grad}
    state = encoder.state_dict()
    if trainable >= {name for name, _ in encoder.named_parameters()}:
        return None
    return {name: state[name].detach().cpu().contiguous() for name in sorted(trainable)}


def _save_checkpoint(directory: Path, encoder: Encoder, state: dict[str, Any]) -> None:
    """Write weights + trainer state into a work folder that then replaces ``directory`` whole.

    A full disk raises :class:`engine.disk_full.DiskFullError` with the size
    the checkpoint needs; the work folder is gone by then.
    """
    tensors: dict[str, Tensor] = {}
    document = _split_tensors(state, tensors, "state")
    trained = _trained_tensors(encoder)
    needed = _nbytes(tensors.values()) + _nbytes((trained or encoder.state_dict()).values())
    with disk_full_as_error(directory.parent, needed), replaced_whole(directory) as work:
        if trained is None:
            save_model(encoder, str(work / _WEIGHTS_FILE))
        else:
            save_file(trained, str(work / _WEIGHTS_FILE))
        save_file(tensors, str(work / _TENSORS_FILE))
        (work / _STATE_FILE).write_text(json.dumps(document), encoding="utf-8")
        (work / _RUN_FILE).write_text(json.dumps({"run_id": state["run_id"], "step": state["step"]}), encoding="utf-8")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(_damaged(path.parent, f"{path.name}: {exc}")) from None


def _damaged(directory: Path, what: str) -> str:
    return f"checkpoint {directory} is incomplete or damaged ({what}): delete it to train the run from the start"


def checkpoint_step(directory: Path) -> int | None:
    """The step of the checkpoint in ``directory`` (None when there is none), without loading it."""
    recover_interrupted_swap(Path(directory))
    run_file = Path(directory) / _RUN_FILE
    return int(_read_json(run_file)["step"]) if run_file.is_file() else None


def _load_checkpoint(directory: Path, encoder: Encoder, config: RunConfig) -> dict[str, Any] | None:
    """The trainer state (weights loaded into ``encoder``), or None without a checkpoint.

    ``run.json`` is read and its run id checked first: nothing else of a
    checkpoint that is not this run's is opened.
    """
    if not directory.exists():
        return None
    if not (directory / _RUN_FILE).is_file() and (directory / _LEGACY_STATE_FILE).is_file():
        raise CheckpointError(
            f"checkpoint {directory} is in the pickled format of hybridscale 0.1, which is not read (unpickling a "
            "file can run any code): delete it to train the run from the start"
        )
    owner = _read_json(directory / _RUN_FILE)
    if not isinstance(owner, dict) or owner.get("run_id") != config.run_id:
        found = owner.get("run_id") if isinstance(owner, dict) else owner
        raise CheckpointMismatchError(
            f"{directory} belongs to run {found}, not {config.run_id}; delete it or use another working folder"
        )
    document = _read_json(directory / _STATE_FILE)
    try:
        state = _join_tensors(document, load_file(str(directory / _TENSORS_FILE), device="cpu"))
        trained = _trained_tensors(encoder)
        if trained is None:
            load_model(encoder, str(directory / _WEIGHTS_FILE), device=str(encoder.device))
        else:
            weights = load_file(str(directory / _WEIGHTS_FILE), device=str(encoder.device))
            if set(weights) != set(trained):
                raise KeyError(f"it holds other tensors than the {len(trained)} this run trains")
            encoder.load_state_dict(weights, strict=False)
    except (OSError, KeyError, RuntimeError, SafetensorError) as exc:
        raise CheckpointError(_damaged(directory, f"{type(exc).__name__}: {exc}")) from None
    return state


def _optimizer_state(saved: dict[str, Any]) -> dict[str, Any]:
    """The optimiser state as ``load_state_dict`` wants it: JSON made its per-parameter keys strings."""
    return {"state": {int(k): v for k, v in saved["state"].items()}, "param_groups": saved["param_groups"]}


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
    selection: ModelSelection
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
        self.optimizer.load_state_dict(_optimizer_state(state["optimizer"]))
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        self.selection.load_state_dict(state.get("selection"))
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
            "selection": self.selection.state_dict(),
        })
        self.selection.prune()
        if on_checkpoint is not None:
            on_checkpoint(self.step, self.checkpoint_dir)

    def take_step(self, backward: "BatchBackward") -> tuple[float, float, int]:
        """One optimiser step on the next batch: (loss, learning rate it used, pairs in the batch)."""
        learning_rate = self.scheduler.get_last_lr()[0]
        batch = self.sampler.next_batch()
        context = self.context
        loss = backward(batch).item()
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


def _prepare(config: RunConfig, training_set: TrainingSet, dev_set: TrainingSet | None, encoder: Encoder,
             workdir: Path, context: DistContext) -> _Training:
    """Seed, samplers, frozen layers, optimiser and schedule of a run (before any checkpoint is read)."""
    device = torch.device(encoder.device)
    check_divisible(config.batch_size, context.world_size)  # on every rank, before any collective
    _seed(config.seed, context.rank)
    plan = batch_plan(config)
    sampler = BatchSampler(plan, training_set)
    if config.dev_every is not None and dev_set is None:
        raise ValueError(f"{config.label} asks for a dev loss every {config.dev_every} steps, but no dev set was given")
    batches = dev_batches(plan, dev_set) if config.dev_every is not None else []
    selection = ModelSelection(config, batches, workdir, context.is_main)
    encoder.freeze(config.freeze_embeddings, config.trainable_layers)
    optimizer = _optimizer(encoder, config, device)
    scheduler = _schedule(optimizer, sampler.total_steps, warmup_steps(config, sampler.total_steps))
    return _Training(config, encoder, sampler, optimizer, scheduler, context, workdir / CHECKPOINT_DIR, selection)


def train(
    config: RunConfig,
    training_set: TrainingSet,
    encoder: Encoder,
    workdir: Path,
    *,
    dev_set: TrainingSet | None = None,
    state: RunState | None = None,
    on_checkpoint: Callable[[int, Path], None] | None = None,
    context: DistContext | None = None,
    frozen_cache_dir: Path | None = None,
) -> TrainResult:
    """Train ``encoder`` in place on ``training_set`` as ``config`` says; save it to ``workdir/model``.

    ``dev_set`` (held-out groups of the training source) is needed when the
    config has ``dev_every``; with ``select: best_dev`` the saved model is the
    one with the lowest dev loss. Resumes from ``workdir/checkpoint`` when present. Raises
    :class:`engine.state.Cancelled` (after checkpointing) when the state asks
    to stop on any rank, and :class:`NonFiniteLossError` on a NaN/inf loss.
    Under a several-process ``context`` every rank calls this with the same
    arguments and the same ``workdir`` (one node); ``state.report`` and
    ``on_checkpoint`` are called on rank 0 only. With ``frozen_cache`` the
    encoder keeps serving its frozen layers from the cache in
    ``frozen_cache_dir`` (memory when None) after training, so evaluating it
    reuses the cache too.
    """
    workdir = Path(workdir)
    state = state or TaskState()
    context = context or DistContext.single(torch.device(encoder.device))
    run = _prepare(config, training_set, dev_set, encoder, workdir, context)
    if config.frozen_cache:
        encoder.cache_frozen_prefix(config.trainable_layers, frozen_cache_dir)
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
        if encoder.frozen_prefix is not None:
            encoder.frozen_prefix.flush()
    context.barrier()  # rank 0 may have written the best weights at the last step
    selected = run.selection.restore_best(encoder) or run.step
    model_dir = workdir / MODEL_DIR
    if context.is_main:
        if config.trainable_layers is not None:  # the frozen rest is the base model's: keep a reference to it
            save_trained(encoder, model_dir)
        else:
            encoder.save(model_dir)
    context.barrier()
    return TrainResult(
        steps=run.step,
        final_loss=run.losses[-1] if run.losses else float("nan"),
        losses=run.losses,
        model_dir=model_dir,
        seconds=run.seconds,
        dev_losses=list(run.selection.history),
        selected_step=selected,
        total_steps=run.total,
    )


def _loop(run: _Training, backward: BatchBackward, state: RunState,
          on_checkpoint: Callable[[int, Path], None] | None) -> None:
    """Step until the budget is spent, reporting each step and checkpointing every ``checkpoint_every``."""
    context, total = run.context, run.total
    samples, saved_at, started = 0, run.step, time.perf_counter()
    finished = run.step >= total or run.selection.should_stop()  # a resumed run that had stopped stays stopped
    if run.losses and finished and context.is_main:  # resumed with no step left: the last one's report
        state.report(Progress("training", 1.0, run.step, total, run.losses[-1], dev_loss=run.selection.latest))
    while run.step < total and not run.selection.should_stop():
        if context.any(state.cancelled()):
            run.checkpoint(on_checkpoint)
            raise Cancelled(f"training cancelled at step {run.step} of {total}; checkpoint in {run.checkpoint_dir}")
        loss, learning_rate, pairs = run.take_step(backward)
        samples += pairs
        if run.selection.due(run.step, total):
            run.selection.evaluate(run.step, run.encoder, backward.loss_only)
        if context.is_main:
            rate = samples / max(time.perf_counter() - started, 1e-9)
            state.report(Progress("training", run.step / total, run.step, total, loss, learning_rate, rate,
                                  dev_loss=run.selection.latest))
        if run.step % run.config.checkpoint_every == 0:
            run.checkpoint(on_checkpoint)
            saved_at = run.step
        if run.selection.should_stop():  # every rank holds the same dev losses, so all stop here
            log.info("early stop at step %d of %d: no lower dev loss in %d evaluations", run.step, total,
                     run.config.patience)
    if saved_at != run.step:
        run.checkpoint(on_checkpoint)

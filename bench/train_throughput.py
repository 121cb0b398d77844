"""Training throughput: our trainer vs sentence-transformers, same model, data and shapes.

    python bench/train_throughput.py --model tiny: --batch-size 32 --max-length 64 --steps 10
    python bench/train_throughput.py --model embedded:e5-small --batch-size 128 --max-length 128 \
        --steps 60 --device cuda

The peer is ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss``
(scale = 1 / temperature) and ``BatchSamplers.NO_DUPLICATES``, starting from
the same weights (our encoder saved as a sentence-transformers folder) and
training on exactly the (query, passage) pairs of our sampler's batches, with
the E5 prefixes written into the texts. Both use AdamW, the same learning
rate, warmup, weight decay, clipping and bf16 autocast on CUDA.

Each trainer runs in its own spawned process, so peak memory (max RSS on CPU,
``torch.cuda.max_memory_allocated`` on GPU) is its own. Throughput is timed
from the end of step 1 to the end of the last step (step 1 pays for warm-up
and, with --compile, compilation).

Model FLOP utilisation (GPU only), per (query, passage) pair:

    FLOPs = sum over its two texts of  6 * P * n  +  12 * layers * hidden * n^2

with n the text's token count (no padding), P the parameters of the
backbone's Linear layers (embedding tables excluded: they are lookups), the
second term the attention score and value matmuls (2 matmuls x 2 FLOPs per
multiply-add x 3 for forward + backward). MFU = pairs/s x FLOPs per pair /
peak, with the H100 bf16 dense peak of 989 TFLOP/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

H100_BF16_PEAK_FLOPS = 989e12
LANGUAGES = ("ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh")


@dataclasses.dataclass(frozen=True)
class Measurement:
    name: str
    samples_per_second: float
    peak_memory_mib: float
    memory_kind: str
    mfu: float | None


def _config(args: argparse.Namespace):
    from vocabulary.config import RunConfig

    return RunConfig(
        model=args.model, strategy="hybrid", alpha=0.5, train_size=args.train_size, train_languages=LANGUAGES,
        batch_size=args.batch_size, max_length=args.max_length, max_steps=args.steps, epochs=100.0,
        query_prefix="query: ", passage_prefix="passage: ",  # spelled out: the peer gets the same texts
        learning_rate=3e-5, warmup_ratio=0.1, checkpoint_every=10**9, compile=args.compile,
        freeze_embeddings=args.freeze_embeddings, trainable_layers=args.trainable_layers,
    )


def _training_set():
    from engine.data import load_training_set

    return load_training_set("xquad", LANGUAGES, "train")


def _load(args: argparse.Namespace):
    from engine.model import load_encoder

    return load_encoder(args.model, _config(args).encoder_settings, device=args.device)


def _pairs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The prefixed (query, passage) texts of our sampler's first ``steps`` batches."""
    from engine.sampling import BatchSampler

    config = _config(args)
    sampler = BatchSampler(config, _training_set())
    batches = [sampler.next_batch() for _ in range(args.steps)]
    return [(config.query_prefix + p.query, config.passage_prefix + p.passage) for b in batches for p in b.pairs]


def _flops_per_pair(encoder, pairs: list[tuple[str, str]], max_length: int) -> float:
    import torch

    linear = sum(m.weight.numel() for m in encoder.backbone.modules() if isinstance(m, torch.nn.Linear))
    tokenizer = encoder.tokenizer
    total = 0.0
    for query, passage in pairs:
        for text in (query, passage):
            n = len(tokenizer(text, truncation=True, max_length=max_length)["input_ids"])
            total += 6 * linear * n + 12 * encoder.num_layers * encoder.hidden_size * n * n
    return total / len(pairs)


def _memory(device: str) -> tuple[float, str]:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20, "cuda max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max RSS"


def _finish(name: str, args: argparse.Namespace, stamps: list[float], flops_per_pair: float) -> Measurement:
    rate = (len(stamps) - 1) * args.batch_size / (stamps[-1] - stamps[0])
    memory, kind = _memory(args.device)
    mfu = rate * flops_per_pair / H100_BF16_PEAK_FLOPS if args.device.startswith("cuda") else None
    return Measurement(name, rate, memory, kind, mfu)


def run_ours(args: argparse.Namespace) -> Measurement:
    import torch

    from engine.state import TaskState
    from engine.train import train

    encoder = _load(args)
    flops = _flops_per_pair(encoder, _pairs(args), args.max_length)
    stamps: list[float] = []

    def on_progress(_progress) -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as workdir:
        train(_config(args), _training_set(), encoder, Path(workdir), state=TaskState(on_progress))
    return _finish("hybridscale", args, stamps, flops)


def run_sentence_transformers(args: argparse.Namespace) -> Measurement:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers import TrainerCallback

    config = _config(args)
    encoder = _load(args)
    pairs = _pairs(args)
    flops = _flops_per_pair(encoder, pairs, args.max_length)
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, *_args, **_kwargs) -> None:
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as folder:
        encoder.save(Path(folder) / "model")
        del encoder
        model = SentenceTransformer(str(Path(folder) / "model"), device=args.device)
        model.max_seq_length = args.max_length
        dataset = Dataset.from_dict({"anchor": [q for q, _ in pairs], "positive": [p for _, p in pairs]})
        training_args = SentenceTransformerTrainingArguments(
            output_dir=str(Path(folder) / "out"), per_device_train_batch_size=args.batch_size,
            max_steps=args.steps, learning_rate=config.learning_rate, warmup_ratio=config.warmup_ratio,
            weight_decay=config.weight_decay, max_grad_norm=config.grad_clip,
            bf16=args.device.startswith("cuda"), batch_sampler=BatchSamplers.NO_DUPLICATES,
            save_strategy="no", report_to="none", logging_steps=10**9, seed=config.seed,
            use_cpu=not args.device.startswith("cuda"), torch_compile=args.compile,
            optim="adamw_torch_fused" if args.device.startswith("cuda") else "adamw_torch",
            disable_tqdm=True,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=training_args, train_dataset=dataset,
            loss=MultipleNegativesRankingLoss(model, scale=1.0 / config.temperature), callbacks=[Stamp()],
        )
        trainer.train()
    return _finish("sentence-transformers", args, stamps, flops)


def _in_own_process(function, args: argparse.Namespace) -> Measurement:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, args).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny:", help="tiny: (smoke test) or embedded:e5-small (the real one)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps + 1 warm-up step")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--train-size", type=int, default=800, help="question groups to sample from")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--freeze-embeddings", action="store_true",
                        help="ours only (the peer has no such switch): keep the word embeddings fixed")
    parser.add_argument("--trainable-layers", type=int, default=None, metavar="N",
                        help="ours only: train just the top N transformer layers")
    args = parser.parse_args(argv)
    ours_only = args.freeze_embeddings or args.trainable_layers is not None
    if args.steps < 2:
        parser.error("--steps must be at least 2 (step 1 is the untimed warm-up)")

    print(f"model {args.model}, batch {args.batch_size}, max length {args.max_length}, "
          f"{args.steps} steps, device {args.device}, compile {args.compile}", flush=True)
    ours = _in_own_process(run_ours, args)
    if ours_only:  # a setting the peer cannot match: no ratio
        print(f"{ours.name:>22}: {ours.samples_per_second:8.2f} pairs/s, "
              f"{args.batch_size / ours.samples_per_second:.2f} s/step, peak {ours.peak_memory_mib:8.0f} MiB")
        return 0
    peer = _in_own_process(run_sentence_transformers, args)
    for m in (ours, peer):
        mfu = f", MFU {100 * m.mfu:.1f}%" if m.mfu is not None else ""
        print(f"{m.name:>22}: {m.samples_per_second:8.2f} pairs/s, peak {m.peak_memory_mib:8.0f} MiB ({m.memory_kind}){mfu}")
    print(f"{'ratio (ours / peer)':>22}: {ours.samples_per_second / peer.samples_per_second:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

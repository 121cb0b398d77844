"""Data-parallel scaling of the trainer: training throughput with 1, 2, ... N processes under torchrun.

    python bench/ddp_scaling.py --nproc 1 2 4 8 --model embedded:e5-small --batch-size 256 \
        --max-length 128 --steps 40 --device cuda
    python bench/ddp_scaling.py --nproc 1 2 --model tiny: --batch-size 32 --max-length 64 --steps 12 --device cpu

For each N this script starts itself under ``torchrun --standalone
--nproc-per-node N`` (the launcher ``hybridscale worker --nproc-per-node N``
uses) and trains a hybrid run through :func:`engine.train.train` with the
:class:`engine.distributed.DistContext` torchrun gives: DDP, every rank's share
of the global batch, negatives gathered across ranks. Rank 0 times steps 2..S
(step 1 pays for warm-up); on CUDA it synchronises first.

- ``--scaling strong`` (default) keeps the GLOBAL batch: the same run, its
  identity unchanged, on more GPUs. Efficiency(N) = pairs/s(N) / (N x pairs/s(1)).
- ``--scaling weak`` keeps the per-process batch (the global batch grows with
  N, a different run for each N), the usual data-parallel throughput figure.

On CPU every process gets one thread (OMP_NUM_THREADS=1, N processes on N
cores) and talks gloo over loopback. Such numbers only prove that the code
path works: they say NOTHING about GPU scaling, where NCCL over NVLink, the
GPU's utilisation at the per-GPU batch and the all-reduce of ~118 M
parameters decide the result. Measure on the GPUs you will use.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh")


def _global_batch(args: argparse.Namespace, nproc: int) -> int:
    return args.batch_size * nproc if args.scaling == "weak" else args.batch_size


def child(args: argparse.Namespace) -> None:
    """One rank of one measurement (started by torchrun); rank 0 writes the result file."""
    sys.path.insert(0, str(REPO_ROOT))
    import torch

    from engine.data import load_training_set
    from engine.distributed import init_from_env, shutdown
    from engine.loading import load_encoder
    from engine.state import TaskState
    from engine.train import train
    from vocabulary.config import RunConfig

    context = init_from_env(args.device)
    config = RunConfig(
        model=args.model, strategy="hybrid", alpha=0.5, train_size=args.train_size, train_languages=LANGUAGES,
        batch_size=_global_batch(args, context.world_size), max_length=args.max_length, budget="steps",
        steps=args.steps, learning_rate=3e-5, warmup_ratio=0.1, checkpoint_every=10**9,
    )
    encoder = load_encoder(config.model, config.encoder_settings, device=context.device)
    stamps: list[float] = []

    def on_progress(_progress) -> None:
        if context.device.type == "cuda":
            torch.cuda.synchronize(context.device)
        stamps.append(time.perf_counter())

    try:
        with tempfile.TemporaryDirectory() as workdir:
            train(config, load_training_set("xquad", LANGUAGES, "train"), encoder, Path(workdir),
                  state=TaskState(on_progress), context=context)
    finally:
        shutdown()
    if context.is_main:
        rate = (len(stamps) - 1) * config.batch_size / (stamps[-1] - stamps[0])
        Path(args.result).write_text(json.dumps({"nproc": context.world_size, "global_batch": config.batch_size,
                                                 "pairs_per_second": rate}))


def measure(args: argparse.Namespace, nproc: int) -> dict:
    from engine.distributed import torchrun_command

    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        forwarded = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("nproc", "result", "child")]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        if args.device == "cpu":
            env["OMP_NUM_THREADS"] = "1"  # one core per process, as one GPU per process
        command = torchrun_command(nproc, [__file__, "--child", f"--result={result}", *forwarded])
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        return json.loads(result.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="process counts to measure; 1 first")
    parser.add_argument("--model", default="tiny:", help="tiny: (smoke test) or embedded:e5-small (the real one)")
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (strong) or per process (weak)")
    parser.add_argument("--scaling", choices=("strong", "weak"), default="strong")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12, help="timed steps + 1 warm-up step")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--train-size", type=int, default=675, help="question groups to sample from")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    if args.steps < 2:
        parser.error("--steps must be at least 2 (step 1 is the untimed warm-up)")
    if args.nproc[0] != 1:
        parser.error("--nproc must start with 1: efficiency is relative to one process")
    sys.path.insert(0, str(REPO_ROOT))

    print(f"model {args.model}, {args.scaling} scaling, batch {args.batch_size}, max length {args.max_length}, "
          f"{args.steps} steps, device {args.device}")
    if args.device == "cpu":
        print("CPU + gloo, one thread per process: this checks the code path only and says nothing about GPU scaling")
    rows = [measure(args, n) for n in args.nproc]
    base = rows[0]["pairs_per_second"]
    print(f"{'processes':>9} {'global batch':>12} {'pairs/s':>10} {'speed-up':>8} {'efficiency':>10}")
    for row in rows:
        speedup = row["pairs_per_second"] / base
        row["efficiency"] = speedup / row["nproc"]
        print(f"{row['nproc']:>9} {row['global_batch']:>12} {row['pairs_per_second']:>10.1f} "
              f"{speedup:>8.2f} {row['efficiency']:>10.0%}")
    print(json.dumps({"args": {k: v for k, v in vars(args).items() if k not in ("child", "result")}, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

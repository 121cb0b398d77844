"""Training throughput: our trainer vs sentence-transformers, same model, data and shapes.

    python bench/train_throughput.py --model tiny: --batch-size 32 --max-length 64 --steps 10
    python bench/train_throughput.py --model embedded:e5-small --batch-size 128 --max-length 128 \
        --steps 60 --device cuda
    python bench/train_throughput.py --model embedded:e5-small --demo --steps 8

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

Overheads of batches without shared positives (issue 15), measured beside our own steps: drawing a
batch from XQuAD's passage clusters (several questions share an answer sentence, so the sampler
skips groups) against the same sampler on a copy of the data whose passages are all distinct (no
clash to avoid: the old distinct-groups rule), and the loss with the passage ids (the identical-
passage mask) against without, on unit vectors of the batch's shape; each as a share of our
measured step time.

The demo's configuration (``--demo``, read from hybridscale.demo: batch 16, 64 tokens, the
embeddings and every layer below the demo's trainable ones frozen): the peer freezes the same
parameters (``requires_grad=False``, so autograd stops below the trainable layers and AdamW
holds only their state); ours runs with ``frozen_cache``, twice in one process on the same
batches: a cold run (the frozen layers run for each new text) and a warm one reading the cache
the cold one wrote, which is every run after the first of a study whose runs draw the same texts.

Work done, per text of n tokens (no padding), per transformer layer with P Linear weights and
hidden size h: a forward pass costs 2 P n + 4 h n^2 FLOPs (the Linear layers, then the
attention scores and their weighted sum), a backward pass twice that. Each side is credited
with what it has to compute: the peer and our cold run the forward of every layer and the
backward of the trainable ones, our warm run forward and backward of the trainable ones only.
GFLOP/s = that x pairs/s; it is shown as a fraction of this machine's fp32 GEMM rate
(a 2048 x 2048 ``torch.mm``, best of 5, timed in the same invocation), or on a GPU of the
H100 bf16 dense peak of 989 TFLOP/s.
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
    gflops: float = 0.0


def _config(args: argparse.Namespace):
    from vocabulary.config import RunConfig

    return RunConfig(
        model=args.model, strategy="hybrid", alpha=0.5, train_size=args.train_size, train_languages=LANGUAGES,
        batch_size=args.batch_size, max_length=args.max_length, budget="steps", steps=args.steps,
        query_prefix="query: ", passage_prefix="passage: ",  # spelled out: the peer gets the same texts
        learning_rate=3e-5, warmup_ratio=0.1, checkpoint_every=10**9, compile=args.compile,
        freeze_embeddings=args.freeze_embeddings, trainable_layers=args.trainable_layers,
        frozen_cache=args.frozen_cache,
    )


def _training_set():
    from engine.data import load_training_set

    return load_training_set("xquad", LANGUAGES, "train")


def _without_shared_passages(training_set):
    """The same groups with every passage made distinct (no ids, a unique suffix): nothing to cluster."""
    groups = tuple(
        dataclasses.replace(g, passage_ids={}, passages={lang: f"{text} [{g.id}]" for lang, text in g.passages.items()})
        for g in training_set.groups
    )
    return dataclasses.replace(training_set, groups=groups)


def _seconds_each(function, repeats: int, rounds: int = 5) -> float:
    """Seconds per call: the best of ``rounds`` means over ``repeats`` calls (timeit's rule: the least
    disturbed round), after one untimed call (first-call set-up is not per-step cost)."""
    function()
    means = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            function()
        means.append((time.perf_counter() - started) / repeats)
    return min(means)


def run_overheads(args: argparse.Namespace) -> dict[str, float]:
    """Seconds per batch of drawing it (with and without clashes) and of the loss (with and without ids)."""
    import torch

    from engine.losses import PassageIds, RetrievalLoss
    from engine.sampling import BatchSampler
    from vocabulary.batching import batch_plan

    torch.set_num_threads(1)  # microsecond-scale work: one thread times it steadily on a shared machine
    config, data = _config(args), _training_set()
    times: dict[str, float] = {}
    for name, training_set in (("draw clash-free", data), ("draw, nothing to avoid", _without_shared_passages(data))):
        sampler = BatchSampler(batch_plan(config), training_set)
        times[name] = _seconds_each(sampler.next_batch, 100)
    generator = torch.Generator().manual_seed(0)
    queries, passages = (torch.nn.functional.normalize(torch.randn(args.batch_size, 384, generator=generator), dim=1)
                         for _ in range(2))
    loss = RetrievalLoss(config.temperature)
    unique = PassageIds(tuple(str(i) for i in range(args.batch_size)))
    copied = PassageIds(("0",) + unique.passages[:-1])  # one passage twice: the mask is built and applied
    for name, ids in (("loss without ids", None), ("loss, ids all distinct", unique), ("loss, one masked copy", copied)):
        times[name] = _seconds_each(lambda: loss(queries, passages, ids=ids), 100)
    return times


def _load(args: argparse.Namespace):
    from engine.loading import load_encoder

    return load_encoder(args.model, _config(args).encoder_settings, device=args.device)


def _pairs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The prefixed (query, passage) texts of our sampler's first ``steps`` batches."""
    from engine.sampling import BatchSampler
    from vocabulary.batching import batch_plan

    config = _config(args)
    sampler = BatchSampler(batch_plan(config), _training_set())
    batches = [sampler.next_batch() for _ in range(args.steps)]
    return [(config.query_prefix + p.query, config.passage_prefix + p.passage) for b in batches for p in b.pairs]


def _flops_per_pair(encoder, pairs: list[tuple[str, str]], max_length: int, forward_layers: int,
                    backward_layers: int) -> float:
    """FLOPs per pair of forward passes through ``forward_layers`` layers and backward through ``backward_layers``."""
    import torch

    layers = encoder._transformer_layers()
    linear = sum(m.weight.numel() for m in layers[0].modules() if isinstance(m, torch.nn.Linear))
    tokenizer, hidden = encoder.tokenizer, encoder.hidden_size
    total = 0.0
    for query, passage in pairs:
        for text in (query, passage):
            n = len(tokenizer(text, truncation=True, max_length=max_length)["input_ids"])
            total += (forward_layers + 2 * backward_layers) * (2 * linear * n + 4 * hidden * n * n)
    return total / len(pairs)


def _work(encoder, args: argparse.Namespace, pairs, cached: bool) -> float:
    """FLOPs per pair this side computes (see the module docstring)."""
    layers = encoder.num_layers
    trained = layers if args.trainable_layers is None else args.trainable_layers
    return _flops_per_pair(encoder, pairs, args.max_length, trained if cached else layers, trained)


def gemm_flops(size: int = 2048, rounds: int = 5) -> float:
    """This machine's fp32 matrix-multiply rate (FLOP/s), the best of ``rounds`` products of two size x size matrices."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def _memory(device: str) -> tuple[float, str]:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20, "cuda max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max RSS"


def _finish(name: str, args: argparse.Namespace, stamps: list[float], flops_per_pair: float) -> Measurement:
    rate = (len(stamps) - 1) * args.batch_size / (stamps[-1] - stamps[0])
    memory, kind = _memory(args.device)
    mfu = rate * flops_per_pair / H100_BF16_PEAK_FLOPS if args.device.startswith("cuda") else None
    return Measurement(name, rate, memory, kind, mfu, rate * flops_per_pair / 1e9)


def run_ours(args: argparse.Namespace) -> list[Measurement]:
    """One run; with ``frozen_cache`` a cold run and then a warm one on the cache it wrote."""
    import torch

    from engine.state import TaskState
    from engine.train import train

    pairs, config, data = _pairs(args), _config(args), _training_set()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in ("hybridscale, cold cache", "hybridscale, warm cache") if args.frozen_cache else ("hybridscale",):
            encoder = _load(args)
            warm = name.endswith("warm cache")
            stamps: list[float] = []

            def on_progress(_progress, stamps=stamps) -> None:
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                stamps.append(time.perf_counter())

            train(config, data, encoder, Path(folder) / name, state=TaskState(on_progress),
                  frozen_cache_dir=Path(folder) / "cache")
            results.append(_finish(name, args, stamps, _work(encoder, args, pairs, cached=warm)))
    return results


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
    flops = _work(encoder, args, pairs, cached=False)
    encoder.freeze(config.freeze_embeddings, config.trainable_layers)
    frozen = {name for name, p in encoder.named_parameters() if not p.requires_grad}
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
        for name, parameter in model[0].auto_model.named_parameters():  # the same parameters as ours
            parameter.requires_grad_(f"backbone.{name}" not in frozen)
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


def _in_own_process(function, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny:", help="tiny: (smoke test) or embedded:e5-small (the real one)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps + 1 warm-up step")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--train-size", type=int, default=675, help="question groups to sample from")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--freeze-embeddings", action="store_true", help="keep the word embeddings fixed (both sides)")
    parser.add_argument("--trainable-layers", type=int, default=None, metavar="N",
                        help="train just the top N transformer layers (both sides)")
    parser.add_argument("--frozen-cache", action="store_true",
                        help="ours: serve the frozen layers from the cache (a cold and a warm run); needs --trainable-layers")
    parser.add_argument("--demo", action="store_true",
                        help="the demo's shapes (its template's batch, length and trainable layers), --frozen-cache")
    args = parser.parse_args(argv)
    if args.demo:
        from hybridscale.demo import demo_study

        demo = demo_study().template
        args.batch_size, args.max_length = demo.batch_size, demo.max_length
        args.trainable_layers = args.trainable_layers or demo.trainable_layers  # an explicit count wins
        args.freeze_embeddings = args.frozen_cache = True
    if args.frozen_cache and args.trainable_layers is None:
        parser.error("--frozen-cache needs --trainable-layers")
    if args.steps < 2:
        parser.error("--steps must be at least 2 (step 1 is the untimed warm-up)")

    print(f"model {args.model}, batch {args.batch_size}, max length {args.max_length}, "
          f"{args.steps} steps, device {args.device}, compile {args.compile}, trainable layers "
          f"{args.trainable_layers or 'all'}, frozen cache {args.frozen_cache}", flush=True)
    peak = H100_BF16_PEAK_FLOPS if args.device.startswith("cuda") else _in_own_process(gemm_flops)
    print(f"{'fp32 GEMM peak':>26}: {peak / 1e9:8.1f} GFLOP/s (2048 x 2048 torch.mm, best of 5)"
          if not args.device.startswith("cuda") else "peak: H100 bf16 dense 989 TFLOP/s")
    ours = _in_own_process(run_ours, args)
    step = args.batch_size / ours[-1].samples_per_second
    overheads = _in_own_process(run_overheads, args)
    print(f"{'our step':>26}: {step * 1e3:10.1f} ms")
    for name, seconds in overheads.items():
        print(f"{name:>26}: {seconds * 1e3:10.3f} ms per batch ({100 * seconds / step:.3f} % of a step)")
    print(f"{'clash-free draw / plain':>26}: {overheads['draw clash-free'] / overheads['draw, nothing to avoid']:8.2f}x, "
          f"{'masked loss / plain':>20}: {overheads['loss, one masked copy'] / overheads['loss without ids']:8.2f}x")
    peer = _in_own_process(run_sentence_transformers, args)
    for m in (*ours, peer):
        print(f"{m.name:>26}: {m.samples_per_second:8.2f} pairs/s, {args.batch_size / m.samples_per_second:6.2f} s/step, "
              f"{m.gflops:7.1f} GFLOP/s ({100 * m.gflops * 1e9 / peak:.0f} % of peak), "
              f"peak {m.peak_memory_mib:6.0f} MiB ({m.memory_kind})")
    for m in ours:
        print(f"{'ratio ' + m.name.removeprefix('hybridscale').strip(', ') + ' / peer':>26}: "
              f"{m.samples_per_second / peer.samples_per_second:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What one demo run costs, part by part, and how the machine's cores are best shared between runs.

The demo's design (hybridscale/demo.py) is chosen from these numbers. The
script first fills a frozen-prefix cache with the demo's untrained reference
(every eval text, as a study's first run does), then executes demo training
runs in each worker layout ``PxT`` (P worker processes of T torch threads
each, splitting the runs) and prints, per layout, the wall time, runs per
minute and the mean seconds of each part of a run (model loading, eval-set
loading, training data with the first step, training, each eval set). Each
layout has its own seeds, so its runs draw training texts the cache has not
seen: every training text is cold, which makes training dearer than in a
study, whose runs share their seeds' texts. The peer is the first layout
given (by default one process with two threads, what one worker gets on two
cores).

Examples:
  python bench/demo_costs.py --runs 4 --layouts 1x2 2x1
  python bench/demo_costs.py --runs 4 --layouts 1x2 2x1 --trainable-layers 4
  python bench/demo_costs.py --runs 2 --layouts 1x2 --eval-batch-size 64 --evaluations flores
  python bench/demo_costs.py --eval-batches 4 8 16 32 64 128
  python bench/demo_costs.py --eval-batches 16 --attention sdpa eager
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _runs(args: argparse.Namespace):
    """The demo's untrained reference and ``args.runs`` of its training runs with the asked changes."""
    from hybridscale.demo import demo_study

    study = demo_study()
    template = study.template
    changes = {"eval_batch_size": args.eval_batch_size, "trainable_layers": args.trainable_layers,
               "steps": args.steps}
    template = dataclasses.replace(template, **{k: v for k, v in changes.items() if v is not None})
    if args.evaluations:
        template = dataclasses.replace(template, evaluations=tuple(
            spec for spec in template.evaluations if spec.dataset in args.evaluations))
    study = dataclasses.replace(study, template=template, seeds=tuple(range(args.runs * len(args.layouts))),
                                include_bm25=False)
    expanded = study.expand()
    reference = expanded[0]
    trained = [run for run in expanded[1:] if run.strategy == "hybrid" and run.train_size == 64]
    return reference, [trained[i * args.runs : (i + 1) * args.runs] for i in range(len(args.layouts))]


def _phase_times(execute_run) -> dict[str, float]:
    """Seconds per top-level phase of one run (the time from a phase's first report to the next phase's)."""
    from engine.state import TaskState

    marks: list[tuple[str, float]] = []

    def report(progress) -> None:
        phase = progress.phase.split(":")[0] or "starting"
        if not marks or marks[-1][0] != phase:
            marks.append((phase, time.perf_counter()))

    started = time.perf_counter()
    execute_run(TaskState(report))
    ended = time.perf_counter()
    times: dict[str, float] = defaultdict(float)
    times["setting up"] = (marks[0][1] if marks else ended) - started
    for (phase, at), (_, until) in zip(marks, [*marks[1:], ("end", ended)]):
        times[phase] += until - at
    return dict(times)


def _worker(threads: int, runs: list, cache: str, workdir: str, device: str) -> list[dict[str, float]]:
    import torch

    from engine.study import execute

    torch.set_num_threads(threads)
    return [_phase_times(lambda state, run=run: execute(run, Path(workdir) / run.run_id, device=device, state=state,
                                                          frozen_cache_dir=Path(cache)))
            for run in runs]


def _in_children(layout: tuple[int, int], runs: list, cache: Path, workdir: Path, device: str):
    processes, threads = layout
    shares = [runs[i::processes] for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with context.Pool(processes) as pool:
        results = pool.starmap(_worker, [(threads, share, str(cache), str(workdir), device) for share in shares])
    return time.perf_counter() - started, [times for share in results for times in share]


def eval_batch_sizes(batch_sizes: list[int], trainable_layers: int | None, attentions: list[str],
                     rounds: int = 2) -> None:
    """Seconds to encode the demo's AfriQA passages through the cached top layers, per batch size and attention.

    ``attentions`` are transformers' attention implementations (``sdpa``, the
    model's default, and ``eager``, its plain matrix products); each one's
    embeddings are compared with the first one's, so a faster path is only
    taken if it gives the same vectors.
    """
    import numpy as np

    from engine.data import load_eval_set
    from engine.evaluate import passage_text
    from engine.loading import load_encoder
    from hybridscale.demo import demo_study

    template = demo_study().template
    layers = trainable_layers or template.trainable_layers
    (spec,) = [spec for spec in template.evaluations if spec.dataset == "afriqa"]
    texts = [passage_text(p) for p in load_eval_set(spec).passages]
    encoder = load_encoder(template.model, template.encoder_settings)
    encoder.cache_frozen_prefix(layers, None)
    encoder.encode(texts, "passage", batch_size=64, max_length=spec.passage_max_length)  # fills the cache
    first = None
    for attention in attentions:
        encoder.backbone.set_attn_implementation(attention)
        for size in batch_sizes:
            seconds = []
            for _ in range(rounds):
                started = time.perf_counter()
                vectors = encoder.encode(texts, "passage", batch_size=size, max_length=spec.passage_max_length)
                seconds.append(time.perf_counter() - started)
            first = vectors if first is None else first
            print(f"AfriQA's {len(texts)} passages, top {layers} layers, {attention} attention, eval batch {size}: "
                  f"best of {rounds} {min(seconds):.2f} s; largest difference from the first line's vectors "
                  f"{float(np.abs(np.asarray(vectors) - np.asarray(first)).max()):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4, help="training runs per layout (default 4)")
    parser.add_argument("--layouts", nargs="+", default=["1x2", "2x1"], help="PxT: P processes of T threads")
    parser.add_argument("--trainable-layers", type=int, default=None, help="default: the demo's")
    parser.add_argument("--steps", type=int, default=None, help="default: the demo's")
    parser.add_argument("--eval-batch-size", type=int, default=None, help="default: the demo's")
    parser.add_argument("--evaluations", nargs="*", default=None, help="keep these of the demo's eval sets")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eval-batches", nargs="+", type=int, default=None, metavar="B",
                        help="instead: time encoding AfriQA's passages (warm cache) at these evaluation batch sizes")
    parser.add_argument("--attention", nargs="+", default=["sdpa"], choices=("sdpa", "eager"),
                        help="with --eval-batches: the attention implementations to time (default sdpa)")
    args = parser.parse_args()
    if args.eval_batches:
        eval_batch_sizes(args.eval_batches, args.trainable_layers, args.attention)
        return
    layouts = [tuple(int(n) for n in text.split("x")) for text in args.layouts]
    reference, per_layout = _runs(args)
    with tempfile.TemporaryDirectory(prefix="demo-costs-") as folder:
        cache = Path(folder) / "frozen_prefix"
        seconds, (filling,) = _in_children((1, layouts[0][1]), [reference], cache, Path(folder), args.device)
        print(f"untrained reference, filling the cache: {seconds:.1f} s "
              + ", ".join(f"{phase} {value:.1f}" for phase, value in filling.items()))
        first = per_layout[0][0]
        print(f"{args.runs} runs per layout like {first.label}; trainable layers {first.trainable_layers}, "
              f"eval batch {first.eval_batch_size}, eval sets {[s.label for s in first.evaluations]}")
        baseline = None
        for index, (layout, trained) in enumerate(zip(layouts, per_layout)):
            workdir = Path(folder) / f"layout-{index}"
            seconds, parts = _in_children(layout, trained, cache, workdir, args.device)
            baseline = baseline or seconds
            mean = {phase: sum(p.get(phase, 0.0) for p in parts) / len(parts) for phase in parts[0]}
            print(f"layout {layout[0]}x{layout[1]}: {seconds:.1f} s wall, {60 * len(parts) / seconds:.2f} runs/min, "
                  f"speed-up vs {layouts[0][0]}x{layouts[0][1]} {baseline / seconds:.2f}x; mean per run: "
                  + ", ".join(f"{phase} {value:.1f}" for phase, value in mean.items()))


if __name__ == "__main__":
    main()

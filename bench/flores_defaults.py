"""Untrained multilingual-e5-small on FLORES under the evaluation's old and new defaults.

The numbers bench/RESULTS.md records for the evaluation defaults: the
asymmetric ``query: ``/``passage: `` prefixes against ``query: `` on both
sides (the multilingual-e5 card's advice for bitext), on the 204-sentence test
split and on all 1,004 sentences, for en/sw/yo and for the default 11-language
pool. The real model on a CPU: about 25 minutes on 2 cores (the 11-language pool
is most of it; ``--quick`` leaves it out).

    python bench/flores_defaults.py [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import load_eval_set  # noqa: E402
from engine.evaluate import evaluate  # noqa: E402
from engine.loading import load_encoder  # noqa: E402
from vocabulary.config import DEFAULT_EVALUATIONS, EvalSpec  # noqa: E402

TARGETS = ("en", "sw", "yo")
CELLS = (("cross", "sw", "en", "nDCG@10"), ("cross", "yo", "en", "nDCG@10"), ("cross", "en", "sw", "nDCG@10"),
         ("cross", "en", "yo", "nDCG@10"), ("cross", "all", "all", "AP"), ("multi", "sw", "all", "nDCG@10"),
         ("multi", "yo", "all", "nDCG@10"), ("multi", "all", "all", "AP"), ("multi", "all", "all", "LangBias"))


def cases(quick: bool) -> dict[str, EvalSpec]:
    chosen = {
        "test, 'query: '/'passage: ' (old default)": EvalSpec("flores", TARGETS, "test", symmetric=False),
        "test, 'query: ' both sides": EvalSpec("flores", TARGETS, "test"),
        "all, 'query: '/'passage: '": EvalSpec("flores", TARGETS, "all", symmetric=False),
        "all, 'query: ' both sides": EvalSpec("flores", TARGETS, "all"),
    }
    if not quick:
        chosen["all, 11 languages (new default)"] = DEFAULT_EVALUATIONS[0]
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out the 11-language pool")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    encoder = load_encoder("embedded:e5-small", device=args.device)
    print("| FLORES, untrained e5-small | " + " | ".join(f"{s} {x}→{y} {m}" for s, x, y, m in CELLS) + " | s |")
    print("|---" * (len(CELLS) + 2) + "|")
    for name, spec in cases(args.quick).items():
        start = time.perf_counter()
        result = evaluate(encoder, load_eval_set(spec), spec.label, batch_size=32,
                          passage_max_length=spec.passage_max_length, symmetric=bool(spec.symmetric))
        rows = {(r.setting, r.query_language, r.passage_language, r.metric): r.value for r in result.rows}
        took = time.perf_counter() - start
        print(f"| {name} | " + " | ".join(f"{rows[c]:.4f}" for c in CELLS) + f" | {took:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak memory and wall time of an evaluation-only run over large MIRACL-shaped corpora (issue 27's goals).

For each size N, a synthetic corpus of N passages is written in the hub's
MIRACL layout (``miracl-corpus-v1.0-sw/docs-0.jsonl.gz``: every passage the
shipped sw dev qrels judge, then pseudo-Swahili fillers of 40-120 words with
titles, docids ``<article>#<passage>``). Each measurement is one child
process that runs what a worker runs, :func:`engine.study.execute` of an
evaluation-only RunConfig on ``miracl`` sw dev (482 queries) with that
folder as ``path``, and reports its own wall time and peak RSS
(``ru_maxrss``). The models: the tiny 16-dimensional encoder
(``tiny:hidden=16``) and ``bm25``. Peak RSS includes the interpreter, torch
and the loaders (a few hundred MB before any passage is read), so the slope
between sizes is the cost per passage.

Goals: 200,000 passages under 2.5 GB peak RSS, 1,000,000 under 4 GB, time
linear in the corpus.

Examples:
  python bench/large_corpus.py                          # 50k, 200k and 1M, tiny encoder and bm25
  python bench/large_corpus.py --sizes 50000 200000 --models tiny:hidden=16
  python bench/large_corpus.py --sizes 1000000 --models bm25 --corpora /tmp/corpora  # corpora kept, reused
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_SIZES = (50_000, 200_000, 1_000_000)
DEFAULT_MODELS = ("tiny:hidden=16", "bm25")


def write_corpus(folder: Path, size: int, seed: int = 0) -> Path:
    """The corpus in the hub layout under ``folder``; the judged sw dev passages come first. A folder that
    already holds a whole one (its ``complete`` mark is written last) is used as it is."""
    if (folder / "complete").is_file():
        return folder
    qrels = lzma.decompress((REPO / "assets/data/miracl/qrels.miracl-v1.0-sw-dev.tsv.xz").read_bytes()).decode()
    judged = list(dict.fromkeys(line.split("\t")[2] for line in qrels.splitlines() if line.strip()))
    rng = np.random.default_rng(seed)
    syllables = ["ka", "ma", "li", "wa", "ni", "to", "ba", "si", "ku", "ha", "ji", "mu", "ra", "zi", "nge", "cha"]
    vocabulary = np.array(["".join(rng.choice(syllables, size=rng.integers(2, 5))) for _ in range(20_000)])
    target = folder / "miracl-corpus-v1.0-sw" / "docs-0.jsonl.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(target, "wt", encoding="utf-8", compresslevel=1) as handle:
        for n in range(size):
            docid = judged[n] if n < len(judged) else f"{9_000_000 + n // 8}#{n % 8}"
            words = vocabulary[rng.integers(0, len(vocabulary), size=int(rng.integers(40, 121)))]
            title = " ".join(vocabulary[rng.integers(0, len(vocabulary), size=2)])
            handle.write(json.dumps({"docid": docid, "title": title, "text": " ".join(words)}) + "\n")
    (folder / "complete").write_text(str(size))
    return folder


def measure(corpus: Path, model: str, workdir: Path) -> dict:
    """Run one evaluation in a child process; its wall time, peak RSS and nDCG@10."""
    code = (
        "import json, resource, sys, time\n"
        "t = time.perf_counter()\n"
        "from engine.study import execute\n"
        "from vocabulary.config import EvalSpec, RunConfig\n"
        "from vocabulary.strategies import NO_TRAINING\n"
        f"config = RunConfig(model={model!r}, strategy=NO_TRAINING, train_size=0, alpha=None,\n"
        f"    evaluations=(EvalSpec('miracl', ('sw',), 'dev', path={str(corpus)!r}),))\n"
        f"result = execute(config, __import__('pathlib').Path({str(workdir)!r}))\n"
        "row = next(r for r in result.rows if r.metric == 'nDCG@10' and r.setting == 'mono')\n"
        "print(json.dumps({'wall_s': time.perf_counter() - t, 'nDCG@10': row.value,\n"
        "    'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
                               "HF_DATASETS_OFFLINE": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{model} on {corpus}: failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--corpora", type=Path, help="keep the corpora here and reuse them (default: a temporary folder)")
    args = parser.parse_args()
    print(f"{'model':<16} {'passages':>10} {'wall s':>8} {'peak RSS MB':>12} {'nDCG@10':>8}")
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            started = time.perf_counter()
            corpus = write_corpus((args.corpora or Path(scratch)) / f"corpus-{size}", size)
            print(f"# corpus of {size:,} written in {time.perf_counter() - started:.0f} s", flush=True)
            for model in args.models:
                result = measure(corpus, model, Path(scratch) / f"run-{size}-{model.replace(':', '_')}")
                print(f"{model:<16} {size:>10,} {result['wall_s']:>8.1f} {result['peak_rss_mb']:>12,.0f} "
                      f"{result['nDCG@10']:>8.4f}", flush=True)


if __name__ == "__main__":
    main()

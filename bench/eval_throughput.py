"""Evaluation throughput: our evaluator vs sentence-transformers' InformationRetrievalEvaluator.

Both sides evaluate the same model weights on the same corpus, queries and qrels
in one invocation. Each side runs in its own child process, so each one has its
own peak RSS and neither warms the other's caches. Model loading is not timed.
The script prints passages encoded per second, queries searched per second
(search and scoring, after encoding), the ours/theirs ratios, the peak RSS, and
nDCG@10 from both sides as a check that they did the same work.

Corpora:
  (default) FLORES test: English queries against the pool of Swahili and
      Yoruba sentences (408 passages, 204 queries); ``--passages/--queries``
      keep the first N.
  --synthetic: N synthetic Swahili-like passages and M queries, each query a
      few words of its one relevant passage.
  --miracl-synthetic: the MIRACL-sw shape, 131,924 passages and 482 queries.
      The goal is under 60 s for encode+search on a GPU. On this 2-core CPU,
      multilingual-e5-small encodes about 12 sentences/s, so pass a smaller
      ``--passages`` here (the printed rates carry over).

Examples:
  python bench/eval_throughput.py                                   # tiny: model, FLORES subset
  python bench/eval_throughput.py --model embedded:e5-small --passages 600 --queries 200
  python bench/eval_throughput.py --miracl-synthetic --passages 5000 --device cuda
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vocabulary.records import EvalSet, Passage, Query  # noqa: E402

MIRACL_SW_PASSAGES = 131_924
MIRACL_SW_QUERIES = 482
TOP_K = 100


@dataclass(frozen=True)
class SideResult:
    name: str
    passages: int
    queries: int
    encode_passages_s: float
    search_s: float
    total_s: float
    peak_rss_mib: float
    ndcg10: float

    @property
    def passages_per_s(self) -> float:
        return self.passages / self.encode_passages_s

    @property
    def queries_per_s(self) -> float:
        return self.queries / self.search_s


# ---- corpora --------------------------------------------------------------------


def synthetic_set(passages: int, queries: int, seed: int = 0) -> EvalSet:
    """Swahili-like pseudo-text: 40-120 word passages; a query is 5-9 words of its relevant passage."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "ma", "li", "wa", "ni", "to", "ba", "si", "ku", "ha", "ji", "mu", "ra", "zi", "nge", "cha"]
    vocabulary = ["".join(rng.choice(syllables, size=rng.integers(2, 5))) for _ in range(5000)]
    texts = [" ".join(rng.choice(vocabulary, size=rng.integers(40, 121))) for _ in range(passages)]
    corpus = tuple(Passage(f"p{i}", text, "sw") for i, text in enumerate(texts))
    targets = rng.choice(passages, size=min(queries, passages), replace=False)
    query_list, qrels = [], {}
    for n, target in enumerate(targets):
        words = texts[target].split()
        start = int(rng.integers(0, len(words) - 9))
        query_list.append(Query(f"q{n}", " ".join(words[start : start + int(rng.integers(5, 10))]), "sw"))
        qrels[f"q{n}"] = {f"p{target}": 1}
    return EvalSet("synthetic", tuple(query_list), corpus, qrels)


def flores_set(passages: int | None, queries: int | None) -> EvalSet:
    """FLORES test from the shipped assets: English queries against the Swahili and Yoruba sentences.

    Queries and passages are in different languages, so no query meets its own
    sentence in the corpus. Sentence-transformers has no self-match masking, so
    this keeps the two sides' nDCG@10 comparable. ``passages``/``queries`` keep
    the first N of each, deterministically.
    """
    from engine.data import load_eval_set
    from vocabulary.config import EvalSpec

    full = load_eval_set(EvalSpec("flores", ("en", "sw", "yo"), "test"))
    corpus = tuple(p for p in full.passages if p.language != "en")[:passages]
    kept = {p.id for p in corpus}
    candidates = [q for q in full.queries if q.language == "en" and any(pid in kept for pid in full.qrels[q.id])]
    chosen = tuple(candidates[:queries])
    qrels = {q.id: {pid: rel for pid, rel in full.qrels[q.id].items() if pid in kept} for q in chosen}
    return EvalSet("flores/test en->sw,yo", chosen, corpus, qrels)


# ---- the two sides ----------------------------------------------------------------


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(model: str, device: str, eval_set: EvalSet, batch_size: int) -> SideResult:
    from engine.evaluate import evaluate
    from engine.model import load_encoder
    from engine.state import TaskState

    encoder = load_encoder(model, device=device)
    last: dict[str, float] = {}  # stage -> time of its latest progress call

    def progress(report) -> None:
        last[report.phase] = time.perf_counter()

    start = time.perf_counter()
    rows = evaluate(
        encoder, eval_set, "bench", measures=["nDCG@10"], top_k=TOP_K, batch_size=batch_size,
        settings=["multi"], state=TaskState(progress),
    ).rows
    end = time.perf_counter()
    ndcg = next(r.value for r in rows if r.query_language == "all" and r.metric == "nDCG@10")
    return SideResult(
        "ours", len(eval_set.passages), len(eval_set.queries),
        encode_passages_s=last["encoding passages"] - last["encoding queries"],
        search_s=end - last["encoding passages"], total_s=end - start, peak_rss_mib=_peak_rss_mib(), ndcg10=ndcg,
    )


def run_theirs(model: str, device: str, eval_set: EvalSet, batch_size: int) -> SideResult:
    """The same weights, saved by engine.model as a sentence-transformers folder (prompts included)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from engine.model import load_encoder

    with tempfile.TemporaryDirectory() as folder:
        load_encoder(model).save(Path(folder) / "model")
        peer = SentenceTransformer(str(Path(folder) / "model"), device=device)
    timings = {"query": 0.0, "document": 0.0}
    for kind, method in (("query", "encode_query"), ("document", "encode_document")):
        original = getattr(peer, method)

        def timed(*args, _original=original, _kind=kind, **kwargs):
            t0 = time.perf_counter()
            out = _original(*args, **kwargs)
            timings[_kind] += time.perf_counter() - t0
            return out

        setattr(peer, method, timed)
    evaluator = InformationRetrievalEvaluator(
        queries={q.id: q.text for q in eval_set.queries},
        corpus={p.id: p.text for p in eval_set.passages},
        relevant_docs={q: {pid for pid, rel in judged.items() if rel > 0} for q, judged in eval_set.qrels.items()},
        query_prompt_name="query", corpus_prompt_name="passage", batch_size=batch_size, ndcg_at_k=[10],
        mrr_at_k=[10], accuracy_at_k=[1], precision_recall_at_k=[TOP_K], map_at_k=[TOP_K], show_progress_bar=False,
    )
    start = time.perf_counter()
    metrics = evaluator(peer)
    total = time.perf_counter() - start
    ndcg = next(v for k, v in metrics.items() if k.endswith("ndcg@10"))
    return SideResult(
        "sentence-transformers", len(eval_set.passages), len(eval_set.queries),
        encode_passages_s=timings["document"], search_s=total - timings["document"] - timings["query"],
        total_s=total, peak_rss_mib=_peak_rss_mib(), ndcg10=ndcg,
    )


def _child(side: str, args: tuple, queue: multiprocessing.Queue) -> None:
    queue.put((run_ours if side == "ours" else run_theirs)(*args))


def in_child(side: str, *args) -> SideResult:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(side, args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny:", help="model spec for engine.model.load_encoder (default tiny:)")
    parser.add_argument("--device", default="cpu")
    corpus = parser.add_mutually_exclusive_group()
    corpus.add_argument("--synthetic", action="store_true", help="synthetic corpus of --passages passages")
    corpus.add_argument("--miracl-synthetic", action="store_true", help="MIRACL-sw shape: 131,924 passages, 482 queries")
    parser.add_argument("--passages", type=int, help="corpus size (default: all FLORES / 2000 synthetic / 131,924)")
    parser.add_argument("--queries", type=int, help="number of queries (default: all / 200 / 482)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    if args.miracl_synthetic:
        eval_set = synthetic_set(args.passages or MIRACL_SW_PASSAGES, args.queries or MIRACL_SW_QUERIES)
    elif args.synthetic:
        eval_set = synthetic_set(args.passages or 2000, args.queries or 200)
    else:
        eval_set = flores_set(args.passages, args.queries)
    print(
        f"corpus {eval_set.name}: {len(eval_set.passages)} passages, {len(eval_set.queries)} queries; "
        f"model {args.model} on {args.device}, batch {args.batch_size}, top_k {TOP_K}; each side in its own process"
    )
    side_args = (args.model, args.device, eval_set, args.batch_size)
    ours = in_child("ours", *side_args)
    theirs = in_child("theirs", *side_args)
    rows = [
        ("passages encoded/s", ours.passages_per_s, theirs.passages_per_s),
        ("queries searched/s", ours.queries_per_s, theirs.queries_per_s),
        ("total s", ours.total_s, theirs.total_s),
        ("peak RSS MiB", ours.peak_rss_mib, theirs.peak_rss_mib),
        ("nDCG@10", ours.ndcg10, theirs.ndcg10),
    ]
    print(f"{'':22}{'ours':>14}{'sentence-transformers':>24}{'ours/theirs':>14}")
    for name, mine, peer in rows:
        print(f"{name:22}{mine:14.4g}{peer:24.4g}{mine / peer:14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

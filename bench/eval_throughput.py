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

  --demo: the demo's re-evaluation. A model fine-tuned as the demo trains (its trainable top layers,
      2 steps; kept as trained tensors + base reference) is evaluated on the demo's sw / yo sets
      (FLORES test English -> sw + yo; AfriQA's 120 sw / yo questions and their English
      translations -> the English gold passages) three times: ours with a cold frozen-prefix cache
      (a study's first run), ours with the warm cache (every later run), and sentence-transformers
      on the model exported as a full folder. Both sides encode as the demo's eval spec says
      (passages cut at its ``passage_max_length``, FLORES symmetric: the query prefix on both
      sides), and both report nDCG@10 as the mean over queries.

GFLOP/s: each side is credited with the forward passes it has to compute, per text of n tokens
and per layer 2 P n + 4 h n^2 (P the Linear weights of a layer, h the hidden size): every layer for
the peer and a cold cache, the trainable ones for a warm cache; shown as a share of this machine's
fp32 GEMM rate (bench/train_throughput.py's 2048 x 2048 torch.mm) measured in the same invocation.

Examples:
  python bench/eval_throughput.py                                   # tiny: model, FLORES subset
  python bench/eval_throughput.py --model embedded:e5-small --demo --batch-size 16
  python bench/eval_throughput.py --model embedded:e5-small --demo --batch-size 16 --trainable-layers 4
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
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vocabulary.records import ALL, EvalSet, Passage, Query, micro_name  # noqa: E402

if TYPE_CHECKING:
    from engine.evaluate import TextEncoding

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
    #: FLOPs of the forward passes this side had to compute (see the module docstring).
    flops: float = 0.0

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


def _forward_flops(encoder, eval_set: EvalSet, layers: int, encoding: TextEncoding) -> float:
    """FLOPs of ``layers`` transformer layers' forward passes over every query and passage, as ``encoding`` cuts them."""
    import torch

    from engine.evaluate import passage_text

    block = encoder._transformer_layers()[0]
    linear = sum(m.weight.numel() for m in block.modules() if isinstance(m, torch.nn.Linear))
    queries = encoder._token_ids([q.text for q in eval_set.queries], "query", encoding.query_max_length)
    passages = encoder._token_ids([passage_text(p) for p in eval_set.passages], encoding.passage_kind,
                                  encoding.passage_max_length)
    lengths = [len(ids) for ids in [*queries, *passages]]
    return float(sum(layers * (2 * linear * n + 4 * encoder.hidden_size * n * n) for n in lengths))


def run_ours(model: str, device: str, eval_set: EvalSet, batch_size: int, encoding: TextEncoding,
             cache: str | None = None, trainable_layers: int | None = None, warm: bool = False) -> SideResult:
    """Our evaluator; with ``cache`` the frozen layers below ``trainable_layers`` come from that cache folder,
    which an earlier call filled when ``warm``. Its nDCG@10 is the mean over queries (the micro ``all`` row),
    what sentence-transformers reports."""
    from engine.evaluate import evaluate
    from engine.loading import load_encoder
    from engine.state import TaskState

    encoder = load_encoder(model, device=device)
    layers = encoder.num_layers
    if cache is not None:
        encoder.cache_frozen_prefix(trainable_layers, Path(cache))
        layers = trainable_layers if warm else layers
    last: dict[str, float] = {}  # stage -> time of its latest progress call

    def progress(report) -> None:
        last[report.phase] = time.perf_counter()

    start = time.perf_counter()
    rows = evaluate(
        encoder, eval_set, "bench", measures=["nDCG@10"], top_k=TOP_K, batch_size=batch_size,
        settings=["multi"], state=TaskState(progress), passage_max_length=encoding.passage_max_length,
        symmetric=encoding.symmetric,
    ).rows
    end = time.perf_counter()
    if encoder.frozen_prefix is not None:
        encoder.frozen_prefix.flush()
    ndcg = next(r.value for r in rows if r.query_language == ALL and r.metric == micro_name("nDCG@10"))
    name = "ours" if cache is None else f"ours, {'warm' if warm else 'cold'} cache"
    return SideResult(
        name, len(eval_set.passages), len(eval_set.queries),
        encode_passages_s=last["encoding passages"] - last["encoding queries"],
        search_s=end - last["encoding passages"], total_s=end - start, peak_rss_mib=_peak_rss_mib(), ndcg10=ndcg,
        flops=_forward_flops(encoder, eval_set, layers, encoding),
    )


def run_theirs(model: str, device: str, eval_set: EvalSet, batch_size: int, encoding: TextEncoding) -> SideResult:
    """The same weights, saved by engine.model as a sentence-transformers folder (prompts included).

    Each kind of text is cut where ours cuts it (``max_seq_length`` set before
    each encoding call) and a symmetric set's passages get the query prompt.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from engine.evaluate import passage_text
    from engine.loading import load_encoder

    with tempfile.TemporaryDirectory() as folder:
        ours = load_encoder(model)
        flops = _forward_flops(ours, eval_set, ours.num_layers, encoding)
        lengths = {"query": encoding.query_max_length or ours.settings.max_length,
                   "document": encoding.passage_max_length or ours.settings.max_length}
        ours.save(Path(folder) / "model")
        peer = SentenceTransformer(str(Path(folder) / "model"), device=device)
    timings = {"query": 0.0, "document": 0.0}
    for kind, method in (("query", "encode_query"), ("document", "encode_document")):
        original = getattr(peer, method)

        def timed(*args, _original=original, _kind=kind, **kwargs):
            peer.max_seq_length = lengths[_kind]
            t0 = time.perf_counter()
            out = _original(*args, **kwargs)
            timings[_kind] += time.perf_counter() - t0
            return out

        setattr(peer, method, timed)
    evaluator = InformationRetrievalEvaluator(
        queries={q.id: q.text for q in eval_set.queries},
        corpus={p.id: passage_text(p) for p in eval_set.passages},
        relevant_docs={q: {pid for pid, rel in judged.items() if rel > 0} for q, judged in eval_set.qrels.items()},
        query_prompt_name="query", corpus_prompt_name=encoding.passage_kind, batch_size=batch_size, ndcg_at_k=[10],
        mrr_at_k=[10], accuracy_at_k=[1], precision_recall_at_k=[TOP_K], map_at_k=[TOP_K], show_progress_bar=False,
    )
    start = time.perf_counter()
    metrics = evaluator(peer)
    total = time.perf_counter() - start
    ndcg = next(v for k, v in metrics.items() if k.endswith("ndcg@10"))
    return SideResult(
        "sentence-transformers", len(eval_set.passages), len(eval_set.queries),
        encode_passages_s=timings["document"], search_s=total - timings["document"] - timings["query"],
        total_s=total, peak_rss_mib=_peak_rss_mib(), ndcg10=ndcg, flops=flops,
    )


def demo_trainable_layers() -> int:
    """The layers the demo trains (hybridscale.demo's template), so the bench follows the demo."""
    from hybridscale.demo import demo_study

    return demo_study().template.trainable_layers


def fine_tune(model: str, folder: str, trainable_layers: int) -> str:
    """A model trained as the demo trains (batch, length; ``trainable_layers``), 2 steps: its run's model folder."""
    from engine.data import load_training_set
    from engine.loading import load_encoder
    from engine.train import train
    from vocabulary.config import RunConfig
    from vocabulary.languages import PAPER_TRAIN_LANGUAGES

    config = RunConfig(model=model, train_languages=PAPER_TRAIN_LANGUAGES, train_size=64, batch_size=16,
                       max_length=64, learning_rate=1e-4, budget="steps", steps=2, freeze_embeddings=True,
                       trainable_layers=trainable_layers, frozen_cache=True, checkpoint_every=100)
    encoder = load_encoder(model, config.encoder_settings)
    result = train(config, load_training_set("xquad", config.train_languages, "train"), encoder, Path(folder) / "run")
    return str(result.model_dir)


def demo_encoding(dataset: str) -> TextEncoding:
    """How the demo encodes ``dataset``'s texts (its template's eval spec: passage length, symmetric or not)."""
    from engine.evaluate import TextEncoding
    from hybridscale.demo import demo_study

    (spec,) = [spec for spec in demo_study().template.evaluations if spec.dataset == dataset]
    return TextEncoding(spec.passage_max_length, bool(spec.symmetric))


def afriqa_set() -> EvalSet:
    """The demo's AfriQA set: Swahili and Yoruba questions against English passages, 120 queries."""
    from engine.data import load_eval_set
    from vocabulary.config import EvalSpec

    return load_eval_set(EvalSpec("afriqa", ("sw", "yo"), "test", max_queries=120))


def _gemm_flops() -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_throughput import gemm_flops

    return gemm_flops()


_SIDES = {"ours": run_ours, "theirs": run_theirs, "fine-tune": fine_tune, "gemm": _gemm_flops}


def _child(side: str, args: tuple, queue: multiprocessing.Queue) -> None:
    queue.put(_SIDES[side](*args))


def in_child(side: str, *args):
    """``side``'s function run in a fresh spawned process; its error (or death) ends the bench, not a hang."""
    import queue as queues

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(side, args, queue))
    process.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except queues.Empty:
            if not process.is_alive():
                raise RuntimeError(f"the {side!r} process ended (status {process.exitcode}) without a result") from None
    process.join()
    return result


def _table(results: list[SideResult], peak: float) -> None:
    """One column per side (the peer last) and the ratios of each of ours to the peer."""
    print(f"{'':22}" + "".join(f"{r.name:>22}" for r in results) + "".join(
        f"{r.name + ' / peer':>28}" for r in results[:-1]))
    rows = [
        ("passages encoded/s", [r.passages_per_s for r in results]),
        ("queries searched/s", [r.queries_per_s for r in results]),
        ("total s", [r.total_s for r in results]),
        ("GFLOP/s (encoding)", [r.flops / 1e9 / (r.total_s - r.search_s) for r in results]),
        ("share of GEMM peak", [r.flops / (r.total_s - r.search_s) / peak for r in results]),
        ("peak RSS MiB", [r.peak_rss_mib for r in results]),
        ("nDCG@10", [r.ndcg10 for r in results]),
    ]
    for name, values in rows:
        ratios = [v / values[-1] for v in values[:-1]]
        if name == "total s":
            ratios = [values[-1] / v for v in values[:-1]]  # speed-up: how many times faster
        print(f"{name:22}" + "".join(f"{v:22.4g}" for v in values) + "".join(f"{x:28.3f}" for x in ratios))


def main_demo(args: argparse.Namespace) -> int:
    layers = args.trainable_layers or demo_trainable_layers()
    peak = in_child("gemm")
    print(f"fp32 GEMM peak of this machine: {peak / 1e9:.1f} GFLOP/s; model {args.model} fine-tuned for 2 steps "
          f"(top {layers} layers), batch {args.batch_size}, top_k {TOP_K}; each side in its own process")
    with tempfile.TemporaryDirectory() as folder:
        model = in_child("fine-tune", args.model, folder, layers)
        chosen = {"flores": lambda: flores_set(None, None), "afriqa": afriqa_set}
        for index, name in enumerate(args.demo_sets):
            eval_set, encoding = chosen[name](), demo_encoding(name)
            cache = str(Path(folder) / f"cache-{index}")  # cold for this set's first evaluation
            print(f"\n{eval_set.name}: {len(eval_set.passages)} passages, {len(eval_set.queries)} queries, "
                  f"passages cut at {encoding.passage_max_length} tokens, symmetric {encoding.symmetric} "
                  "(total s ratio: how many times faster than the peer)")
            side = (model, args.device, eval_set, args.batch_size, encoding)
            results = [in_child("ours", *side, cache, layers, warm) for warm in (False, True)]
            _table([*results, in_child("theirs", *side)], peak)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny:", help="model spec for engine.loading.load_encoder (default tiny:)")
    parser.add_argument("--device", default="cpu")
    corpus = parser.add_mutually_exclusive_group()
    corpus.add_argument("--synthetic", action="store_true", help="synthetic corpus of --passages passages")
    corpus.add_argument("--miracl-synthetic", action="store_true", help="MIRACL-sw shape: 131,924 passages, 482 queries")
    corpus.add_argument("--demo", action="store_true", help="re-evaluating a demo run's model on the demo's sw / yo sets")
    parser.add_argument("--demo-sets", nargs="+", choices=("flores", "afriqa"), default=["flores", "afriqa"],
                        help="with --demo: which of the demo's eval sets")
    parser.add_argument("--trainable-layers", type=int, default=None, metavar="N",
                        help="with --demo: train and cache-serve the top N layers (default: the demo's)")
    parser.add_argument("--passages", type=int, help="corpus size (default: all FLORES / 2000 synthetic / 131,924)")
    parser.add_argument("--queries", type=int, help="number of queries (default: all / 200 / 482)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    if args.demo:
        return main_demo(args)

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
    from engine.evaluate import TextEncoding

    side_args = (args.model, args.device, eval_set, args.batch_size, TextEncoding())  # the model's own length
    peak = in_child("gemm")
    _table([in_child("ours", *side_args), in_child("theirs", *side_args)], peak)
    return 0


if __name__ == "__main__":
    sys.exit(main())

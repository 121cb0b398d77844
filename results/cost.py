"""What a study at scale will cost on a GPU, before it is submitted: runs, steps, tokens, hours, memory, disk.

Qt-free and data-free (the setup form and ``hybridscale plan`` share it):
everything comes from the study's settings, the dataset registry's counts
and the model facts below. How the figures are derived, and how wrong they
can be:

* Training FLOPs are ``6 x N x tokens`` (Kaplan et al. 2020: forward 2N,
  backward 4N per token), N the model's non-embedding parameters (the
  embedding lookup costs next to nothing); attention's own term (about
  ``12 x layers x hidden x length`` per token) is left out, which
  underestimates by about 10 % at 128 tokens. Tokens are per text kind and
  source (:data:`TOKENS`, typical lengths, cut at ``max_length``), times the
  texts a pair encodes (query, positive, the hard negative where the source
  has them, the translation of a ``cross+semantic`` pair).
* Evaluation and dev-loss FLOPs are ``2 x N x tokens`` of every text encoded.
* GPU hours are FLOPs over the reference GPU's bf16 dense peak
  (:data:`REFERENCE_GPU`) times :data:`UTILISATION`, an assumed 30 % model
  FLOPs utilisation for BERT-sized encoders at these lengths; the true figure
  can be half or double that (padding, data loading, FAISS search and
  tokenisation are not counted), so read the hours as within a factor of 2.
* Early stopping only shortens runs: the hours are those of the whole budget.
* CPU hours scale the 2-core reference machine's measured seconds
  (:mod:`results.plan`, e5-small) by the model's FLOPs; meaningful for small
  studies only.
* Peak GPU memory: 16 bytes per parameter (fp32 weights, gradients and
  AdamW's two moments) plus bf16 activations (Korthikanti et al. 2022:
  ``34 x hidden + 5 x heads x length`` bytes per token and layer) of the
  texts one forward pass holds (a GradCache chunk, else the whole batch).
* Host memory: the largest eval corpus's fp32 embeddings and texts, plus two
  copies of the model. Disk: each kept model (fp32), one checkpoint per
  worker and the rankings of every run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from results.plan import estimate_seconds, estimate_steps
from vocabulary.config import RunConfig, StudyConfig
from vocabulary.datasets import dataset_info
from vocabulary.model_specs import is_bm25_spec
from vocabulary.sources import parse_source
from vocabulary.strategies import strategy

#: (name, bf16 dense peak FLOP/s): the card the hours are stated for.
REFERENCE_GPU = ("NVIDIA H100 SXM", 989e12)
UTILISATION = 0.30


def gpu_time(hours: float) -> str:
    """Hours as a reader takes them in: minutes below one hour (a small study is not "0.0 hours")."""
    if hours < 1:
        return f"{max(1, round(hours * 60))} minute{'' if round(hours * 60) <= 1 else 's'}"
    return f"{hours:,.1f} hours"


@dataclass(frozen=True)
class ModelFacts:
    """What the estimate needs of a base model: parameters (all / without the embeddings) and its shape."""

    parameters: float
    non_embedding: float
    layers: int
    hidden: int
    heads: int


#: Known base models by spec (counted from their hub configs: vocabulary x hidden is the embedding).
MODELS: dict[str, ModelFacts] = {
    "FacebookAI/xlm-roberta-base": ModelFacts(278e6, 86e6, 12, 768, 12),
    "xlm-roberta-base": ModelFacts(278e6, 86e6, 12, 768, 12),
    "sentence-transformers/LaBSE": ModelFacts(471e6, 86e6, 12, 768, 12),
    "setu4993/LaBSE": ModelFacts(471e6, 86e6, 12, 768, 12),
    "intfloat/multilingual-e5-base": ModelFacts(278e6, 86e6, 12, 768, 12),
    "intfloat/multilingual-e5-small": ModelFacts(118e6, 21e6, 12, 384, 12),
    "embedded:e5-small": ModelFacts(118e6, 21e6, 12, 384, 12),
}
#: e5-small, the model results.plan's CPU seconds were measured with.
_CPU_REFERENCE = MODELS["embedded:e5-small"]
#: Typical (query, passage) token lengths per training source or eval set, before ``max_length``.
TOKENS: dict[str, tuple[int, int]] = {
    "mmarco": (12, 96), "xquad": (16, 40), "miracl-train": (14, 140), "file": (16, 128), "flores": (40, 40),
    "ntrex": (40, 40), "xquad-r": (16, 40), "afriqa": (16, 160), "miracl": (14, 140), "ciral": (14, 300),
}
_DEFAULT_TOKENS = (16, 128)
#: Passages of AfriQA's Wikipedia collection (an ``EvalSpec.corpus``): assumed the size of DPR's 100-word
#: English Wikipedia split (21M), which masakhane_wiki_100 follows; its own count needs the download.
COLLECTION_PASSAGES = 21_000_000
#: Sources whose pairs carry a hard negative.
_WITH_NEGATIVES = frozenset({"mmarco", "miracl-train", "file"})
#: Bytes of a stored ranking line (query id, passage id, rank, score) and of a passage's text in memory.
_RANKING_LINE_BYTES = 40
_PASSAGE_TEXT_BYTES = 800
GB = 1e9


@dataclass(frozen=True)
class Cost:
    """A study's estimated cost (see the module docstring for how each figure is derived)."""

    runs: int
    training_runs: int
    steps: int
    tokens: float
    flops: float
    gpu: str
    utilisation: float
    gpu_hours: float
    cpu_hours: float
    peak_gpu_memory_gb: float
    peak_host_memory_gb: float
    disk_gb: float
    unknown_models: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def gpu_summary(self) -> str:
        """One line for the setup form: hours on the reference GPU, peak memory per run, disk."""
        if self.unknown_models and not self.flops:
            return f"GPU plan: not estimated ({', '.join(self.unknown_models)}: model size unknown)"
        return (f"GPU plan: about {gpu_time(self.gpu_hours)} on one {self.gpu} ({self.utilisation:.0%} of its bf16 "
                f"peak, within a factor of 2); per run {self.peak_gpu_memory_gb:.1f} GB GPU and "
                f"{self.peak_host_memory_gb:.1f} GB host memory; {self.disk_gb:.1f} GB disk")

    def lines(self) -> list[str]:
        """The plan as text, one figure a line."""
        lines = [
            f"runs: {self.runs} ({self.training_runs} training, {self.runs - self.training_runs} evaluation-only)",
            f"training steps: {self.steps:,} in all",
            f"tokens encoded: {self.tokens:.3g} ({self.flops:.3g} FLOPs)",
            f"GPU hours: {self.gpu_hours:,.1f} ({gpu_time(self.gpu_hours)}) on one {self.gpu} at {self.utilisation:.0%} of its bf16 peak "
            "(within a factor of 2; early stopping only shortens it)",
            f"CPU hours: {self.cpu_hours:,.0f} on the 2-core reference machine (small studies only)",
            f"peak memory per run: {self.peak_gpu_memory_gb:.1f} GB GPU, {self.peak_host_memory_gb:.1f} GB host",
            f"disk: {self.disk_gb:.1f} GB (models kept, one checkpoint, rankings)",
        ]
        if self.unknown_models:
            lines.append(f"not counted (model size unknown): {', '.join(self.unknown_models)}")
        lines.append("downloads: none (everything is shipped or local)" if not self.downloads else
                     f"downloads: {len(self.downloads)} hub files (their sizes: hybridscale data list STUDY.json)")
        lines += [f"  {url}" for url in self.downloads]
        return lines


def _source(config: RunConfig) -> str:
    return parse_source(config.train_sources[0])[0]


def pair_tokens(config: RunConfig) -> float:
    """Tokens one training pair encodes: query, positive, [hard negative], [translation]."""
    query, passage = TOKENS.get(_source(config), _DEFAULT_TOKENS)
    limit = config.max_length or 512
    query, passage = min(query, limit), min(passage, limit)
    texts = 1.0 + (1.0 if config.hard_negatives and _source(config) in _WITH_NEGATIVES else 0.0)
    texts += 1.0 if strategy(config.strategy).needs_translations else 0.0
    return query + texts * passage


def _eval_tokens(config: RunConfig) -> tuple[float, float]:
    """(tokens encoded by evaluating, the largest corpus's passages)."""
    tokens, largest = 0.0, 0.0
    for spec in config.evaluations:
        queries, passages = dataset_info(spec.dataset).eval_texts.get(spec.split, (300, 300))
        if spec.max_queries is not None:
            queries = min(queries, spec.max_queries)
        query_length, passage_length = TOKENS.get(spec.dataset, _DEFAULT_TOKENS)
        passage_tokens = min(passage_length, spec.passage_max_length)
        if spec.corpus is not None:  # AfriQA's one English collection, searched by every language's questions
            tokens += len(spec.languages) * queries * query_length + COLLECTION_PASSAGES * passage_tokens
            largest = max(largest, COLLECTION_PASSAGES)
            continue
        tokens += len(spec.languages) * (queries * query_length + passages * passage_tokens)
        largest = max(largest, passages * len(spec.languages))
    return tokens, largest


def _activation_bytes(config: RunConfig, model: ModelFacts) -> float:
    _, passage = TOKENS.get(_source(config), _DEFAULT_TOKENS)
    length = min(passage, config.max_length or 512)
    rows = config.grad_cache_chunk or config.batch_size
    per_token = model.layers * (34 * model.hidden + 5 * model.heads * length)
    return rows * length * per_token


def estimate(study: StudyConfig, downloads: list[str] | None = None,
             runs: Sequence[RunConfig] | None = None) -> Cost:
    """The cost of every run of ``study`` on :data:`REFERENCE_GPU` (see the module docstring); ``runs``: the
    study's runs when the caller has expanded it already (expanding a large study takes a while)."""
    runs = study.expand() if runs is None else runs
    steps = tokens = flops = cpu_seconds = 0.0
    gpu_memory = host_memory = disk = checkpoint = 0.0
    unknown: list[str] = []
    for run in runs:
        model = MODELS.get(run.model)
        evaluated, largest = _eval_tokens(run)
        if model is None:
            if not is_bm25_spec(run.model) and run.model not in unknown:
                unknown.append(run.model)
            continue
        run_steps = estimate_steps(run)
        trained = run_steps * run.batch_size * pair_tokens(run) if run.is_training else 0.0
        dev = _dev_tokens(run, run_steps)
        steps += run_steps
        tokens += trained + dev + evaluated
        flops += 6 * model.non_embedding * trained + 2 * model.non_embedding * (dev + evaluated)
        cpu_seconds += estimate_seconds(run, "cpu") * model.non_embedding / _CPU_REFERENCE.non_embedding
        weights = 4 * model.parameters
        if run.is_training:
            gpu_memory = max(gpu_memory, 4 * weights + _activation_bytes(run, model))
            checkpoint = max(checkpoint, 4 * weights)
            disk += weights if run.keep_model else 0.0
        else:
            gpu_memory = max(gpu_memory, weights)
        host_memory = max(host_memory, 2 * weights + largest * (4 * model.hidden + _PASSAGE_TEXT_BYTES))
        queries = sum(dataset_info(s.dataset).eval_texts.get(s.split, (300, 300))[0] * len(s.languages)
                      for s in run.evaluations)
        disk += queries * run.top_k * _RANKING_LINE_BYTES
    name, peak = REFERENCE_GPU
    return Cost(
        runs=len(runs), training_runs=sum(r.is_training for r in runs), steps=int(steps), tokens=tokens, flops=flops,
        gpu=name, utilisation=UTILISATION, gpu_hours=flops / (peak * UTILISATION) / 3600,
        cpu_hours=cpu_seconds / 3600, peak_gpu_memory_gb=gpu_memory / GB, peak_host_memory_gb=host_memory / GB,
        disk_gb=(disk + checkpoint) / GB, unknown_models=unknown, downloads=list(downloads or []),
    )


def _dev_tokens(config: RunConfig, steps: int) -> float:
    """Tokens of a run's dev-loss evaluations over the whole budget (every ``dev_every`` steps and the last)."""
    if not config.is_training or config.dev_every is None:
        return 0.0
    info = dataset_info(_source(config))
    groups = config.dev_size if config.holds_out_dev else info.train_groups.get(info.dev_split or "", 0)
    evaluations = math.ceil(steps / config.dev_every)
    return evaluations * groups * len(config.train_languages) * pair_tokens(config)

"""Batch samplers for hybrid batch training (arXiv 2408.10536) and its baselines.

The strategy of a run decides the *language composition* of each batch; the
in-batch negatives of InfoNCE make that composition the whole experiment.
What each strategy means for a run comes worked out in its
:class:`vocabulary.batching.BatchPlan` (from the strategy table, with the
run's alpha resolved to a share); here is one policy class per batching rule: :class:`ShareBatches` (X-X on a
strategy's share of the steps, else X-Y, optionally with each passage's
translation for a parallel loss term) and :class:`MixedBatches` (languages
drawn per pair).

Training-set size
    ``train_size`` N counts parallel question *groups*: with L languages that
    is up to N x L (question, passage) pairs. For one ``data_seed``, a fixed
    permutation of all usable groups is drawn from that seed alone, and size N
    takes its first N groups, so the subsets are nested (size 500 is inside
    size 1000) and a scaling curve measures data size, not data choice.
    ``seed`` drives everything else (batch order, languages, the schedule).

Budget
    The run's number of steps comes from :func:`vocabulary.budget.total_steps`
    (epochs of the subset, a fixed number of steps or of pairs). Each batch
    draws ``batch_size`` groups from a shuffled pass over the subset; when the
    pass runs out a new shuffled pass is appended.

The share of monolingual batches is exact, not a coin flip per batch
    Of a run's S steps exactly ``round(share x S)`` (half up) are X-X, at
    positions drawn by a stratified schedule: the steps are cut into that
    many consecutive strata and one X-X step is drawn uniformly inside each,
    so every stretch of the run has about the right share (a coin flip left
    a 3-step hybrid run all cross-lingual). The schedule is a function of
    ``seed`` and S alone (its own random stream), so a resumed run keeps it,
    and share 0 / 1 draw exactly the batches of ``cross`` / ``mono``. Steps
    beyond S (inspecting more batches than a run takes) repeat the rule in
    further blocks of S.

No two pairs of a batch share a positive passage
    A passage is identified by its source id, and also by its normalised text
    (:func:`vocabulary.records.content_id`: NFC, whitespace collapsed,
    casefolded, per language). Groups whose positives are the same passage in
    one of the run's languages, directly or through a chain of such groups,
    form one *passage cluster*, and a batch takes at most one group per
    cluster. So a batch never holds one passage twice as a positive in any
    language, and never a translation of a pair's own positive either (in
    cross-lingual batches, in mono ones and among the contrastive
    translations alike). Clusters rather than pairwise checks make a full
    batch exist exactly when the subset has ``batch_size`` clusters, which the
    sampler checks up front (:class:`SamplingError`, one line), so drawing
    never gets stuck. On XQuAD's 698 training groups (several questions share
    an answer sentence) there are 370 clusters; a subset of 150 has ~130.

Several sources
    A run with several training sources draws each batch from one of them:
    in proportion to their sizes (exactly: of every block of S steps each
    source gets its largest-remainder share, at positions drawn from the
    seed, as sentence-transformers' proportional sampler gives each dataset
    its number of batches per epoch) or in turn (``round_robin``). The run's
    size is split across them in proportion (:func:`vocabulary.sources.split_size`).
    A monolingual source (MIRACL train, or one with a single run language)
    answers a cross-lingual step with an X-X batch, and the sampler says so
    (:attr:`BatchSampler.notes`, logged by the trainer) instead of failing.

Hard negatives
    Where the source gives each group a negative passage per language and
    ``hard_negatives`` is on, each pair carries its group's negative in its
    passage language (the paper's triplets); a subset where only some groups
    have them is refused rather than mixing triplets and pairs.

Everything is drawn from :class:`numpy.random.Generator` instances owned by
the sampler, so the seeds fix the batches, and :meth:`BatchSampler.state_dict`
(plain JSON values) lets a resumed run continue with exactly the batches it
would have seen.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np

from engine.data.stream import StreamedTrainingSet, TooFewGroups
from vocabulary.batching import BatchPlan
from vocabulary.budget import dev_batch_count, mono_batch_count, steps_per_epoch
from vocabulary.records import ParallelGroup, TrainingPair, TrainingSet, content_id
from vocabulary.sources import split_size

#: A training source: held in memory, or read lazily (mMARCO, MIRACL train, a user's file).
Source = TrainingSet | StreamedTrainingSet

log = logging.getLogger(__name__)

__all__ = [
    "Batch", "BatchSampler", "SamplingError", "dev_batches", "describe_batches", "passage_clusters",
    "steps_per_epoch", "training_subset",
]

BatchKind = Literal["mono", "cross", "multi"]

#: Separate random streams for the subset permutation, the batch draws and the mono/cross
#: schedule, so the subset depends on the data seed only and none depends on how many batches were drawn.
_SUBSET_STREAM = 0
_BATCH_STREAM = 1
_SCHEDULE_STREAM = 2
_SOURCE_STREAM = 3
#: The seed of a run's fixed dev batches: the same for every size and seed, so dev losses compare.
DEV_SEED = 0


class SamplingError(ValueError):
    """The training set cannot give the batches a run asks for."""


@dataclass(frozen=True)
class Batch:
    """One training batch: pairs from distinct passage clusters, and the batch's kind.

    ``translations`` is filled for ``contrastive`` runs only: for pair i, the
    positive passage of the same group in ``translation_languages[i]`` (which
    differs from the pair's passage language), with its id.
    """

    kind: BatchKind
    pairs: tuple[TrainingPair, ...]
    translations: tuple[str, ...] = ()
    translation_languages: tuple[str, ...] = ()
    translation_ids: tuple[str, ...] = ()

    @property
    def queries(self) -> list[str]:
        return [p.query for p in self.pairs]

    @property
    def passages(self) -> list[str]:
        return [p.passage for p in self.pairs]

    @property
    def passage_ids(self) -> list[str]:
        return [p.passage_id for p in self.pairs]

    @property
    def negatives(self) -> list[str]:
        """The pairs' hard negatives, in pair order (empty where the run has none)."""
        return [p.negative for p in self.pairs if p.negative is not None]

    @property
    def negative_ids(self) -> list[str]:
        return [p.negative_id for p in self.pairs if p.negative is not None]

    def describe(self, index: int) -> dict[str, Any]:
        """A JSON-able summary (what ``hybridscale inspect-batches`` prints)."""
        summary: dict[str, Any] = {
            "index": index,
            "kind": self.kind,
            "query_langs": [p.query_language for p in self.pairs],
            "passage_langs": [p.passage_language for p in self.pairs],
            "groups": [p.group for p in self.pairs],
            "passage_ids": self.passage_ids,
        }
        if self.translation_languages:
            summary["translation_langs"] = list(self.translation_languages)
            summary["translation_ids"] = list(self.translation_ids)
        if self.negatives:
            summary["negative_ids"] = self.negative_ids
        return summary


def training_subset(
    training_set: Source, size: int, seed: int, languages: Sequence[str] | None = None, min_languages: int = 1
) -> tuple[ParallelGroup, ...]:
    """The first ``size`` groups of the seed's fixed permutation of the usable groups.

    Usable groups have at least ``min_languages`` of ``languages`` (default: the
    set's languages); strategies that pair a query with a passage in another
    language need 2. The permutation depends on the (data) seed only, which is
    what makes subsets nested. A streamed source permutes with a buffered
    shuffle of its own order (:mod:`engine.data.stream`) and reads only what
    the size needs.
    """
    if isinstance(training_set, StreamedTrainingSet):
        try:
            return training_set.subset(size, seed, min_languages)
        except TooFewGroups as exc:
            raise SamplingError(str(exc)) from None
    wanted = set(training_set.languages if languages is None else languages)
    usable = [g for g in training_set.groups if len(wanted.intersection(g.languages)) >= min_languages]
    if size > len(usable):
        raise SamplingError(
            f"train_size {size} is larger than the {len(usable)} question groups of "
            f"{training_set.name}; use at most {len(usable)}"
        )
    order = _rng(seed, _SUBSET_STREAM).permutation(len(usable))
    return tuple(usable[i] for i in order[:size])


def passage_clusters(groups: Sequence[ParallelGroup], languages: Sequence[Sequence[str]]) -> list[int]:
    """A cluster number per group: groups sharing a positive passage, directly or through others, share one.

    Two positives are the same passage when, in one language of
    ``languages[i]`` (the run's languages group i has), they have the same id
    or the same normalised text. A union-find over those keys.
    """
    parent = list(range(len(groups)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, str], int] = {}
    for i, (group, langs) in enumerate(zip(groups, languages)):
        for lang in langs:
            for key in ((lang, group.passage_id(lang)), (lang, content_id(lang, group.passages[lang]))):
                if key in owner:
                    parent[root(i)] = root(owner[key])
                else:
                    owner[key] = i
    roots = [root(i) for i in range(len(groups))]
    numbers = {r: n for n, r in enumerate(dict.fromkeys(roots))}
    return [numbers[r] for r in roots]


class _GroupPass:
    """The shuffled pass over a subset's groups that batches are taken from.

    A batch takes the first ``batch_size`` eligible groups of the pass whose
    passage cluster it does not hold yet; the others (lacking the batch's
    language, or sharing a positive with a taken group) stay for a later
    batch. When the pass runs short, a new shuffled pass is appended (without
    a second copy of a group still waiting, so the pass never grows).
    """

    def __init__(self, clusters: Sequence[int], batch_size: int, rng: np.random.Generator):
        self._clusters = clusters
        self._batch_size = batch_size
        self._rng = rng
        self.order: list[int] = []

    def take(self, eligible: Callable[[int], bool]) -> list[int]:
        taken: list[int] = []
        held: set[int] = set()
        position = 0
        while len(taken) < self._batch_size:
            if position == len(self.order):
                waiting = set(self.order)
                fresh = [int(i) for i in self._rng.permutation(len(self._clusters)) if i not in waiting]
                if not fresh:  # BatchSampler's up-front check makes this unreachable
                    raise SamplingError(f"cannot fill a batch of {self._batch_size} without a shared positive passage")
                self.order.extend(fresh)
            index = self.order[position]
            if self._clusters[index] not in held and eligible(index):
                taken.append(index)
                held.add(self._clusters[index])
                del self.order[position]
            else:
                position += 1
        return taken


class _ShareSchedule:
    """Which steps are monolingual: exactly ``mono_batch_count(share, S)`` per block of S steps, stratified.

    Block b's strata are ``[m S / M, (m + 1) S / M)`` (integer bounds, each at
    least one step since M <= S); one mono step is drawn uniformly in each,
    from a stream of (seed, b) alone.
    """

    def __init__(self, share: float, steps: int, seed: int):
        self._share = share
        self._steps = steps
        self._seed = seed
        self._block: tuple[int, frozenset[int]] = (-1, frozenset())

    def is_mono(self, index: int) -> bool:
        block, offset = divmod(index, self._steps)
        if self._block[0] != block:
            self._block = (block, self._mono_steps(block))
        return offset in self._block[1]

    def _mono_steps(self, block: int) -> frozenset[int]:
        steps, mono = self._steps, mono_batch_count(self._share, self._steps)
        if mono == 0:
            return frozenset()
        rng = np.random.default_rng([_SCHEDULE_STREAM, self._seed, block])
        bounds = [m * steps // mono for m in range(mono + 1)]
        return frozenset(int(low + rng.integers(high - low)) for low, high in zip(bounds, bounds[1:]))


@dataclass
class _Subset:
    """A run's training groups, each with the training languages it has, and the shared batch RNG."""

    name: str
    groups: tuple[ParallelGroup, ...]
    languages: list[tuple[str, ...]]
    batch_size: int
    rng: np.random.Generator
    groups_pass: _GroupPass
    with_negatives: bool

    def pair(self, index: int, query_language: str, passage_language: str) -> TrainingPair:
        pair = self.groups[index].pair(query_language, passage_language)
        if pair.negative is None or self.with_negatives:
            return pair
        return dataclasses.replace(pair, negative=None, negative_id=None)


class ShareBatches:
    """``by_share`` batching: X-X on the schedule's steps (one language drawn per batch), else X-Y
    (per pair a query language and another passage language of its group).

    With ``with_translations``, every X-Y pair also carries its positive passage in a third
    language choice (one differing from the pair's passage language), for a loss term over
    parallel passages. A ``monolingual`` source answers an X-Y step with an X-X batch and
    counts it in ``mono_for_cross``.
    """

    def __init__(self, subset: _Subset, schedule: _ShareSchedule, mono_languages: tuple[str, ...],
                 with_translations: bool, monolingual: bool = False):
        self.subset = subset
        self.schedule = schedule
        self.mono_languages = mono_languages
        self.with_translations = with_translations
        self.monolingual = monolingual
        self.mono_for_cross = 0

    def next_batch(self, index: int) -> Batch:
        subset, rng = self.subset, self.subset.rng
        mono = self.schedule.is_mono(index)
        if not mono and self.monolingual:
            if not self.mono_for_cross:
                log.warning("%s is monolingual: its cross-lingual steps get X-X batches", self.subset.name)
            self.mono_for_cross += 1
            mono = True
        if mono:
            lang = _choice(rng, self.mono_languages)
            indices = subset.groups_pass.take(lambda i: lang in subset.languages[i])
            return Batch("mono", tuple(subset.pair(i, lang, lang) for i in indices))
        indices = subset.groups_pass.take(lambda i: len(subset.languages[i]) >= 2)
        pairs = []
        for i in indices:
            langs = subset.languages[i]
            query_lang = _choice(rng, langs)
            pairs.append(subset.pair(i, query_lang, _choice(rng, [x for x in langs if x != query_lang])))
        if not self.with_translations:
            return Batch("cross", tuple(pairs))
        translation_langs = tuple(
            _choice(rng, [x for x in subset.languages[i] if x != pair.passage_language])
            for i, pair in zip(indices, pairs)
        )
        groups = [subset.groups[i] for i in indices]
        return Batch(
            "cross", tuple(pairs),
            translations=tuple(g.passages[lang] for g, lang in zip(groups, translation_langs)),
            translation_languages=translation_langs,
            translation_ids=tuple(g.passage_id(lang) for g, lang in zip(groups, translation_langs)),
        )


class MixedBatches:
    """``mixed`` batching: every pair draws its query and passage language independently (they may be equal)."""

    def __init__(self, subset: _Subset):
        self.subset = subset

    def next_batch(self, _index: int) -> Batch:
        subset, rng = self.subset, self.subset.rng
        indices = subset.groups_pass.take(lambda i: len(subset.languages[i]) >= 1)
        pairs = []
        for i in indices:
            langs = subset.languages[i]
            pairs.append(subset.pair(i, _choice(rng, langs), _choice(rng, langs)))
        return Batch("multi", tuple(pairs))


class _SourceSchedule:
    """Which source each step draws from: ``proportional`` (exact shares per block of S steps, at
    seeded positions) or ``round_robin``; a function of (seed, step) alone, so a resumed run keeps it."""

    def __init__(self, shares: Sequence[int], steps: int, seed: int, policy: str):
        self._shares = list(shares)
        self._steps = steps
        self._seed = seed
        self._policy = policy
        self._block: tuple[int, list[int]] = (-1, [])

    def source(self, index: int) -> int:
        if len(self._shares) == 1:
            return 0
        if self._policy == "round_robin":
            return index % len(self._shares)
        block, offset = divmod(index, self._steps)
        if self._block[0] != block:
            counts = split_size(self._steps, self._shares)
            order = [source for source, count in enumerate(counts) for _ in range(count)]
            rng = np.random.default_rng([_SOURCE_STREAM, self._seed, block])
            self._block = (block, [order[i] for i in rng.permutation(len(order))])
        return self._block[1][offset]


def _is_monolingual(source: Source, wanted: set[str]) -> bool:
    """Whether the source can only make X-X batches for the run: declared so, or one run language."""
    declared = isinstance(source, StreamedTrainingSet) and source.monolingual
    return declared or len(wanted.intersection(source.languages)) < 2


def _sources(training_set: Source | Sequence[Source]) -> list[Source]:
    return [training_set] if isinstance(training_set, (TrainingSet, StreamedTrainingSet)) else list(training_set)


def source_sizes(train_size: int, sources: Sequence[Source]) -> list[int]:
    """How many of the run's ``train_size`` groups each source gives (in proportion to the source sizes)."""
    if len(sources) == 1:
        return [train_size]
    totals = [source.total() if isinstance(source, StreamedTrainingSet) else len(source.groups) for source in sources]
    return split_size(train_size, totals)


class BatchSampler:
    """Endless, seeded, resumable stream of batches for one run's plan (:func:`vocabulary.batching.batch_plan`).

    ``training_set`` is one source or the run's list of them (see "Several sources" above).
    """

    def __init__(self, plan: BatchPlan, training_set: Source | Sequence[Source]):
        sources = _sources(training_set)
        offered = {lang for source in sources for lang in source.languages}
        missing = [lang for lang in plan.languages if lang not in offered]
        if missing:
            names = ", ".join(source.name for source in sources)
            raise SamplingError(
                f"train_languages {', '.join(missing)} are not in {names} "
                f"(it has {', '.join(sorted(offered))}); choose among those"
            )
        self.strategy = plan.strategy
        self.batch_size = plan.batch_size
        self.names = [source.name for source in sources]
        self.shares = source_sizes(plan.train_size, sources)
        self.steps_per_epoch = steps_per_epoch(plan.train_size, len(plan.languages), plan.batch_size)
        self.total_steps = plan.total_steps
        self._rng = _rng(plan.seed, _BATCH_STREAM)
        schedule = _ShareSchedule(plan.mono_share, self.total_steps, plan.seed)
        self._policies: list[ShareBatches | MixedBatches] = []
        self._passes: list[_GroupPass] = []
        #: Every source's subset, in source order, and a passage-cluster number per group (distinct across sources).
        self.groups: tuple[ParallelGroup, ...] = ()
        self.clusters: list[int] = []
        self.uses_negatives = False
        for source, size in zip(sources, self.shares):
            policy = self._policy_for(plan, source, size, schedule)
            self._policies.append(policy)
            self.uses_negatives = self.uses_negatives or policy.subset.with_negatives
        self._sources = _SourceSchedule(self.shares, self.total_steps, plan.seed, plan.source_sampling)
        self._drawn = 0

    def _policy_for(self, plan: BatchPlan, source: Source, size: int,
                    schedule: _ShareSchedule) -> ShareBatches | MixedBatches:
        """The batching policy of one source: its subset, passage clusters, checks and negatives."""
        wanted = set(plan.languages)
        monolingual = _is_monolingual(source, wanted)
        minimum = 1 if monolingual else plan.min_languages
        groups = training_subset(source, size, plan.subset_seed, plan.languages, minimum)
        languages = [tuple(lang for lang in g.languages if lang in wanted) for g in groups]
        clusters = passage_clusters(groups, languages)
        self._check_fills(source.name, groups, clusters, languages, lambda langs: len(langs) >= minimum, "")
        group_pass = _GroupPass(clusters, plan.batch_size, self._rng)
        with_negatives = plan.hard_negatives and self._check_negatives(source.name, groups, languages)
        subset = _Subset(source.name, groups, languages, plan.batch_size, self._rng, group_pass, with_negatives)
        self._passes.append(group_pass)
        offset = max(self.clusters, default=-1) + 1
        self.groups += groups
        self.clusters += [offset + c for c in clusters]
        if plan.batching == "mixed":
            return MixedBatches(subset)
        drawn = plan.mono_share or monolingual
        mono_languages = tuple(sorted({lang for langs in languages for lang in langs})) if drawn else ()
        for lang in mono_languages:
            self._check_fills(source.name, groups, clusters, languages, lambda langs, lang=lang: lang in langs, lang)
        return ShareBatches(subset, schedule, mono_languages, plan.with_translations, monolingual)

    def _check_fills(self, name: str, groups: Sequence[ParallelGroup], clusters: Sequence[int],
                     languages: list[tuple[str, ...]], eligible: Callable[[tuple[str, ...]], bool],
                     language: str) -> None:
        """Refuse a subset whose eligible groups span fewer passage clusters than a batch needs."""
        available = len({c for c, langs in zip(clusters, languages) if eligible(langs)})
        if available >= self.batch_size:
            return
        where = f" {language} batch" if language else " batch"
        raise SamplingError(
            f"batch_size {self.batch_size} needs {self.batch_size} distinct question groups whose positive passages "
            f"all differ, but train_size {len(groups)} of {name} gives {available} for a{where} (questions "
            f"sharing an answer passage count once); lower batch_size to at most {available} or raise train_size"
        )

    def _check_negatives(self, name: str, groups: Sequence[ParallelGroup], languages: list[tuple[str, ...]]) -> bool:
        """True when every group has a hard negative in each of its run languages; False when none has one."""
        if not any(g.negatives for g in groups):
            return False
        lacking = sum(any(lang not in g.negatives for lang in langs) for g, langs in zip(groups, languages))
        if lacking:
            raise SamplingError(
                f"{lacking} of the {len(groups)} question groups of {name} lack a hard negative in one of "
                "the training languages; use a source with a negative for every pair, or set hard_negatives false"
            )
        return True

    @property
    def notes(self) -> list[str]:
        """One line per monolingual source that answered cross-lingual steps with X-X batches so far."""
        return [
            f"{policy.subset.name} is monolingual: it answered {policy.mono_for_cross} cross-lingual steps with "
            "X-X batches"
            for policy in self._policies if isinstance(policy, ShareBatches) and policy.mono_for_cross
        ]

    # ---- drawing ----------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.next_batch()

    def next_batch(self) -> Batch:
        batch = self._policies[self._sources.source(self._drawn)].next_batch(self._drawn)
        self._drawn += 1
        return batch

    # ---- resuming ---------------------------------------------------------
    @property
    def batches_drawn(self) -> int:
        return self._drawn

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the stream exactly (plain Python values)."""
        state: dict[str, Any] = {
            "rng": copy.deepcopy(self._rng.bit_generator.state),
            "pass": list(self._passes[0].order),
            "drawn": self._drawn,
        }
        if len(self._passes) > 1:
            state["passes"] = [list(group_pass.order) for group_pass in self._passes]
            state["mono_for_cross"] = [getattr(p, "mono_for_cross", 0) for p in self._policies]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = copy.deepcopy(state["rng"])
        for group_pass, order in zip(self._passes, state.get("passes", [state["pass"]])):
            group_pass.order = [int(i) for i in order]
        for policy, count in zip(self._policies, state.get("mono_for_cross", [])):
            if isinstance(policy, ShareBatches):
                policy.mono_for_cross = int(count)
        self._drawn = int(state["drawn"])


def describe_batches(plan: BatchPlan, training_set: Source | Sequence[Source], n: int) -> list[dict[str, Any]]:
    """The first ``n`` batches a run would train on, as JSON-able dicts."""
    sampler = BatchSampler(plan, training_set)
    return [sampler.next_batch().describe(index) for index in range(n)]


def dev_batches(plan: BatchPlan, dev_set: TrainingSet) -> list[Batch]:
    """A run's fixed dev batches: its batching rule over every usable group of the dev split.

    They depend on the strategy (and alpha), the languages and the batch
    size, never on the run's size or seeds (:data:`DEV_SEED`), so the dev
    losses of a study's runs at one batch size are computed on the same
    batches; :func:`vocabulary.budget.dev_batch_count` of them, with the
    exact mono share of a hybrid run.
    """
    wanted = set(plan.languages)
    usable = sum(len(wanted.intersection(g.languages)) >= plan.min_languages for g in dev_set.groups)
    count = dev_batch_count(usable, plan.batch_size)
    dev_plan = dataclasses.replace(plan, train_size=usable, seed=DEV_SEED, subset_seed=DEV_SEED, total_steps=count)
    try:
        sampler = BatchSampler(dev_plan, dev_set)
    except SamplingError as exc:
        raise SamplingError(f"the dev split {dev_set.name}: {exc}") from None
    return [sampler.next_batch() for _ in range(count)]


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([stream, seed])


def _choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]

"""Batch sampler: composition, exact hybrid share, no shared positives, nested subsets, seeds, resuming."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from analysis.compare import RunValues
from analysis.findings import build_findings
from engine.data import load_training_set
from engine.sampling import (
    BatchSampler,
    SamplingError,
    describe_batches,
    dev_batches,
    passage_clusters,
    steps_per_epoch,
    training_subset,
)
from vocabulary.batching import batch_plan
from vocabulary.budget import mono_batch_count
from vocabulary.config import RunConfig, StudyConfig
from vocabulary.languages import PAPER_TRAIN_LANGUAGES
from vocabulary.records import ParallelGroup, TrainingSet, content_id
from vocabulary.series import series_names
from vocabulary.strategies import ALPHA, STRATEGIES, STRATEGY_NAMES, Strategy

LANGS = ("ar", "de", "en", "zh")


def make_set(n_groups: int = 60, languages: tuple[str, ...] = LANGS, name: str = "toy/train") -> TrainingSet:
    groups = tuple(
        ParallelGroup(
            id=f"g{i}",
            queries={lang: f"q{i}-{lang}" for lang in languages},
            passages={lang: f"p{i}-{lang}" for lang in languages},
        )
        for i in range(n_groups)
    )
    return TrainingSet(name=name, languages=languages, groups=groups)


def config(**changes) -> RunConfig:
    values = dict(strategy="hybrid", alpha=0.5, train_size=40, batch_size=8, train_languages=LANGS, seed=3)
    values.update(changes)
    return RunConfig(**values)


def draw(cfg: RunConfig, n: int, training_set: TrainingSet | None = None):
    sampler = BatchSampler(batch_plan(cfg), training_set or make_set())
    return [sampler.next_batch() for _ in range(n)]


def check_pair_texts(batch) -> None:
    """Every text really is its group's text in the language the pair claims."""
    for pair in batch.pairs:
        assert pair.query == f"q{pair.group[1:]}-{pair.query_language}"
        assert pair.passage == f"p{pair.group[1:]}-{pair.passage_language}"


def test_hybrid_composition_over_2000_batches():
    batches = draw(config(alpha=0.5), 2000)
    mono = [b for b in batches if b.kind == "mono"]
    cross = [b for b in batches if b.kind == "cross"]
    assert len(mono) + len(cross) == 2000
    assert 0.45 <= len(mono) / 2000 <= 0.55
    for batch in mono:
        assert len({p.query_language for p in batch.pairs} | {p.passage_language for p in batch.pairs}) == 1
    for batch in cross:
        assert all(p.query_language != p.passage_language for p in batch.pairs)
    for batch in batches:
        assert len(batch.pairs) == 8
        assert len({p.group for p in batch.pairs}) == 8
        check_pair_texts(batch)
    # Every training language shows up on both sides of cross batches.
    assert {p.query_language for b in cross for p in b.pairs} == set(LANGS)
    assert {p.passage_language for b in cross for p in b.pairs} == set(LANGS)
    assert {b.pairs[0].query_language for b in mono} == set(LANGS)


@pytest.mark.parametrize(("alpha", "kind"), [(0.0, "cross"), (1.0, "mono")])
def test_alpha_extremes_give_one_kind(alpha, kind):
    assert {b.kind for b in draw(config(alpha=alpha), 300)} == {kind}


def test_mono_and_cross_strategies():
    assert {b.kind for b in draw(config(strategy="mono"), 200)} == {"mono"}
    cross = draw(config(strategy="cross"), 200)
    assert {b.kind for b in cross} == {"cross"}
    assert all(p.query_language != p.passage_language for b in cross for p in b.pairs)


def test_multi_draws_languages_independently():
    batches = draw(config(strategy="multi"), 500)
    pairs = [p for b in batches for p in b.pairs]
    assert {b.kind for b in batches} == {"multi"}
    same = sum(p.query_language == p.passage_language for p in pairs) / len(pairs)
    # Independent uniform draws over 4 languages: P(equal) = 1/4 (4000 pairs, sd ~0.007).
    assert 0.22 <= same <= 0.28
    # Batches mix languages (a mono batch would not).
    assert sum(len({p.query_language for p in b.pairs}) > 1 for b in batches) > 490


def test_contrastive_batches_carry_a_translation_in_another_language():
    for batch in draw(config(strategy="contrastive"), 100):
        assert batch.kind == "cross" and len(batch.translations) == 8
        for pair, text, lang in zip(batch.pairs, batch.translations, batch.translation_languages):
            assert lang != pair.passage_language
            assert text == f"p{pair.group[1:]}-{lang}"


def test_no_duplicate_groups_even_across_pass_boundaries():
    # 10 groups, batch 8: every second batch straddles two shuffled passes.
    cfg = config(train_size=10, strategy="multi")
    batches = draw(cfg, 200, make_set(10))
    assert all(len({p.group for p in b.pairs}) == 8 for b in batches)
    # Each pass shows every group once: after 5 batches (40 slots = 4 passes) counts are equal.
    counts: dict[str, int] = {}
    for b in batches[:5]:
        for p in b.pairs:
            counts[p.group] = counts.get(p.group, 0) + 1
    assert set(counts.values()) == {4}


def test_subsets_are_nested_and_depend_on_seed_only():
    data = make_set(100)
    small = {g.id for g in training_subset(data, 20, seed=5)}
    large = {g.id for g in training_subset(data, 50, seed=5)}
    assert len(small) == 20 and len(large) == 50 and small < large
    assert small != {g.id for g in training_subset(data, 20, seed=6)}
    # The sampler trains on exactly that subset.
    used = {p.group for b in draw(config(train_size=20, seed=5), 50, data) for p in b.pairs}
    assert used == small


def test_groups_lacking_a_language_only_use_their_languages():
    full = make_set(30)
    partial = [
        ParallelGroup(g.id, {k: v for k, v in g.queries.items() if k != "zh" or i % 2},
                      {k: v for k, v in g.passages.items() if k != "zh" or i % 2})
        for i, g in enumerate(full.groups)
    ]
    data = TrainingSet("toy/train", LANGS, tuple(partial))
    sampler = BatchSampler(batch_plan(config(train_size=30, alpha=0.5)), data)
    batches = [sampler.next_batch() for _ in range(400)]
    # Groups skipped by zh batches wait in the pass without piling up.
    assert len(sampler.state_dict()["pass"]) <= 30
    zh_groups = {g.id for i, g in enumerate(partial) if i % 2}
    for batch in batches:
        check_pair_texts(batch)
        for pair in batch.pairs:
            if "zh" in (pair.query_language, pair.passage_language):
                assert pair.group in zh_groups
    assert any(b.kind == "mono" and b.pairs[0].query_language == "zh" for b in batches)


def test_same_seed_same_batches_other_seed_other_batches():
    first = [b.describe(i) for i, b in enumerate(draw(config(seed=1), 30))]
    again = [b.describe(i) for i, b in enumerate(draw(config(seed=1), 30))]
    other = [b.describe(i) for i, b in enumerate(draw(config(seed=2), 30))]
    assert first == again
    assert first != other


def test_resumed_sampler_continues_the_same_stream():
    cfg = config()
    straight = draw(cfg, 40)
    sampler = BatchSampler(batch_plan(cfg), make_set())
    head = [sampler.next_batch() for _ in range(17)]
    state = json.loads(json.dumps(sampler.state_dict()))  # survives a JSON/torch round trip
    resumed = BatchSampler(batch_plan(cfg), make_set())
    resumed.load_state_dict(state)
    assert resumed.batches_drawn == 17
    tail = [resumed.next_batch() for _ in range(23)]
    assert head + tail == straight


def test_size_larger_than_the_data_names_the_maximum():
    with pytest.raises(SamplingError, match=r"^train_size 2000 is larger than the 60 question groups of toy/train; use at most 60$"):
        BatchSampler(batch_plan(config(train_size=2000)), make_set())


def test_batch_larger_than_subset_and_missing_language_are_clear_errors():
    with pytest.raises(SamplingError, match="batch_size 8 needs 8 distinct question groups.*lower batch_size"):
        BatchSampler(batch_plan(config(train_size=5)), make_set())
    with pytest.raises(SamplingError, match="train_languages sw are not in toy/train"):
        BatchSampler(batch_plan(config(train_languages=("en", "sw"))), make_set())


def test_steps_per_epoch_and_total_steps():
    # 40 groups x 4 languages / batch 8 = 20 batches per epoch.
    assert steps_per_epoch(40, 4, 8) == 20
    assert BatchSampler(batch_plan(config(epochs=1.5)), make_set()).total_steps == 30
    assert BatchSampler(batch_plan(config(epochs=2.0, max_steps=7)), make_set()).total_steps == 7
    assert steps_per_epoch(41, 4, 8) == 21  # ceil(164 / 8)


def test_describe_batches_is_json_able():
    rows = describe_batches(batch_plan(config()), make_set(), 3)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert set(rows[0]) == {"index", "kind", "query_langs", "passage_langs", "groups", "passage_ids"}
    assert rows[0]["passage_ids"] == [content_id(lang, f"p{g[1:]}-{lang}")
                                      for g, lang in zip(rows[0]["groups"], rows[0]["passage_langs"])]
    assert json.loads(json.dumps(rows)) == rows
    assert rows == [b.describe(i) for i, b in enumerate(draw(config(), 3))]


# ---- no two pairs of a batch share a positive passage ---------------------------------------------
def shared_positives(batch, groups: dict[str, ParallelGroup]) -> list[tuple[int, int]]:
    """Pairs (i, j) of a batch where j's passage (or translation) is a positive of i's group in its language.

    Checked independently of the sampler: by normalised text and by passage id, in every language, so a
    batch holding a translation of a pair's own positive counts too.
    """
    def keys(group: ParallelGroup, lang: str) -> tuple[tuple[str, str, str], ...]:
        return (lang, "id", group.passage_id(lang)), (lang, "text", " ".join(group.passages[lang].split()).casefold())

    columns = [(p.group, p.passage_language) for p in batch.pairs]
    columns += [(p.group, lang) for p, lang in zip(batch.pairs, batch.translation_languages)]
    holders: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    for j, (group_id, lang) in enumerate(columns):
        for key in keys(groups[group_id], lang):
            holders.setdefault(key, []).append((j, group_id))
    clashes = set()
    for i, pair in enumerate(batch.pairs):
        own = groups[pair.group]
        for lang in own.languages:
            for key in keys(own, lang):
                clashes.update((i, j) for j, group_id in holders.get(key, ()) if group_id != pair.group)
    return sorted(clashes)


def shared_answer_set() -> TrainingSet:
    """24 groups in 12 couples; each couple's questions share one answer passage (up to case and spacing)."""
    groups = tuple(
        ParallelGroup(
            id=f"g{i}",
            queries={lang: f"q{i}-{lang}" for lang in LANGS},
            passages={lang: (f"P{i // 2}-{lang}" if i % 2 else f"p{i // 2}-{lang}  ") for lang in LANGS},
        )
        for i in range(24)
    )
    return TrainingSet("shared/train", LANGS, groups)


def test_the_check_finds_a_crafted_shared_positive():
    data = shared_answer_set()
    groups = {g.id: g for g in data.groups}
    clash = dataclasses.replace(draw(config(strategy="mono", train_size=24, batch_size=2), 1, data)[0],
                                pairs=(data.groups[0].pair("en", "en"), data.groups[1].pair("en", "en")))
    assert shared_positives(clash, groups) == [(0, 1), (1, 0)]
    # A translation of a pair's own positive in another pair's language counts as well.
    translated = dataclasses.replace(clash, kind="cross", pairs=(data.groups[0].pair("de", "en"),
                                                                 data.groups[1].pair("en", "zh")))
    assert shared_positives(translated, groups) == [(0, 1), (1, 0)]
    assert shared_positives(dataclasses.replace(clash, pairs=clash.pairs[:1]), groups) == []


def test_groups_sharing_a_positive_never_meet_in_a_batch_and_a_full_batch_needs_enough_clusters():
    data = shared_answer_set()
    groups = {g.id: g for g in data.groups}
    assert passage_clusters(data.groups, [LANGS] * 24) == [i // 2 for i in range(24)]
    for name in STRATEGY_NAMES:
        for batch in draw(config(strategy=name, train_size=24, batch_size=12), 60, data):
            assert len(batch.pairs) == 12 and shared_positives(batch, groups) == []
    with pytest.raises(SamplingError, match=r"^batch_size 13 needs 13 distinct question groups whose positive "
                                            r"passages all differ, but train_size 24 of shared/train gives 12 for a "
                                            r"batch .*lower batch_size to at most 12 or raise train_size$"):
        BatchSampler(batch_plan(config(strategy="cross", train_size=24, batch_size=13)), data)
    # Monolingual batches need enough clusters in every language: here zh only has 8 of them.
    partial = dataclasses.replace(data, groups=tuple(
        g if i < 16 else dataclasses.replace(g, queries={k: v for k, v in g.queries.items() if k != "zh"})
        for i, g in enumerate(data.groups)))
    BatchSampler(batch_plan(config(strategy="cross", train_size=24, batch_size=10)), partial)
    with pytest.raises(SamplingError, match="gives 8 for a zh batch .*lower batch_size to at most 8"):
        BatchSampler(batch_plan(config(strategy="mono", train_size=24, batch_size=10)), partial)


@pytest.fixture(scope="module")
def xquad_train() -> TrainingSet:
    return load_training_set("xquad", PAPER_TRAIN_LANGUAGES, "train")


@pytest.mark.parametrize("batch_size", [32, 100])
def test_no_batch_of_any_strategy_shares_a_positive_over_the_whole_xquad_training_set(xquad_train, batch_size):
    groups = {g.id: g for g in xquad_train.groups}
    # Several questions share an answer sentence: 698 groups, far fewer distinct English positives.
    assert len({g.passage_id("en") for g in xquad_train.groups}) == 442 < len(groups) == 698
    for name in STRATEGY_NAMES:
        cfg = RunConfig(strategy=name, alpha=0.5, train_size=698, batch_size=batch_size, seed=1)
        sampler = BatchSampler(batch_plan(cfg), xquad_train)
        batches = [sampler.next_batch() for _ in range(sampler.steps_per_epoch)]
        for batch in batches:
            assert len(batch.pairs) == batch_size
            assert shared_positives(batch, groups) == [], (name, batch_size)
        assert {b.kind for b in batches} == {"mono", "cross"} if name == "hybrid" else len(batches) > 0


def test_the_old_rule_of_distinct_groups_alone_did_let_shared_positives_in(xquad_train):
    """What the check above guards against: random batches of distinct groups often share a positive."""
    import numpy as np

    groups = list(xquad_train.groups)
    rng = np.random.default_rng(0)
    clashing = 0
    for _ in range(50):
        picked = [groups[i] for i in rng.choice(len(groups), 32, replace=False)]
        ids = [g.passage_id("en") for g in picked]
        clashing += len(set(ids)) < len(ids)
    assert clashing > 15  # about half of batch-32 draws, as issue 15 measured


# ---- the exact monolingual share ---------------------------------------------------------------------
def steps_config(steps: int, **changes) -> RunConfig:
    return config(budget="steps", steps=steps, epochs=1.0, **changes)


@pytest.mark.parametrize("steps", [3, 16, 101])
@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.75])
def test_a_hybrid_run_has_exactly_round_alpha_s_mono_batches_in_a_stratified_order(steps, alpha):
    cfg = steps_config(steps, alpha=alpha)
    kinds = [b.kind for b in draw(cfg, steps)]
    mono = math.floor(alpha * steps + 0.5)  # rounded half up: S = 3, alpha 0.5 gives 2
    assert kinds.count("mono") == mono and kinds.count("cross") == steps - mono
    bounds = [m * steps // mono for m in range(mono + 1)]
    assert [kinds[low:high].count("mono") for low, high in zip(bounds, bounds[1:])] == [1] * mono


def test_the_schedule_differs_between_seeds_but_not_between_sizes():
    first = [b.kind for b in draw(steps_config(16), 16)]
    assert first == [b.kind for b in draw(steps_config(16, train_size=20), 16)]
    assert any([b.kind for b in draw(steps_config(16, seed=seed), 16)] != first for seed in range(5))


@pytest.mark.parametrize("steps", [3, 16, 101])
def test_resuming_mid_run_keeps_the_schedule_and_the_batches(steps):
    cfg = steps_config(steps)
    straight = draw(cfg, steps)
    sampler = BatchSampler(batch_plan(cfg), make_set())
    head = [sampler.next_batch() for _ in range(steps // 2)]
    resumed = BatchSampler(batch_plan(cfg), make_set())
    resumed.load_state_dict(json.loads(json.dumps(sampler.state_dict())))
    tail = [resumed.next_batch() for _ in range(steps - steps // 2)]
    assert head + tail == straight


@pytest.mark.parametrize(("alpha", "strategy"), [(0.0, "cross"), (1.0, "mono")])
def test_alpha_0_and_1_draw_exactly_the_batches_of_cross_and_mono(alpha, strategy):
    hybrid = draw(config(alpha=alpha), 60)
    assert hybrid == draw(config(strategy=strategy), 60)


# ---- seeds -------------------------------------------------------------------------------------------
def test_data_seed_chooses_the_subset_and_seed_the_batches():
    data = make_set(100)
    subset = {g.id for g in training_subset(data, 20, seed=5)}
    fixed_data = [BatchSampler(batch_plan(config(train_size=20, seed=seed, data_seed=5)), data) for seed in (1, 2)]
    assert [{g.id for g in s.groups} for s in fixed_data] == [subset, subset]
    assert fixed_data[0].next_batch() != fixed_data[1].next_batch()
    other_data = BatchSampler(batch_plan(config(train_size=20, seed=1, data_seed=6)), data)
    assert {g.id for g in other_data.groups} != subset
    # No data_seed: the subset follows the seed, as before the setting existed.
    assert {g.id for g in BatchSampler(batch_plan(config(train_size=20, seed=5)), data).groups} == subset


# ---- hard negatives ----------------------------------------------------------------------------------
def with_negatives(data: TrainingSet, languages=LANGS) -> TrainingSet:
    groups = tuple(dataclasses.replace(g, negatives={lang: f"n{g.id[1:]}-{lang}" for lang in languages})
                   for g in data.groups)
    return dataclasses.replace(data, groups=groups)


def test_each_pair_carries_its_groups_negative_in_the_passage_language():
    data = with_negatives(make_set())
    for batch in draw(config(strategy="multi"), 20, data) + draw(config(), 20, data):
        assert len(batch.negatives) == len(batch.pairs)
        for pair in batch.pairs:
            assert pair.negative == f"n{pair.group[1:]}-{pair.passage_language}"
            assert pair.negative_id == content_id(pair.passage_language, pair.negative)
    assert "negative_ids" in draw(config(), 1, data)[0].describe(0)
    assert all(not b.negatives for b in draw(config(hard_negatives=False), 10, data))
    assert all(not b.negatives for b in draw(config(), 10))  # the source has none: off


def test_a_source_with_negatives_for_only_some_pairs_is_refused():
    partial = with_negatives(make_set(), languages=("en",))
    with pytest.raises(SamplingError, match="40 question groups of toy/train lack a hard negative in one of the "
                                            "training languages.*set hard_negatives false"):
        BatchSampler(batch_plan(config()), partial)
    assert not BatchSampler(batch_plan(config(hard_negatives=False)), partial).uses_negatives


# ---- dev batches ------------------------------------------------------------------------------------------
def test_dev_batches_are_fixed_whatever_the_size_and_seeds_and_keep_the_exact_share():
    dev = make_set(30, name="toy/dev")
    batches = dev_batches(batch_plan(config(alpha=0.5)), dev)
    assert len(batches) == 4  # ceil(30 groups / 8)
    assert [b.kind for b in batches].count("mono") == 2
    assert batches == dev_batches(batch_plan(config(alpha=0.5, train_size=20, seed=9, data_seed=3)), dev)
    assert {p.group for b in batches for p in b.pairs} <= {g.id for g in dev.groups}
    with pytest.raises(SamplingError, match="^the dev split toy/dev: batch_size 40 needs 40 distinct"):
        dev_batches(batch_plan(config(batch_size=40, train_size=40)), dev)


def test_a_strategy_that_uses_alpha_is_one_table_entry(monkeypatch):
    """A throw-away strategy (its own cross-lingual share, the hybrid rule): the table entry is all it takes."""
    entry = Strategy("tilted", "tilted", "a share α of the steps X-X, the rest X-Y, under another name",
                     "by_share", ALPHA, needs_two_languages=True, needs_translations=False, loss="info_nce")
    monkeypatch.setitem(STRATEGIES, "tilted", entry)
    study = StudyConfig("t", strategies=("mono", "tilted"), alphas=(0.25,), train_sizes=(40,), include_baseline=False,
                        template=config(strategy="mono", epochs=3.0))
    mono, tilted = study.validate().expand()
    assert (tilted.strategy, tilted.alpha, mono.alpha) == ("tilted", 0.25, None)
    plan = batch_plan(tilted)
    assert (plan.batching, plan.mono_share, plan.min_languages, plan.contrastive_weight) == ("by_share", 0.25, 2, None)
    sampler = BatchSampler(plan, make_set())
    kinds = [sampler.next_batch().kind for _ in range(plan.total_steps)]
    assert kinds.count("mono") == mono_batch_count(0.25, plan.total_steps) == 15 and kinds.count("cross") == 45
    # Its series carries the strategy and alpha, and the findings' hybrid table takes it by the table's word.
    names = series_names({"m": mono.identity(), "t": tilted.identity()})
    assert names["t"] == "tilted α=0.25 (3 epochs)" and (names["t"].strategy, names["t"].alpha) == ("tilted", 0.25)
    runs = [RunValues(names[key], 40, "0", "sw", "en", {f"q{i}": value + (i % step) / 50 for i in range(8)})
            for key, value, step in (("m", 0.2, 2), ("t", 0.3, 3))]
    [found] = build_findings("x/test", "cross", "nDCG@10", runs).languages
    assert [(c.strategy, c.baseline) for c in found.hybrid] == [(names["t"], names["m"])]

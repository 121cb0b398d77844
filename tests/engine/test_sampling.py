"""Batch sampler: composition statistics, nested subsets, determinism, resuming, bad sizes."""

from __future__ import annotations

import json

import pytest

from engine.sampling import BatchSampler, SamplingError, describe_batches, steps_per_epoch, training_subset
from vocabulary.config import RunConfig
from vocabulary.records import ParallelGroup, TrainingSet

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
    sampler = BatchSampler(cfg, training_set or make_set())
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
    sampler = BatchSampler(config(train_size=30, alpha=0.5), data)
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
    sampler = BatchSampler(cfg, make_set())
    head = [sampler.next_batch() for _ in range(17)]
    state = json.loads(json.dumps(sampler.state_dict()))  # survives a JSON/torch round trip
    resumed = BatchSampler(cfg, make_set())
    resumed.load_state_dict(state)
    assert resumed.batches_drawn == 17
    tail = [resumed.next_batch() for _ in range(23)]
    assert head + tail == straight


def test_size_larger_than_the_data_names_the_maximum():
    with pytest.raises(SamplingError, match=r"^train_size 2000 is larger than the 60 question groups of toy/train; use at most 60$"):
        BatchSampler(config(train_size=2000), make_set())


def test_batch_larger_than_subset_and_missing_language_are_clear_errors():
    with pytest.raises(SamplingError, match="batch_size 8 needs 8 distinct question groups.*lower batch_size"):
        BatchSampler(config(train_size=5), make_set())
    with pytest.raises(SamplingError, match="train_languages sw are not in toy/train"):
        BatchSampler(config(train_languages=("en", "sw")), make_set())


def test_steps_per_epoch_and_total_steps():
    # 40 groups x 4 languages / batch 8 = 20 batches per epoch.
    assert steps_per_epoch(40, 4, 8) == 20
    assert BatchSampler(config(epochs=1.5), make_set()).total_steps == 30
    assert BatchSampler(config(epochs=2.0, max_steps=7), make_set()).total_steps == 7
    assert steps_per_epoch(41, 4, 8) == 21  # ceil(164 / 8)


def test_describe_batches_is_json_able():
    rows = describe_batches(config(), make_set(), 3)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert set(rows[0]) == {"index", "kind", "query_langs", "passage_langs", "groups"}
    assert json.loads(json.dumps(rows)) == rows
    assert rows == [b.describe(i) for i, b in enumerate(draw(config(), 3))]

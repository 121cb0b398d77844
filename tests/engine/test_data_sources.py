"""The streamed training sources on real files: a user's parallel file, mMARCO's TSVs through datasets, MIRACL train."""

from __future__ import annotations

import json
import lzma
import tracemalloc
from pathlib import Path

import pytest

from engine.data import DataError, load_training_set, load_training_sources, parallel_file
from engine.data.stream import SHUFFLE_BUFFER, buffered_shuffle
from engine.sampling import BatchSampler, SamplingError, training_subset
from vocabulary.batching import batch_plan
from vocabulary.config import EvalSpec, RunConfig

FLORES = (EvalSpec("flores", ("en", "sw", "yo"), "test"),)


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _parallel_rows(groups: int, languages=("en", "de")) -> list[dict]:
    return [{"group": f"g{g}", "language": lang, "query": f"question {g} {lang}", "positive": f"answer {g} {lang}",
             "negative": f"other {g} {lang}"} for g in range(groups) for lang in languages]


# ---- the user's file ----------------------------------------------------------------------
def test_a_jsonl_and_a_tsv_file_give_the_same_groups(tmp_path):
    rows = _parallel_rows(3)
    jsonl = _write_jsonl(tmp_path / "pairs.jsonl", rows)
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("language\tgroup\tquery\tpositive\tnegative\n"
                   + "".join(f"{r['language']}\t{r['group']}\t{r['query']}\t{r['positive']}\t{r['negative']}\n"
                             for r in rows), encoding="utf-8")
    from_jsonl = list(parallel_file.read_groups(jsonl, ("en", "de"), 2))
    assert from_jsonl == list(parallel_file.read_groups(tsv, ("en", "de"), 2))
    assert [g.id for g in from_jsonl] == ["g0", "g1", "g2"]
    assert from_jsonl[1].queries == {"en": "question 1 en", "de": "question 1 de"}
    assert from_jsonl[1].negatives["de"] == "other 1 de"


@pytest.mark.parametrize("rows, message", [
    ([{"group": "a", "language": "en", "query": "q"}], "line 1: missing field 'positive'"),
    ([{"group": "a", "language": "en", "query": "q", "positive": "p"},
      {"group": "a", "language": "de", "query": "", "positive": "p"}], "line 2: empty field 'query'"),
    ([{"group": "a", "language": "en", "query": "q", "positive": "p"},
      {"group": "a", "language": "en", "query": "q2", "positive": "p2"}], "line 2: group 'a' has language 'en' twice"),
    ([{"group": "a", "language": "en", "query": "q", "positive": "p"},
      {"group": "a", "language": "de", "query": "q", "positive": "p"},
      {"group": "b", "language": "en", "query": "q", "positive": "p"},
      {"group": "b", "language": "de", "query": "q", "positive": "p"},
      {"group": "a", "language": "es", "query": "q", "positive": "p"}], "line 5: group 'a' appears again"),
    ([{"group": "a", "language": "en", "query": "q", "positive": "p"},
      {"group": "a", "language": "de", "query": "q", "positive": "p"},
      {"group": "b", "language": "en", "query": "q", "positive": "p"}], "line 3: group 'b' has one of the run's"),
    ([{"group": "a", "language": "klingon", "query": "q", "positive": "p"}], "line 1: unknown language 'klingon'"),
])
def test_a_bad_file_names_the_line_of_its_first_problem(tmp_path, rows, message):
    path = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=message):
        list(parallel_file.read_groups(path, ("en", "de", "es"), 2))


def test_a_mono_run_accepts_one_language_groups(tmp_path):
    path = _write_jsonl(tmp_path / "en.jsonl", _parallel_rows(4, ("en",)))
    assert len(list(parallel_file.read_groups(path, ("en",), 1))) == 4


def test_a_tsv_without_a_required_column_is_named(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("group\tlanguage\tquery\nA\ten\tq\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: the header lacks column 'positive'"):
        list(parallel_file.read_groups(path, ("en",), 1))


def test_a_200k_line_file_streams_in_bounded_memory_and_size_n_reads_only_its_prefix(tmp_path, monkeypatch):
    path = tmp_path / "big.jsonl.xz"
    with lzma.open(path, "wt", encoding="utf-8") as stream:
        for row in _parallel_rows(100_000):  # 200,000 lines
            stream.write(json.dumps(row) + "\n")
    read = []
    original = parallel_file._records

    def counting(file):
        for item in original(file):
            read.append(item[0])
            yield item

    monkeypatch.setattr(parallel_file, "_records", counting)
    source = load_training_set("file", ["en", "de"], "train", str(path))
    tracemalloc.start()
    subset = training_subset(source, 1_000, seed=3, min_languages=2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(subset) == 1_000
    # The buffered shuffle holds SHUFFLE_BUFFER groups; a group is complete when the next one's first line is read.
    assert max(read) <= 2 * (1_000 + SHUFFLE_BUFFER) + 1
    assert peak < 40 * 2**20
    # Nested: a smaller size is a prefix of a larger one; another data seed draws other groups.
    assert training_subset(source, 400, seed=3, min_languages=2) == subset[:400]
    assert {g.id for g in training_subset(source, 400, seed=4, min_languages=2)} != {g.id for g in subset[:400]}
    read.clear()
    tracemalloc.start()
    assert source.total() == 100_000  # a full pass, counting only
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert max(read) == 200_000 and peak < 40 * 2**20


def test_the_buffered_shuffle_is_a_permutation_and_random_within_a_small_source():
    items = list(range(50))
    shuffled = list(buffered_shuffle(items, seed=0, buffer_size=100))
    assert sorted(shuffled) == items and shuffled != items


# ---- mMARCO through datasets, on files in its upstream layout -------------------------------
def _mmarco(root: Path, queries: int = 40) -> Path:
    (root / "google/queries/train").mkdir(parents=True)
    (root / "google/collections").mkdir(parents=True)
    triples = [f"{q}\t{1000 + q}\t{5000 + q}\n" for q in range(queries)]
    triples += [f"{q}\t{1000 + q}\t{6000 + q}\n" for q in range(5)]  # a query's second triple is not used
    (root / "triples.train.ids.small.tsv").write_text("".join(triples), encoding="utf-8")
    for name, word in (("english", "what"), ("german", "was")):
        (root / f"google/queries/train/{name}_queries.train.tsv").write_text(
            "".join(f"{q}\t{word} is \"{q}\"\n" for q in range(queries + 10)), encoding="utf-8")
        (root / f"google/collections/{name}_collection.tsv").write_text(
            "".join(f"{pid}\t{word} passage {pid}\n" for pid in range(0, 7000, 1)), encoding="utf-8")
    return root


def test_mmarco_groups_are_parallel_by_id_with_the_triples_negative(tmp_path):
    root = _mmarco(tmp_path / "mmarco")
    source = load_training_set("mmarco", ["en", "de"], "train", str(root))
    groups = training_subset(source, 10, seed=0, min_languages=2)
    assert len({g.id for g in groups}) == 10
    group = groups[0]
    q = int(group.id)
    assert group.queries == {"en": f'what is "{q}"', "de": f'was is "{q}"'}  # quotes kept (QUOTE_NONE)
    assert group.passages == {"en": f"what passage {1000 + q}", "de": f"was passage {1000 + q}"}
    assert group.negatives == {"en": f"what passage {5000 + q}", "de": f"was passage {5000 + q}"}
    assert group.passage_ids["de"] == group.passage_ids["en"] == f"mmarco:{1000 + q}"
    assert training_subset(source, 5, seed=0, min_languages=2) == groups[:5]
    assert source.total() == 40
    with pytest.raises(SamplingError, match="larger than the 40 question groups"):
        training_subset(source, 41, seed=0)


def test_mmarco_names_a_missing_folder_and_an_incomplete_collection(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_training_set("mmarco", ["en"], "train", str(tmp_path / "nowhere"))
    root = _mmarco(tmp_path / "mmarco")
    (root / "google/collections/german_collection.tsv").write_text("0\tnothing\n", encoding="utf-8")
    source = load_training_set("mmarco", ["en", "de"], "train", str(root))
    with pytest.raises(DataError, match="german_collection.tsv: no passage with id"):
        training_subset(source, 3, seed=0)


# ---- several sources in one run -------------------------------------------------------------
def _run(**values) -> RunConfig:
    base = dict(strategy="hybrid", alpha=0.5, batch_size=4, budget="steps", steps=40, evaluations=FLORES)
    return RunConfig(**{**base, **values}).validate()


def test_batches_come_from_one_source_each_in_proportion_to_size(tmp_path):
    root = _mmarco(tmp_path / "mmarco")
    path = _write_jsonl(tmp_path / "pairs.jsonl", _parallel_rows(120, ("en", "de")))
    config = _run(train_dataset=[f"mmarco:{root}", f"file:{path}"], train_languages=("en", "de"), train_size=64)
    sampler = BatchSampler(batch_plan(config), load_training_sources(config))
    assert sampler.shares == [16, 48]  # 64 split 40 : 120
    sources = []
    for _ in range(40):
        batch = sampler.next_batch()
        origin = {"mmarco" if p.passage_id.startswith("mmarco:") else "file" for p in batch.pairs}
        assert len(origin) == 1
        sources.append(origin.pop())
    assert sources.count("mmarco") == 10 and sources.count("file") == 30
    round_robin = BatchSampler(batch_plan(config.__class__(**{**config.to_dict(), "source_sampling": "round_robin"})),
                               load_training_sources(config))
    kinds = ["mmarco" if round_robin.next_batch().pairs[0].passage_id.startswith("mmarco:") else "file"
             for _ in range(4)]
    assert kinds == ["mmarco", "file", "mmarco", "file"]


def test_a_monolingual_source_answers_cross_steps_with_mono_batches_and_says_so(tmp_path):
    path = _write_jsonl(tmp_path / "en.jsonl", _parallel_rows(60, ("en",)))
    config = _run(strategy="cross", train_dataset=["xquad", f"file:{path}"], train_languages=("en", "de"),
                  train_size=300, source_sampling="round_robin")
    sampler = BatchSampler(batch_plan(config), load_training_sources(config))
    kinds = [sampler.next_batch().kind for _ in range(6)]
    assert kinds == ["cross", "mono"] * 3
    assert sampler.notes == ["file:en.jsonl is monolingual: it answered 3 cross-lingual steps with X-X batches"]


def test_a_resumed_multi_source_sampler_continues_exactly(tmp_path):
    path = _write_jsonl(tmp_path / "pairs.jsonl", _parallel_rows(120, ("en", "de")))
    config = _run(train_dataset=["xquad", f"file:{path}"], train_languages=("en", "de"), train_size=200)
    first = BatchSampler(batch_plan(config), load_training_sources(config))
    for _ in range(7):
        first.next_batch()
    state = json.loads(json.dumps(first.state_dict()))
    second = BatchSampler(batch_plan(config), load_training_sources(config))
    second.load_state_dict(state)
    assert [first.next_batch().describe(0) for _ in range(5)] == [second.next_batch().describe(0) for _ in range(5)]


# ---- MIRACL train -----------------------------------------------------------------------------
def test_miracl_train_gives_sw_triplets_of_judged_passages_and_only_mono_batches(tmp_path):
    from engine.data import miracl_train

    triplets = miracl_train._triplets("sw")
    assert len(triplets) == 801  # the registry's size: queries with a judged positive and negative
    corpus = tmp_path / "corpus.jsonl"
    docids = {docid for _, _, pos, neg in triplets for docid in (pos, neg)}
    _write_jsonl(corpus, [{"docid": d, "title": "T", "text": f"maandishi {d}"} for d in sorted(docids)])
    config = _run(strategy="cross", train_dataset=f"miracl-train:{corpus}", train_languages=("sw",), train_size=40)
    (source,) = load_training_sources(config)
    assert source.monolingual
    sampler = BatchSampler(batch_plan(config), [source])
    batch = sampler.next_batch()
    assert batch.kind == "mono" and {p.query_language for p in batch.pairs} == {"sw"}
    qid = batch.pairs[0].group.split(":", 1)[1]
    _, query, pos, neg = next(t for t in triplets if t[0] == qid)
    assert (batch.pairs[0].query, batch.pairs[0].passage, batch.pairs[0].negative) == (
        query, f"maandishi {pos}", f"maandishi {neg}")
    assert sampler.notes[0].startswith("miracl-train/train is monolingual")


def test_a_huge_value_is_quoted_by_a_short_prefix(tmp_path):
    path = _write_jsonl(tmp_path / "bad.jsonl", [{"group": "a", "language": "en", "query": ["x" * 10] * 10_000,
                                                   "positive": "p"}])
    with pytest.raises(DataError, match="line 1: field 'query' must be text, got ") as refused:
        list(parallel_file.read_groups(path, ("en",), 1))
    assert len(str(refused.value)) < 250

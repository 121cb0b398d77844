"""Early stopping with patience, and the dev split held out of a source that has none (engine.data.held_out).

Real tiny encoder, real shipped MIRACL train data (it has no dev split),
real SQLite queue and worker, and the exported CSV read back from disk.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
from pathlib import Path

import pytest

from engine.data import load_dev_set, load_training_data, load_training_set, load_training_sources
from engine.data.held_out import hold_out
from engine.data.stream import StreamedTrainingSet, TooFewGroups
from engine.sampling import training_subset
from engine.train import train
from hybridscale.worker import WorkerOptions, run_worker
from storage import queue
from storage.db import open_db
from storage.export import export_csv
from storage.queries import list_runs
from tests.engine.test_train import config, dev_set, easy_set
from tests.file_reads import reads
from vocabulary.config import ConfigError, EvalSpec, RunConfig, StudyConfig


def _stop_point(dev_losses: list[tuple[int, float]], patience: int) -> int:
    """The step at which a run with ``patience`` stops, computed by hand from its dev losses."""
    best = float("inf")
    since = 0
    for step, loss in dev_losses:
        if loss < best:
            best, since = loss, 0
        else:
            since += 1
        if since >= patience:
            return step
    return dev_losses[-1][0]


def test_patience_stops_where_the_dev_loss_stopped_improving(tiny_encoder, tmp_path):
    # A learning rate this high overshoots, so the dev loss turns up well before the 12 steps.
    cfg = config(dev_every=1, select="best_dev", learning_rate=3e-2, max_steps=12, epochs=50.0)
    full = train(cfg, easy_set(), copy.deepcopy(tiny_encoder), tmp_path / "full", dev_set=dev_set())
    stopped = train(dataclasses.replace(cfg, patience=2), easy_set(), copy.deepcopy(tiny_encoder),
                    tmp_path / "stopped", dev_set=dev_set())
    expected = _stop_point(full.dev_losses, 2)
    assert expected < 12, full.dev_losses  # the setting really stops early
    assert stopped.steps == expected
    assert [s for s, _ in stopped.dev_losses] == [s for s, _ in full.dev_losses[:expected]]
    assert [v for _, v in stopped.dev_losses] == pytest.approx([v for _, v in full.dev_losses[:expected]])
    assert stopped.losses == pytest.approx(full.losses[:expected])  # the same steps up to the stop
    assert stopped.selected_step == min(stopped.dev_losses, key=lambda item: item[1])[0]
    # A resumed run that had stopped stays stopped (its history says so).
    again = train(dataclasses.replace(cfg, patience=2), easy_set(), copy.deepcopy(tiny_encoder),
                  tmp_path / "stopped", dev_set=dev_set())
    assert again.steps == expected


def test_patience_needs_a_dev_loss_and_is_part_of_the_run_id():
    with pytest.raises(ConfigError, match="patience: early stopping needs a dev loss"):
        config(patience=3).validate()
    with pytest.raises(ConfigError, match="patience: must be at least 1"):
        config(patience=0, dev_every=2).validate()
    plain = config(dev_every=2)
    assert plain.run_id == RunConfig(**{**plain.to_dict(), "dev_size": 50}).run_id  # xquad has its own dev split
    assert config(dev_every=2, patience=3).run_id != plain.run_id


def test_a_held_out_dev_split_never_meets_any_size_subset():
    data = easy_set()
    dev, rest = hold_out(data, 5, seed=3)
    assert len(dev.groups) == 5 and len(rest.groups) == 11
    assert {g.id for g in dev.groups} | {g.id for g in rest.groups} == {g.id for g in data.groups}
    for size in (2, 6, 11):
        assert not {g.id for g in training_subset(rest, size, 3)} & {g.id for g in dev.groups}
    assert hold_out(data, 5, seed=3)[0] == dev and hold_out(data, 5, seed=4)[0] != dev  # by the data seed
    with pytest.raises(TooFewGroups, match="lower dev_size"):
        hold_out(data, 16, seed=0)
    streamed = StreamedTrainingSet("stream", data.languages, read=lambda _m: iter(data.groups), size=16)
    dev, rest = hold_out(streamed, 4, seed=1)
    trained = {g.id for g in rest.subset(12, 1)}
    assert len(dev.groups) == 4 and rest.total() == 12 and not trained & {g.id for g in dev.groups}


NAMES = ("Nairobi", "Lagos", "Mombasa", "Kano", "Arusha", "Ibadan", "Kisumu", "Abuja", "Dodoma", "Enugu",
         "Tanga", "Jos", "Moshi", "Ilorin", "Nakuru", "Akure", "Eldoret", "Benin", "Malindi", "Ogbomosho",
         "Thika", "Zaria", "Lamu", "Warri", "Kitale", "Sokoto", "Garissa", "Owerri", "Meru", "Onitsha")


def _parallel_file(folder) -> str:
    """A user's parallel training file (a source without a dev split): 30 groups in en/sw."""
    lines = []
    for i, name in enumerate(NAMES):
        lines.append({"group": f"g{i}", "language": "en", "query": f"Where is {name}?",
                      "positive": f"{name} is a town by the road."})
        lines.append({"group": f"g{i}", "language": "sw", "query": f"{name} iko wapi?",
                      "positive": f"{name} ni mji karibu na barabara."})
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(path)


def _template(path: str) -> RunConfig:
    return RunConfig(model="tiny:", strategy="cross", train_size=12, train_dataset=f"file:{path}",
                     train_languages=("en", "sw"), evaluations=(EvalSpec("flores", ("en", "yo"), "test", max_queries=8),),
                     batch_size=4, max_length=32, learning_rate=3e-2, epochs=20.0, max_steps=12, dev_every=1,
                     dev_size=8, patience=1, select="best_dev", checkpoint_every=50, eval_batch_size=32)


def test_a_source_without_dev_split_gets_a_held_out_one_that_no_size_trains_on(tmp_path):
    run = _template(_parallel_file(tmp_path)).validate()
    dev = load_dev_set(run)
    (rest,) = load_training_sources(run)
    assert len(dev.groups) == 8 and rest.total() == 22
    assert not {g.id for g in dev.groups} & {g.id for g in rest.subset(22, run.subset_seed)}
    # A registry source's declared size counts the held-out groups out.
    miracl = RunConfig(strategy="mono", train_dataset="miracl-train", train_languages=("sw",), train_size=790,
                       dev_every=5, dev_size=12)
    with pytest.raises(ConfigError, match="larger than the 789 question groups"):
        miracl.validate()


def test_a_run_loads_its_source_and_draws_the_held_out_split_once(tmp_path):
    """The training sources with the split held out and the split itself come from one draw: loading them apart
    (as submit's batch check does) reads a user's file twice as often, and would resolve mMARCO's texts twice."""
    path = Path(_parallel_file(tmp_path))
    run = _template(str(path)).validate()
    with reads() as apart:
        load_training_sources(run), load_dev_set(run)
    with reads() as together:
        (rest,), dev = load_training_data(run)
    assert apart.count(path) == 4 and together.count(path) == 2  # the first group checked, then the draw's pass
    assert [g.id for g in dev.groups] == [g.id for g in load_dev_set(run).groups]
    assert rest.total() == 22 and not {g.id for g in dev.groups} & {g.id for g in rest.subset(22, run.subset_seed)}
    # A second source keeps the split a dev-loss run trains on (XQuAD's "nodev", not "all", here).
    both = dataclasses.replace(run, train_dataset=(str(run.train_dataset), "xquad"))
    (_rest, xquad), _dev = load_training_data(both)
    assert both.train_split("xquad") == "nodev"
    assert len(xquad.groups) == len(load_training_set("xquad", ["en"], "nodev").groups) \
        < len(load_training_set("xquad", ["en"], "all").groups)


def test_a_tiny_study_stops_early_and_the_csv_says_where(tmp_path):
    db = open_db(tmp_path / "stop.db")
    template = _template(_parallel_file(tmp_path))
    study = StudyConfig("early stop", strategies=("cross",), train_sizes=(12,), include_baseline=False,
                        template=template)
    queue.submit_study(db, study.validate())
    assert run_worker(db, WorkerOptions(device="cpu", exit_when_empty=True, heartbeat_s=0.2, poll_s=0.1)) == 1
    (run,) = list_runs(db)
    assert run.status == "done", run.error
    export_csv(db, tmp_path / "results.csv")
    with open(tmp_path / "results.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {r["steps_trained"] for r in rows} == {str(run.step)}
    assert run.step < run.total_steps == 12  # stopped early
    selected = {int(r["selected_step"]) for r in rows}
    assert selected == {run.step - 1}  # patience 1: the lowest dev loss was one evaluation before the stop
    assert {r["patience"] for r in rows} == {"1"}


def test_mmarco_as_the_paper_uses_it_held_out_dev_queries_hard_negatives_and_the_languages_it_has(tmp_path):
    from tests.engine.test_data_sources import _mmarco

    root = _mmarco(tmp_path / "mmarco")
    with pytest.raises(ConfigError, match="mmarco has no language 'th'; available: ar, de, en, es, fr, hi"):
        RunConfig(strategy="cross", train_dataset=f"mmarco:{root}", train_size=40).validate()
    run = RunConfig(strategy="cross", train_dataset=f"mmarco:{root}", train_languages=("en", "de"), train_size=20,
                    batch_size=4, dev_every=5, dev_size=10, patience=2, select="best_dev",
                    evaluations=(EvalSpec("flores", ("sw",), "test"),)).validate()
    dev = load_dev_set(run)
    (rest,) = load_training_sources(run)
    assert len(dev.groups) == 10 and rest.total() == 30  # sizes and the held-out split count queries
    trained = training_subset(rest, 20, run.subset_seed, min_languages=2)
    assert not {g.id for g in trained} & {g.id for g in dev.groups}
    assert all(g.negatives.keys() == {"en", "de"} for g in (*trained, *dev.groups))  # the triples' negatives

"""The Qt-free results layer's helpers: queue rows and times, the cost estimate, latest-request-wins."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from results.latest import Latest
from results.plan import (
    BACKWARD_ALL_LAYERS_S,
    EMBEDDING_UPDATE_S,
    ENCODE_PER_SECOND_CPU,
    FORWARD_S,
    GPU_SPEEDUP,
    dev_seconds,
    estimate_seconds,
    estimate_steps,
    plan,
    step_seconds,
)
from results.runs import RunTable, elapsed_seconds, eta_seconds, format_duration, rows_as_text
from storage.queries import RunView
from vocabulary.config import EvalSpec, RunConfig, StudyConfig
from vocabulary.series import base_label

NOW = dt.datetime(2026, 11, 25, 12, 0, 0)


def view(run_id: str, status: str = "running", progress: float = 0.25, started_minutes_ago: float = 10, **changes) -> RunView:
    values = dict(
        id=run_id, label=run_id, model="tiny:", strategy="mono", alpha=None, train_size=1, seed=0, status=status,
        progress=progress, phase="training", step=1, total_steps=4, loss=1.0, dev_loss=None, worker_id="w", attempts=1,
        cancel_requested=False, error=None, log_path=None, heartbeat_at=NOW,
        started_at=NOW - dt.timedelta(minutes=started_minutes_ago), finished_at=None, updated_at=NOW,
    )
    values.update(changes)
    return RunView(**values)


def test_elapsed_and_eta_extrapolate_linearly():
    run = view("a", progress=0.25, started_minutes_ago=10)
    assert elapsed_seconds(run, NOW) == 600
    assert eta_seconds(run, NOW) == pytest.approx(1800)  # 10 min for 25% -> 30 min to go
    assert eta_seconds(view("b", status="done", progress=1.0), NOW) is None
    assert elapsed_seconds(view("c", status="queued"), NOW) is None
    assert [format_duration(s) for s in (None, 59, 61, 3600 + 62)] == ["", "0:59", "1:01", "1:01:02"]


def test_run_table_merges_by_id_and_reports_what_changed():
    table = RunTable()
    assert table.merge([view("a"), view("b")]) == ([], 2)
    assert table.merge([view("b"), view("a", progress=0.5), view("c")]) == ([0], 1)
    assert [r.id for r in table.runs] == ["a", "b", "c"] and table.find("a").progress == 0.5
    assert table.changed_since() == NOW - dt.timedelta(seconds=2)
    assert table.counts() == {"running": 3}
    assert rows_as_text([["a\tb", "c\nd"]]) == "a b\tc d\n"


def test_the_loss_column_shows_the_dev_loss_beside_the_training_loss():
    from results.runs import COLUMNS

    loss = next(c for c in COLUMNS if c.title == "Loss")
    assert loss.text(view("a", loss=0.5), NOW) == "0.5000"
    assert loss.text(view("a", loss=0.5, dev_loss=0.75), NOW) == "0.5000 (dev 0.7500)"


def test_the_cost_estimate_counts_steps_and_encoded_texts():
    config = RunConfig(train_size=100, train_languages=("en", "de"), batch_size=32, max_length=64,
                       evaluations=(EvalSpec("flores", ("en", "sw"), max_queries=50),))
    assert estimate_steps(config) == 7  # ceil(100 groups x 2 languages / 32)
    all_layers = FORWARD_S + BACKWARD_ALL_LAYERS_S + EMBEDDING_UPDATE_S  # 4.8 s measured for every weight
    assert step_seconds(config) == pytest.approx(all_layers)
    texts = 2 * (50 + 204)  # two languages, capped queries + every passage
    assert estimate_seconds(config) == pytest.approx(7 * all_layers + texts / ENCODE_PER_SECOND_CPU["flores"])
    assert estimate_seconds(config, "cuda") == pytest.approx(estimate_seconds(config) / GPU_SPEEDUP)
    assert estimate_steps(dataclasses.replace(config, max_steps=3)) == 3
    # The demo's setting: embeddings frozen, top 4 of 12 layers, batch 16 -> half of 2.0 s (measured).
    demo = dataclasses.replace(config, freeze_embeddings=True, trainable_layers=4, batch_size=16)
    assert step_seconds(demo) == pytest.approx((FORWARD_S + BACKWARD_ALL_LAYERS_S / 3) / 2)
    study = StudyConfig("s", strategies=("mono", "hybrid"), alphas=(0.2, 0.8), train_sizes=(10, 20), seeds=(0,),
                        template=RunConfig(batch_size=8))
    summary = plan(study).summary()
    assert summary.startswith("7 runs (6 training + 1 evaluation-only), about ") and "CPU" in summary


def test_the_estimate_follows_the_budget_and_counts_the_dev_loss():
    fixed = RunConfig(budget="steps", steps=50, train_languages=("en", "de"), batch_size=32, max_length=64)
    assert [estimate_steps(dataclasses.replace(fixed, train_size=n)) for n in (50, 200, 600)] == [50, 50, 50]
    pairs = dataclasses.replace(fixed, budget="pairs", steps=None, pairs=3200)
    assert estimate_steps(pairs) == 100
    assert dev_seconds(fixed) == 0.0
    # Every 20 of 50 steps and after the last: 3 evaluations of ceil(210 XQuAD dev groups / 32) = 7 batches.
    watched = dataclasses.replace(fixed, dev_every=20)
    assert dev_seconds(watched) == pytest.approx(3 * 7 * FORWARD_S)
    assert estimate_seconds(watched) == pytest.approx(estimate_seconds(fixed) + 21 * FORWARD_S)
    # A run's label and a row's legend say which budget it trained with.
    assert fixed.label.endswith("50 steps")
    assert base_label({"strategy": "mono", "budget": "steps", "steps": 50}) == "mono (50 steps)"
    assert base_label({"strategy": "mono", "budget": "epochs", "epochs": 1.0, "max_steps": None}) == "mono"


def test_the_latest_request_wins_and_a_drop_silences_every_answer_on_its_way():
    latest, shown = Latest(), []
    older = latest.request()(shown.append)
    newer = latest.request()(shown.append)
    newer("new")
    older("old")  # it arrives last, but its choices are no longer shown
    assert shown == ["new"]
    pending = latest.request()(shown.append)
    latest.drop()
    pending("dropped")
    assert shown == ["new"]


def test_reads_sharing_the_current_request_are_all_delivered_until_the_next_request_or_drop():
    latest, shown = Latest(), []
    first, second = latest.current()(shown.append), latest.current()(shown.append)
    second("b")
    first("a")  # both belong to what is shown now
    assert shown == ["b", "a"]
    stale = latest.current()(shown.append)
    latest.request()
    stale("after a new request")
    later = latest.current()(shown.append)
    latest.drop()
    later("after a drop")
    assert shown == ["b", "a"]

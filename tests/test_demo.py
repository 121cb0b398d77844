"""The demo's pipeline end to end (queue, worker, CSV, plots, summary) on a tiny study, and its real settings."""

from __future__ import annotations

import csv

from PySide6 import QtGui

from hybridscale.demo import AFRIQA, FLORES, XQUAD_R, demo_study, run_study_report
from storage.db import open_db
from storage.queries import list_runs
from vocabulary.config import EvalSpec, RunConfig, StudyConfig

TINY_STUDY = StudyConfig(
    name="tiny demo",
    strategies=("mono", "hybrid"),
    train_sizes=(8, 16),
    seeds=(0,),
    template=RunConfig(
        model="tiny:", train_languages=("de", "en", "es"), batch_size=4, max_length=32, budget="steps", steps=2,
        learning_rate=1e-3, checkpoint_every=1, eval_batch_size=64,
        evaluations=(EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=8),),
    ),
)


def cells(markdown_row: str) -> list[str]:
    return [cell.strip() for cell in markdown_row.strip().strip("|").split("|")]


def test_report_pipeline_writes_database_csv_plots_and_summary(tmp_path, capsys):
    out = tmp_path / "demo"
    assert run_study_report(out, TINY_STUDY, device="cpu") == 0
    db = open_db(out / "hybridscale.db")
    runs = list_runs(db)
    assert len(runs) == 5 and {r.status for r in runs} == {"done"}

    with (out / "report.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert {r["run_id"] for r in rows} == {r.id for r in runs}
    sw = [r for r in rows if (r["setting"], r["query_language"], r["passage_language"], r["metric"])
          == ("cross", "sw", "en", "nDCG@10")]
    assert len(sw) == 5 and all(0.0 <= float(r["value"]) <= 1.0 for r in sw)

    images = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert images == ["bias_flores.png", "scaling_flores_cross.png", "scaling_flores_multi.png"]
    for name in images:
        image = QtGui.QImage(str(out / "plots" / name))
        colours = {image.pixel(x, y) for x in range(0, image.width(), 6) for y in range(0, image.height(), 6)}
        assert image.width() == 1200 and len(colours) > 15, name

    summary = (out / "summary.md").read_text()
    sections = summary.split("## ")
    assert sections[1].startswith("nDCG@10, flores/test, cross-lingual (sw / yo queries -> English passages)")
    table = [line for line in sections[1].splitlines() if line.startswith("| ")]
    assert table[0] == "| strategy | size | sw | yo |"
    assert [line.split(" | ")[:2] for line in table[1:]] == [
        ["| untrained tiny:", "0"], ["| mono (2 steps)", "8"], ["| mono (2 steps)", "16"],
        ["| hybrid α=0.5 (2 steps)", "8"], ["| hybrid α=0.5 (2 steps)", "16"]]
    by_run = {(r["strategy"], r["train_size"]): float(r["value"]) for r in sw}
    assert float(cells(table[2])[2]) == round(by_run[("mono", "8")], 4)
    assert sections[2].startswith("Language bias") and "| strategy | size | all |" in sections[2]
    bias = {(r["strategy"], r["train_size"]): float(r["value"]) for r in rows
            if (r["setting"], r["query_language"], r["metric"]) == ("multi", "all", "LangBias")}
    bias_rows = [cells(line) for line in sections[2].splitlines() if line.startswith("| hybrid")]
    assert "2 steps (budget 'steps')" in summary
    assert [(row[1], float(row[2])) for row in bias_rows] == [
        (size, round(bias[("hybrid", size)], 2)) for size in ("8", "16")]
    assert all(value > 0 for value in bias.values())  # a real rank distance, not an empty default
    assert "bias_flores.png" in summary

    capsys.readouterr()
    assert run_study_report(out, TINY_STUDY, device="cpu") == 0  # a second time reuses every finished run
    assert "0 run(s) queued, 5 already done (reused)" in capsys.readouterr().out


def test_the_real_demo_is_the_studied_question_at_cpu_size():
    study = demo_study().validate()
    template = study.template
    assert (study.strategies, study.alphas, study.seeds, study.include_baseline) == (
        ("mono", "cross", "hybrid", "contrastive"), (0.5,), (0,), True)
    assert len(study.train_sizes) == 3 and template.model == "embedded:e5-small"
    assert (template.trainable_layers, template.frozen_cache) == (4, True)
    assert template.train_languages == ("ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh")
    evaluated = {spec.dataset: spec.languages for spec in template.evaluations}
    assert {"sw", "yo"} <= set(evaluated["flores"]) and evaluated["afriqa"] == ("sw", "yo")
    assert len(demo_study(quick=True).expand()) < len(study.expand())
    # A fixed budget: every size trains 8 steps (a hybrid run exactly 4 of them monolingual), and every
    # size can fill its batches without two pairs sharing a positive passage.
    from engine.data import load_training_set
    from engine.sampling import BatchSampler

    assert (template.budget, template.steps) == ("steps", 8)
    training_set = load_training_set("xquad", template.train_languages, "train")
    for run in study.expand()[1:]:
        sampler = BatchSampler(run, training_set)
        kinds = [sampler.next_batch().kind for _ in range(sampler.total_steps)]
        expected = {"mono": 8, "cross": 0, "hybrid": 4, "contrastive": 0}[run.strategy]
        assert len(kinds) == 8 and kinds.count("mono") == expected


def test_the_demos_figures_and_summary_find_its_eval_sets_by_their_labels():
    assert [spec.label for spec in demo_study().template.evaluations] == [FLORES, AFRIQA]
    assert XQUAD_R == "xquad-r/eval (held-out articles, own sentence splitter)"  # drawn when a study has it
    assert AFRIQA == "afriqa/test (gold passages only)"

"""The demo's pipeline end to end (queue, worker, CSV, plots, summary) on a tiny study, and its real settings."""

from __future__ import annotations

import csv

from PySide6 import QtGui

from hybridscale.demo import AFRIQA, FLORES, XQUAD_R, _base_model_exposure, demo_study, run_study_report
from storage.db import open_db
from storage.queries import list_runs
from vocabulary.batching import batch_plan
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
    assert images == ["answer.png", "bias_flores.png", "scaling_flores_cross.png", "scaling_flores_multi.png"]
    for name in images:
        image = QtGui.QImage(str(out / "plots" / name))
        colours = {image.pixel(x, y) for x in range(0, image.width(), 6) for y in range(0, image.height(), 6)}
        assert image.width() == 1200 and len(colours) > 15, name

    summary = (out / "summary.md").read_text()
    answer, appendix = summary.split("## Appendix: what ran and every table")
    assert answer.splitlines()[2].startswith("## The answer: nDCG@10 on flores/test, cross setting") and "###" not in answer
    assert "2 steps (budget 'steps')" in appendix and "bias_flores.png" in appendix
    assert "Provenance: all " in appendix and " runs on torch " in appendix  # from the worker's records
    # The findings of hybridscale report: a table per language, means over seeds as the CSV has them.
    cross = summary.split("### nDCG@10 on flores/test, cross setting (higher is better)")[1].split("### ")[0]
    sw_en = cross.split("**Swahili (sw) → en**")[1].split("**")[0]
    table = [cells(line) for line in sw_en.splitlines() if line.startswith("| ")]
    assert table[0] == ["n", "mono (2 steps)", "hybrid α=0.5 (2 steps)", "best", "vs runner-up", "vs references"]
    by_run = {(r["strategy"], r["train_size"]): float(r["value"]) for r in sw}
    assert table[1][:2] == ["0 (untrained tiny:)", ""] and table[1][3] == f"{by_run[('none', '0')]:.4f}"
    assert table[2][:3] == ["8", f"{by_run[('mono', '8')]:.4f} (1 seed)", f"{by_run[('hybrid', '8')]:.4f} (1 seed)"]
    assert "Holm p" in sw_en and "Scaling fits: no fit: 2 training sizes" in sw_en
    bias = summary.split("### LangBias on flores/test, multi setting (lower is better)")[1]
    bias = bias.split("**Swahili (sw) → all languages**")[1].split("**")[0]
    values = {(r["strategy"], r["train_size"]): float(r["value"]) for r in rows
              if (r["setting"], r["query_language"], r["passage_language"], r["metric"]) == ("multi", "sw", "all", "LangBias")}
    rows_16 = [cells(line) for line in bias.splitlines() if line.startswith("| 16 |")]
    assert rows_16 and float(rows_16[0][2].split()[0]) == round(values[("hybrid", "16")], 4)
    assert all(value > 0 for value in values.values())  # a real rank distance, not an empty default

    capsys.readouterr()
    assert run_study_report(out, TINY_STUDY, device="cpu") == 0  # a second time reuses every finished run
    assert "0 run(s) queued, 5 already done (reused)" in capsys.readouterr().out


def test_the_real_demo_is_the_studied_question_at_cpu_size():
    study = demo_study().validate()
    template = study.template
    assert (study.strategies, study.alphas, study.seeds, study.include_baseline, study.include_bm25) == (
        ("mono", "cross", "hybrid", "contrastive"), (0.5,), (0, 1, 2), True, True)
    assert len(study.train_sizes) == 4 and template.model == "embedded:e5-small"
    # Every size is a different amount of data the budget can see: none beyond its steps x batch pairs.
    assert max(study.train_sizes) == template.steps * template.batch_size
    assert (template.trainable_layers, template.frozen_cache) == (1, True)
    reference = study.expand()[0]  # queued first, evaluated through the cache it fills for every later run
    assert not reference.is_training and reference.evaluates_through_frozen_cache
    assert template.train_languages == ("ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh")
    evaluated = {spec.dataset: spec.languages for spec in template.evaluations}
    assert {"sw", "yo"} <= set(evaluated["flores"]) and evaluated["afriqa"] == ("sw", "yo")
    # The primary measure (AfriQA) is read over every test question: the pilot's power came from all of them.
    assert all(spec.max_queries is None for spec in template.evaluations)
    assert len(demo_study(quick=True).expand()) < len(study.expand()) == 2 + 4 * 4 * 3
    # A fixed budget: every size trains 32 steps (a hybrid run exactly 16 of them monolingual), and every
    # size can fill its batches without two pairs sharing a positive passage.
    from engine.data import load_training_set
    from engine.sampling import BatchSampler

    assert (template.budget, template.steps) == ("steps", 32)
    training_set = load_training_set("xquad", template.train_languages, "train")
    for run in (r for r in study.expand() if r.is_training):
        sampler = BatchSampler(batch_plan(run), training_set)
        kinds = [sampler.next_batch().kind for _ in range(sampler.total_steps)]
        expected = {"mono": 32, "cross": 0, "hybrid": 16, "contrastive": 0}[run.strategy]
        assert len(kinds) == 32 and kinds.count("mono") == expected


def test_the_demos_figures_and_summary_find_its_eval_sets_by_their_labels():
    assert [spec.label for spec in demo_study().template.evaluations] == [FLORES, AFRIQA]
    assert XQUAD_R == "xquad-r/eval (held-out articles, own sentence splitter)"  # drawn when a study has it
    assert AFRIQA == "afriqa/test (gold passages only)"


def test_the_summary_says_what_the_base_model_already_saw_in_swahili():
    (line, _) = _base_model_exposure(demo_study().template.model)
    assert "MIRACL train (sw" in line and "Mr. TyDi" in line and "**yo**: none listed" in line
    assert "not zero-shot in the strict sense" in line
    assert _base_model_exposure("tiny:") == []  # a model we know nothing about gets no claim either way

"""``hybridscale template`` and ``hybridscale plan``: real study files, the real CLI, figures computed by hand."""

from __future__ import annotations

import json

import pytest

from hybridscale.cli import main
from hybridscale.demo import demo_study
from results.cost import MODELS, REFERENCE_GPU, UTILISATION, estimate, gpu_time
from storage.db import open_db
from storage.queries import list_runs
from vocabulary.config import EvalSpec, RunConfig, StudyConfig


def test_template_list_shows_the_paper_study_and_the_laptop_one(capsys):
    assert main(["template", "--list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"paper-sw-yo", "laptop"} <= set(names)


def test_the_laptop_template_is_what_the_demo_runs(capsys):
    assert main(["template", "laptop"]) == 0
    assert StudyConfig.from_json(capsys.readouterr().out) == demo_study()


def test_an_unknown_template_is_one_line_naming_the_known_ones(capsys):
    assert main(["template", "nope"]) == 2
    assert "unknown template 'nope'; use one of paper-sw-yo" in capsys.readouterr().err


def test_the_paper_template_is_the_paper_regime_minus_what_mmarco_lacks(capsys):
    assert main(["template", "paper-sw-yo"]) == 0
    study = StudyConfig.from_json(capsys.readouterr().out).validate()
    run = study.expand()[-1]
    assert run.model == "FacebookAI/xlm-roberta-base" and run.train_dataset == "mmarco"
    assert run.train_languages == ("ar", "de", "en", "es", "hi", "ru", "zh")  # no th, tr: mMARCO lacks them
    assert (run.batch_size, run.learning_rate, run.select, run.patience) == (100, 3e-5, "best_dev", 5)
    assert max(study.train_sizes) / min(study.train_sizes) >= 100 and len(study.train_sizes) >= 5
    assert set(study.strategies) == {"mono", "cross", "hybrid", "contrastive"} and len(study.seeds) == 3
    assert {e.dataset for e in run.evaluations} == {"ciral", "miracl", "afriqa", "xquad-r"}
    assert study.include_baseline and study.include_bm25 and "th and no tr" in study.notes


def test_plan_figures_are_the_stated_formulas(tmp_path, capsys):
    template = RunConfig(model="embedded:e5-small", strategy="cross", train_size=40, train_languages=("en", "de"),
                         batch_size=4, budget="steps", steps=10, max_length=64,
                         evaluations=(EvalSpec("flores", ("en",), "test"),))
    study = StudyConfig("hand", strategies=("cross",), train_sizes=(40,), include_baseline=False, template=template)
    path = tmp_path / "hand.json"
    path.write_text(study.to_json(), encoding="utf-8")
    assert main(["plan", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    n = MODELS["embedded:e5-small"].non_embedding
    trained = 10 * 4 * (16 + 40)  # steps x batch x (XQuAD query + passage tokens; no hard negatives)
    evaluated = 204 * 40 + 204 * 40  # FLORES test en: 204 queries and 204 passages of 40 tokens
    flops = 6 * n * trained + 2 * n * evaluated
    assert plan["runs"] == 1 and plan["steps"] == 10 and plan["tokens"] == trained + evaluated
    assert plan["flops"] == pytest.approx(flops)
    assert plan["gpu_hours"] == pytest.approx(flops / (REFERENCE_GPU[1] * UTILISATION) / 3600)
    assert plan["disk_gb"] > 0.4 and plan["downloads"] == []
    assert estimate(study).gpu_summary().startswith(f"GPU plan: about {gpu_time(plan['gpu_hours'])} on one NVIDIA H100")
    assert (gpu_time(0.004), gpu_time(0.5), gpu_time(53.25)) == ("1 minute", "30 minutes", "53.2 hours")


def test_the_paper_study_plans_and_submits_offline(tmp_path, capsys):
    assert main(["template", "paper-sw-yo"]) == 0
    path = tmp_path / "s.json"
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["plan", str(path)]) == 0
    text = capsys.readouterr().out
    assert "GPU hours" in text and "NVIDIA H100" in text and "hf://" in text or "huggingface" in text
    assert main(["plan", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    study = StudyConfig.from_json(path.read_text(encoding="utf-8"))
    assert plan["runs"] == len(study.expand()) == 4 * 6 * 3 + 2
    assert 1 < plan["gpu_hours"] < 168 and plan["downloads"]  # a week on one GPU; mMARCO, CIRAL, ... from the hub
    assert estimate(study).runs == plan["runs"]
    db = tmp_path / "q.db"
    assert main(["--db", str(db), "submit", str(path)]) == 0
    assert len(list_runs(open_db(db))) == plan["runs"]

"""``hybridscale demo``: a real, small study on the embedded model, headless.

The demo is designed for a 2-core laptop CPU from measured costs
(bench/RESULTS.md, "The demo"): the embeddings and the lower 8 of 12 layers
frozen and served from the frozen-prefix cache (``frozen_cache``), so after
the study's first runs each run pays only for its top 4 layers, in training
and in evaluation; batches of 16 pairs of at most 64 tokens; a fixed budget of
8 optimiser steps per run at every size (budget ``steps``: every run gets the
same compute, so a curve measures what more distinct training data buys, not
more updates); evaluated zero-shot on sw and yo only (FLORES and AfriQA, full
corpora, passages at their own length). What it cannot hold in about 15
minutes there, measured: three seeds at four sizes (48 runs); it runs the
four strategies at three sizes with one seed, so it shows curves, not spread
or significance (see the README).

It writes into ``--out``: the SQLite database (browse it with
``hybridscale gui --db OUT/hybridscale.db``), ``report.csv``, PNG scaling
curves and bias heatmaps drawn by the GUI's own plotting code without a window, and
``summary.md``. Running it again reuses finished runs. The trained models are
not kept (``keep_model`` off), so ``artifacts/`` holds only the run logs.
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from engine.state import Progress
from hybridscale.analysis_io import RequestError
from hybridscale.report import findings_markdown, study_findings
from hybridscale.signals import stop_on_signals
from hybridscale.worker import WorkerOptions, run_worker
from storage import queue
from storage.db import open_db
from storage.export import export_csv
from storage.queries import list_runs, tidy_metrics
from vocabulary.config import EvalSpec, RunConfig, StudyConfig
from vocabulary.languages import PAPER_TRAIN_LANGUAGES, TARGET_LANGUAGES
from vocabulary.status import FINISHED, RunStatus

#: The main metric of the summary table and the curves.
MAIN_METRIC = "nDCG@10"
#: The names the demo's eval sets are stored under (an eval set's label says what it is: AfriQA's
#: gold passages only, XQuAD-R's held-out articles with our own sentence splitter).
FLORES = EvalSpec("flores", ("en", "sw", "yo"), "test").label
AFRIQA = EvalSpec("afriqa", TARGET_LANGUAGES, "test").label
XQUAD_R = EvalSpec("xquad-r", ("ar", "de", "en", "zh"), "eval").label


#: The demo's training sizes (question groups); XQuAD's training split has 698.
DEMO_SIZES = (16, 64, 256)
DEMO_STEPS = 8


def demo_study(quick: bool = False) -> StudyConfig:
    """The demo's study: mono / cross / hybrid(0.5) / contrastive at three sizes, one seed, the untrained model and BM25.

    Every run takes :data:`DEMO_STEPS` steps of 16 pairs whatever its size
    (budget ``steps``), so a curve compares data, not compute; a hybrid run's
    steps are exactly half monolingual. ``quick`` keeps three strategies, two
    sizes, 2 steps, a few queries and AfriQA's passages cut at 128 tokens, for
    a smoke test of a few minutes.
    """
    if quick:
        evaluations = (
            EvalSpec("flores", ("en", "sw", "yo"), "test", max_queries=50),
            EvalSpec("afriqa", ("sw", "yo"), "test", max_queries=30, passage_max_length=128),
        )
    else:
        evaluations = (
            EvalSpec("flores", ("en", "sw", "yo"), "test"),
            EvalSpec("afriqa", ("sw", "yo"), "test", max_queries=120),
        )
    template = RunConfig(
        model="embedded:e5-small",
        train_dataset="xquad",
        train_languages=PAPER_TRAIN_LANGUAGES,
        evaluations=evaluations,
        batch_size=16,
        max_length=64,
        learning_rate=1e-4,
        budget="steps",
        steps=2 if quick else DEMO_STEPS,
        warmup_ratio=0.1,
        freeze_embeddings=True,
        trainable_layers=4,
        frozen_cache=True,
        checkpoint_every=10,
        eval_batch_size=32,
        keep_model=False,  # the demo's results are its metrics; a model per run would fill a laptop's disk
    )
    return StudyConfig(
        name="demo (quick)" if quick else "demo",
        strategies=("mono", "cross", "hybrid") if quick else ("mono", "cross", "hybrid", "contrastive"),
        alphas=(0.5,),
        train_sizes=(16, 64) if quick else DEMO_SIZES,
        seeds=(0,),
        include_baseline=True,
        include_bm25=not quick,  # the lexical floor: seconds on these pools
        template=template,
    )


def run_demo(out: Path, *, quick: bool = False, device: str = "auto") -> int:
    """Run (or resume) the demo study and write the report files; return an exit status."""
    return run_study_report(out, demo_study(quick), device=device)


def run_study_report(out: Path, study: StudyConfig, *, device: str = "auto") -> int:
    """Queue ``study`` in ``out``'s database, execute it here, write CSV, plots and summary; 1 if a run failed."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    db = open_db(out / "hybridscale.db", artifacts_dir=out / "artifacts")
    submitted = queue.submit_study(db, study)
    print(f"hybridscale demo: {submitted.summary()}; results in {out}/")

    _work_with_progress_bar(db, len(submitted.queued) + len(submitted.pending), device)

    runs = list_runs(db, submitted.study_id)
    failed = [r for r in runs if r.status != RunStatus.DONE]
    rows = tidy_metrics(db, submitted.study_id)
    export_csv(db, out / "report.csv", study_id=submitted.study_id)
    images = _write_figures(rows, out / "plots")
    summary = write_summary(out / "summary.md", study, runs, db, submitted.study_id, images,
                            time.perf_counter() - started)
    print(summary)
    for run in failed:
        print(f"run {run.id} ({run.label}) {run.status}: {run.error or ''}")
    print(f"wrote {out / 'report.csv'}, {out / 'summary.md'} and {len(images)} plots in {out / 'plots'}")
    return 1 if failed else 0


def _work_with_progress_bar(db, todo: int, device: str) -> None:
    """Execute the queued runs in this process, with one bar advancing through every run's phases."""
    if todo == 0:
        return
    bar = tqdm(total=todo, unit="run", bar_format="{l_bar}{bar}| {n:.1f}/{total} runs [{elapsed}<{remaining}] {postfix}")
    seen: list[str] = []

    def listener(run_id: str, label: str, progress: Progress) -> None:
        if run_id not in seen:
            seen.append(run_id)
        bar.n = min(len(seen) - 1 + progress.fraction, todo)
        bar.set_postfix_str(f"{label}: {progress.phase}", refresh=False)
        bar.refresh()

    try:
        with stop_on_signals("hybridscale demo") as stop:
            run_worker(db, WorkerOptions(device=device, exit_when_empty=True), listener=listener, shutdown=stop)
    finally:
        bar.close()


def _write_figures(rows: list[dict], folder: Path) -> list[Path]:
    from gui.figure_files import save_heatmap_figure, save_scaling_figure

    folder.mkdir(parents=True, exist_ok=True)
    images: list[Path] = []
    present = {(r["eval_set"], r["setting"], r["metric"]) for r in rows}
    for eval_set, setting, passage_language in (
        (FLORES, "cross", "en"),
        (FLORES, "multi", "all"),
        (AFRIQA, "cross", "en"),
    ):
        if (eval_set, setting, MAIN_METRIC) in present:
            name = f"scaling_{eval_set.split('/')[0]}_{setting}.png"
            images.append(save_scaling_figure(
                rows, folder / name, eval_set=eval_set, setting=setting, metric=MAIN_METRIC,
                passage_language=passage_language, query_languages=("sw", "yo"),
            ))
    for eval_set in (FLORES, XQUAD_R):
        if (eval_set, "multi", "MeanRank") in present:
            name = f"bias_{eval_set.split('/')[0]}.png"
            images.append(save_heatmap_figure(rows, folder / name, eval_set=eval_set))
    return images


def write_summary(path: Path, study: StudyConfig, runs, db, study_id: int, images: list[Path], seconds: float) -> str:
    """A short Markdown report: what ran, then the findings of ``hybridscale report`` (hybridscale.report)."""
    counts = ", ".join(f"{sum(r.status == s for r in runs)} {s}" for s in FINISHED
                       if any(r.status == s for r in runs))
    lines = [
        f"# {study.name}: hybrid batch training, zero-shot sw / yo",
        "",
        f"Model {study.template.model}; training on {study.template.train_dataset} "
        f"({', '.join(study.template.train_languages)}); {_budget(study.template)} of {study.template.batch_size} "
        f"pairs per run; seed(s) {list(study.seeds)} (tables show the mean over seeds).",
        f"Wall time of this invocation: {seconds / 60:.1f} min. Runs: {counts}.",
        "",
        *_findings(db, study_id),
        "Plots: " + ", ".join(p.name for p in images),
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return text


def _findings(db, study_id: int) -> list[str]:
    try:
        return findings_markdown(study_findings(db, study_id))
    except RequestError as exc:  # no run finished: the summary says so instead of stopping the demo
        return [f"No findings: {exc}", ""]


def _budget(config: RunConfig) -> str:
    return f"{config.budget_label} (budget '{config.budget}') in batches"

"""``hybridscale demo``: a real, small study on the embedded model, headless.

The demo is designed for a 2-core laptop CPU from measured costs
(bench/RESULTS.md, "The demo"; bench/demo_costs.py): the embeddings and the
lower 11 of 12 layers frozen and served from the frozen-prefix cache
(``frozen_cache``), which the untrained reference fills with every eval text,
so each run pays only for its top layer, in training and in evaluation;
batches of 16 pairs of at most 64 tokens; a fixed budget of 32 optimiser steps
per run at every size (budget ``steps``: every run gets the same compute, so a
curve measures what more distinct training data buys, not more updates); sizes
up to the budget's 512 pairs, since a fixed-step run would never see the groups
of a larger size; mono, cross, hybrid (alpha 0.5) and contrastive at four sizes
with two seeds, the untrained model and BM25 as references; evaluated on sw
and yo only (FLORES and AfriQA, full corpora and every test question, passages
at their own length; no sw or yo training data, though e5 itself was
fine-tuned on Swahili MIRACL and Mr. TyDi). On a CPU the runs are shared by worker processes
(:mod:`hybridscale.parallel`).

It writes into ``--out``: the SQLite database (browse it with
``hybridscale gui --db OUT/hybridscale.db``), ``report.csv``, PNG scaling
curves and bias heatmaps drawn by the GUI's own plotting code without a window, and
``summary.md`` with the findings of ``hybridscale report`` (significance and
fits). Running it again reuses finished runs. The trained models are not kept
(``keep_model`` off), so ``artifacts/`` holds the run logs, evaluation files
and the frozen-prefix cache.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from tqdm import tqdm

from engine.model import resolve_device
from engine.state import Progress
from hybridscale.analysis_io import RequestError
from hybridscale.parallel import cpu_layout, helper_workers
from hybridscale.report import (
    FigureChoice,
    provenance_lines,
    reported_runs,
    study_findings,
    summary_lines,
    write_figures,
)
from hybridscale.signals import stop_on_signals
from hybridscale.worker import WorkerOptions, run_worker
from storage import queue
from storage.db import open_db
from storage.export import export_csv
from storage.queries import list_runs, tidy_metrics
from vocabulary.config import EvalSpec, RunConfig, StudyConfig
from vocabulary.languages import TARGET_LANGUAGES
from vocabulary.models import base_model
from vocabulary.status import FINISHED, RunStatus
from vocabulary.templates import demo_study

#: The names the demo's eval sets are stored under (an eval set's label says what it is: AfriQA's
#: gold passages only, XQuAD-R's held-out articles with our own sentence splitter).
FLORES = EvalSpec("flores", ("en", "sw", "yo"), "test").label
AFRIQA = EvalSpec("afriqa", TARGET_LANGUAGES, "test").label
XQUAD_R = EvalSpec("xquad-r", ("ar", "de", "en", "zh"), "eval").label


def run_demo(out: Path, *, quick: bool = False, device: str = "auto", workers: int | None = None) -> int:
    """Run (or resume) the demo study and write the report files; return an exit status."""
    return run_study_report(out, demo_study(quick), device=device, workers=workers)


def run_study_report(out: Path, study: StudyConfig, *, device: str = "auto", workers: int | None = None) -> int:
    """Queue ``study`` in ``out``'s database, execute it here, write CSV, plots and summary; 1 if a run failed.

    On a CPU the runs are shared by ``workers`` worker processes (default
    :func:`hybridscale.parallel.cpu_layout`'s); on a GPU one worker runs them.
    """
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    db = open_db(out / "hybridscale.db", artifacts_dir=out / "artifacts")
    submitted = queue.submit_study(db, study)
    print(f"hybridscale demo: {submitted.summary()}; results in {out}/")

    _work_with_progress_bar(db, submitted.study_id, len(submitted.queued) + len(submitted.pending), device, workers)

    runs = list_runs(db, submitted.study_id)
    failed = [r for r in runs if r.status != RunStatus.DONE]
    rows = tidy_metrics(db, submitted.study_id)
    export_csv(db, out / "report.csv", study_id=submitted.study_id)
    drawn: dict[FigureChoice, Path] = {}
    images = write_figures(rows, out / "plots", drawn)
    summary = write_summary(out / "summary.md", study, runs, rows, db, submitted.study_id, images, drawn, started)
    print(summary)
    for run in failed:
        print(f"run {run.id} ({run.label}) {run.status}: {run.error or ''}")
    print(f"wrote {out / 'report.csv'}, {out / 'summary.md'} and {len(images)} plots in {out / 'plots'}")
    return 1 if failed else 0


def _work_with_progress_bar(db, study_id: int, todo: int, device: str, workers: int | None) -> None:
    """Execute the queued runs with this process's worker (and helpers on a CPU), one bar over every run.

    The first run (the untrained reference, queued first) runs alone: it fills
    the frozen-prefix cache with every eval text, which the helpers that join
    afterwards then read instead of computing it again.
    """
    if todo == 0:
        return
    bar = tqdm(total=todo, unit="run", bar_format="{l_bar}{bar}| {n:.1f}/{total} runs [{elapsed}<{remaining}] {postfix}")
    finished = _FinishedRuns(db, study_id)

    def listener(_run_id: str, label: str, progress: Progress) -> None:
        bar.n = min(finished.count() + progress.fraction, todo)
        bar.set_postfix_str(f"{label}: {progress.phase}", refresh=False)
        bar.refresh()

    count, threads = cpu_layout(workers)
    helpers = count - 1 if resolve_device(device).type == "cpu" else 0
    try:
        with stop_on_signals("hybridscale demo") as stop:
            options = WorkerOptions(device=device, exit_when_empty=True)
            run_worker(db, dataclasses.replace(options, max_runs=1), listener=listener, shutdown=stop)
            if not stop.is_set():
                with helper_workers(db, device, helpers, threads, stop):
                    run_worker(db, options, listener=listener, shutdown=stop)
    finally:
        bar.n = min(finished.count(fresh=True), todo)
        bar.close()


class _FinishedRuns:
    """How many of the study's runs finished since the demo started, read from the database every few seconds
    (helper workers report through it, not to this process)."""

    def __init__(self, db, study_id: int, every_s: float = 2.0):
        self._db, self._study_id, self._every_s = db, study_id, every_s
        self._before = self._read()
        self._count, self._read_at = 0, time.monotonic()

    def _read(self) -> int:
        return sum(run.status in FINISHED for run in list_runs(self._db, self._study_id))

    def count(self, fresh: bool = False) -> int:
        if fresh or time.monotonic() - self._read_at >= self._every_s:
            self._count, self._read_at = self._read() - self._before, time.monotonic()
        return self._count


def write_summary(path: Path, study: StudyConfig, runs, rows: list[dict], db, study_id: int, images: list[Path],
                  drawn: dict[FigureChoice, Path], started: float) -> str:
    """The summary of ``hybridscale report`` (the answer, then the appendix), with what ran in the appendix;
    ``rows`` are the study's tidy metrics, ``drawn`` the scaling figures already drawn (:func:`draw_scaling`).

    The wall time is read once the findings are computed (``started`` is a
    ``time.perf_counter()`` reading), so it covers everything but writing the file.
    """
    counts = ", ".join(f"{sum(r.status == s for r in runs)} {s}" for s in FINISHED
                       if any(r.status == s for r in runs))
    try:
        findings = study_findings(reported_runs(db, study_id))
    except RequestError as exc:  # no run finished: the summary says so instead of stopping the demo
        findings, counts = [], f"{counts}; no findings: {exc}"
    seconds = time.perf_counter() - started
    provenance, flags = provenance_lines(db, study_id)
    context = [
        f"Model {study.template.model}; training on {study.template.train_dataset} "
        f"({', '.join(study.template.train_languages)}); {_budget(study.template)} of {study.template.batch_size} "
        f"pairs per run; seed(s) {list(study.seeds)} (tables show the mean over seeds).",
        f"Wall time of this invocation: {seconds / 60:.1f} min. Runs: {counts}.",
        f"Provenance: {provenance}.",
        "",
        *_base_model_exposure(study.template.model),
    ]
    lines = [
        *summary_lines(f"{study.name}: hybrid batch training, zero-shot sw / yo", findings, rows, path.parent,
                       drawn, context, flags),
        "Plots: " + ", ".join(p.name for p in images),
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return text


def _base_model_exposure(model: str) -> list[str]:
    """What the base model's own training saw in sw and yo, since "zero-shot" only holds for what it did not."""
    known = base_model(model)
    if known is None:
        return []
    seen = "; ".join(f"**{line.split(':', 1)[0]}**:{line.split(':', 1)[1]}" for line in known.summary().splitlines())
    return [f"Zero-shot here means unseen in the demo's training. What {known.label}'s own training saw, per "
            f"language: {seen}. Swahili results are therefore not zero-shot in the strict sense.", ""]


def _budget(config: RunConfig) -> str:
    return f"{config.budget_label} (budget '{config.budget}') in batches"

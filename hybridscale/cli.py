"""The ``hybridscale`` command: one entry point that wires the rooms together.

Each subcommand imports its room lazily, so ``hybridscale --help`` and
``hybridscale gui`` never pay for torch, and a broken optional room cannot
break the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from hybridscale import __version__


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


def _open(args: argparse.Namespace):
    from storage.db import open_db

    return open_db(args.db, artifacts_dir=getattr(args, "artifacts", None))


# ---- study and queue ------------------------------------------------------
def cmd_submit(args: argparse.Namespace) -> int:
    from engine.config import StudyConfig
    from storage.queue import submit_study

    path = Path(args.study)
    if not path.is_file():
        raise UserError(f"{path}: no such study file (write one with the GUI's 'Save study', or see README)")
    study = StudyConfig.from_json(path.read_text(encoding="utf-8"))
    result = submit_study(_open(args), study)
    print(result.summary())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from storage.queries import list_runs, list_studies

    db = _open(args)
    studies = list_studies(db)
    if not studies:
        print(f"no studies in {db.url}: submit one with 'hybridscale submit STUDY.json' or run 'hybridscale demo'")
        return 0
    for study in studies:
        if args.study is not None and study.id != args.study:
            continue
        counts = ", ".join(f"{n} {status}" for status, n in sorted(study.status_counts.items()))
        print(f"study {study.id} {study.name!r}: {counts}")
        for run in list_runs(db, study.id):
            loss = f" loss={run.loss:.4f}" if run.loss is not None else ""
            detail = f" error: {run.error}" if run.error else (f" [{run.phase}]" if run.phase else "")
            print(f"  {run.id} {run.status:<9} {run.progress:5.0%} {run.label}{loss}{detail}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from storage.queue import cancel

    db = _open(args)
    for run_id in args.run_ids:
        try:
            status = cancel(db, run_id)
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from None
        print(f"{run_id}: {'cancel requested (the worker stops within seconds)' if status == 'running' else status}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from storage.queue import retry

    db = _open(args)
    for run_id in args.run_ids:
        print(f"{run_id}: {'queued again' if retry(db, run_id) else 'not failed or cancelled; left as it is'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from storage.export import export_csv

    count = export_csv(_open(args), args.csv, study_id=args.study)
    print(f"wrote {count} rows to {args.csv}")
    return 0


# ---- engine ----------------------------------------------------------------
def cmd_worker(args: argparse.Namespace) -> int:
    from engine.runner import WorkerOptions, run_worker

    options = WorkerOptions(
        device=args.device,
        once=args.once,
        max_runs=args.max_runs,
        exit_when_empty=args.exit_when_empty,
        stale_after_s=args.stale_after,
        poll_s=args.poll,
        worker_id=args.worker_id,
    )
    executed = run_worker(_open(args), options)
    print(f"worker finished: {executed} run(s) executed")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hybridscale.demo import run_demo

    return run_demo(Path(args.out), quick=args.quick, device=args.device)


def cmd_inspect_batches(args: argparse.Namespace) -> int:
    from engine.config import ConfigError, RunConfig, StudyConfig
    from engine.data import load_training_set
    from engine.sampling import describe_batches

    data = json.loads(Path(args.config).read_text(encoding="utf-8"))
    if "template" in data or "strategies" in data:
        runs = [r for r in StudyConfig.from_dict(data).expand() if r.is_training]
        if not runs:
            raise ConfigError("strategies", "this study has no training run to inspect")
        config = runs[args.run_index]
    else:
        config = RunConfig.from_dict(data)
    config.validate()
    training_set = load_training_set(config.train_dataset, config.train_languages, "train")
    for batch in describe_batches(config, training_set, args.batches):
        print(json.dumps(batch, ensure_ascii=False))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from engine.trec import metrics_command

    measures = [m.strip() for m in args.measures.split(",") if m.strip()]
    result = metrics_command(Path(args.qrels), Path(args.run), measures, per_query=args.per_query)
    print(json.dumps(result, indent=2 if args.per_query else None, ensure_ascii=False))
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    from gui.app import main as gui_main

    return gui_main(db=args.db)


# ---- parser ----------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybridscale",
        description="Hybrid batch training scaling studies for zero-shot cross-lingual retrieval (sw, yo).",
    )
    parser.add_argument("--version", action="version", version=f"hybridscale {__version__}")
    parser.add_argument(
        "--db", default=None,
        help="database: a SQLite file path or any SQLAlchemy URL (default: hybridscale.db in the user data folder)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

    p = add("submit", cmd_submit, "queue the runs of a study file (runs already done are reused)")
    p.add_argument("study", help="study JSON file (StudyConfig)")

    p = add("status", cmd_status, "show studies and their runs")
    p.add_argument("--study", type=int, default=None, help="only this study id")

    p = add("cancel", cmd_cancel, "cancel queued runs, or ask running ones to stop")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID")

    p = add("retry", cmd_retry, "queue failed or cancelled runs again")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID")

    p = add("export", cmd_export, "write the tidy metrics table as CSV")
    p.add_argument("--csv", required=True, metavar="FILE", help="output CSV file")
    p.add_argument("--study", type=int, default=None, help="only runs of this study id")

    p = add("worker", cmd_worker, "take runs from the queue and execute them (train, evaluate, store)")
    p.add_argument("--once", action="store_true", help="execute at most one run, then exit")
    p.add_argument("--max-runs", type=int, default=None, help="exit after this many runs")
    p.add_argument("--exit-when-empty", action="store_true", help="exit when the queue is empty instead of waiting")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to train and encode")
    p.add_argument("--stale-after", type=float, default=120.0, metavar="SECONDS",
                   help="requeue runs whose worker has not sent a heartbeat for this long")
    p.add_argument("--poll", type=float, default=2.0, metavar="SECONDS", help="queue polling interval when idle")
    p.add_argument("--worker-id", default=None, help="name shown in the queue (default: host:pid)")
    p.add_argument("--artifacts", default=None, metavar="DIR",
                   help="checkpoints, logs and trained models (default: 'artifacts' beside a SQLite file)")

    p = add("demo", cmd_demo, "run the embedded demo study headless and write results, CSV and plots")
    p.add_argument("--out", default="hybridscale-demo", help="output folder (database, report.csv, plots, summary.md)")
    p.add_argument("--quick", action="store_true", help="a much smaller study for smoke tests (a few minutes)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))

    p = add("inspect-batches", cmd_inspect_batches, "print the composition of the first training batches as JSON lines")
    p.add_argument("config", help="a study or run JSON file")
    p.add_argument("--batches", type=int, default=10, help="how many batches to print")
    p.add_argument("--run-index", type=int, default=0, help="for a study file: which training run (0 = first)")

    p = add("metrics", cmd_metrics, "score a TREC run file against TREC qrels (like trec_eval), JSON out")
    p.add_argument("--qrels", required=True, help="TREC qrels file: qid iter docid rel")
    p.add_argument("--run", required=True, help="TREC run file: qid Q0 docid rank score tag")
    p.add_argument("--measures", default="nDCG@10,R@100,RR@10,AP", help="comma-separated ir_measures names")
    p.add_argument("--per-query", action="store_true", help="one object per query instead of the mean")

    p = add("gui", cmd_gui, "open the desktop app")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UserError, ValueError, FileNotFoundError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"hybridscale {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hybridscale {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The ``hybridscale`` command: one entry point that wires the rooms together.

Each subcommand imports its room lazily, so ``hybridscale --help`` and
``hybridscale gui`` never pay for torch, and a broken optional room cannot
break the others. Every mistake or fault a user can fix (bad input, a
database that cannot be opened, a full disk) is printed as one line with
exit status 2; no message shows a database password.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from hybridscale import __version__
from vocabulary.records import DEFAULT_MEASURES


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


def _mirror(args: argparse.Namespace) -> str | None:
    """``--artifacts`` is a mirror when it is a URL, or a path given together with a local ``--workdir``."""
    artifacts = getattr(args, "artifacts", None)
    if artifacts and ("://" in artifacts or getattr(args, "workdir", None)):
        return artifacts
    return None


def _open(args: argparse.Namespace, read_only: bool = False):
    """The database of ``--db``; ``read_only`` for commands that only read (nothing is created or written)."""
    from storage.db import open_db

    artifacts = getattr(args, "artifacts", None)
    local = getattr(args, "workdir", None) or (artifacts if artifacts and not _mirror(args) else None)
    return open_db(args.db, artifacts_dir=local, read_only=read_only)


def _read_text(path: Path, what: str) -> str:
    """A UTF-8 text file; an error names the file and, for undecodable bytes, where they are."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position {exc.start}); "
                        f"save the {what} as UTF-8") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror})") from None


# ---- study and queue ------------------------------------------------------
def _load_study(path_text: str, missing_hint: str = "", *, validate: bool = True):
    """The study file at ``path_text``: a missing file (with ``missing_hint`` after the message) or one that does
    not parse, or with ``validate`` does not validate, is a UserError naming the file.

    ``submit`` loads without validating: it validates after ``--corpus`` is applied, and its messages for an
    invalid study have never named the file."""
    from vocabulary.config import ConfigError, StudyConfig

    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"{path}: no such study file{missing_hint}")
    try:
        study = StudyConfig.from_json(_read_text(path, "study file"))
        return study.validate() if validate else study
    except ConfigError as exc:
        raise UserError(f"{path}: {exc}") from None


def cmd_submit(args: argparse.Namespace) -> int:
    from storage.queue import submit_study

    study = _load_study(args.study, " (write one with the GUI's 'Save study', or see docs/commands.md)",
                        validate=False)
    if args.corpus:
        study = _with_miracl_corpus(study, args.corpus)
    _check_batches(study)
    _check_corpora(study)
    if args.slurm:
        return _submit_slurm(args, study)
    result = submit_study(_open(args), study)
    print(result.summary())
    return 0


def _check_batches(study) -> None:
    """Refuse, before anything is queued, a study with a training subset (or dev split) that cannot fill a
    batch without two pairs sharing a positive passage; one line naming the run and the largest batch it allows.

    Only shipped sources are checked here: a streamed or remote one (mMARCO, a user's file) would be read,
    perhaps over the network, so its runs are checked by the worker when they start (and offline submit works)."""
    from engine.data import load_training_data
    from engine.sampling import BatchSampler, SamplingError, dev_batches
    from vocabulary.batching import batch_plan
    from vocabulary.datasets import dataset_info
    from vocabulary.sources import parse_source

    loaded: dict[tuple[object, ...], tuple[object, object]] = {}

    def data(run):
        """The run's training sources and dev set, loaded once for every run that reads the same."""
        held_out = (run.subset_seed, run.dev_size) if run.holds_out_dev else None
        key = (run.train_dataset, run.train_languages, tuple(e.dataset for e in run.evaluations), run.dev_every,
               held_out)
        if key not in loaded:
            loaded[key] = load_training_data(run)
        return loaded[key]

    def shipped(run) -> bool:
        return all(path is None and dataset_info(name).shipped for name, path in map(parse_source, run.train_sources))

    for run in study.validate().expand():
        if not run.is_training or not shipped(run):
            continue
        try:
            plan = batch_plan(run)
            sources, dev_set = data(run)
            BatchSampler(plan, sources)
            if dev_set is not None:
                dev_batches(plan, dev_set)
        except SamplingError as exc:
            raise UserError(f"{run.label}: {exc}") from None


def _check_corpora(study) -> None:
    """Refuse a study whose local CIRAL or MIRACL corpus is in the wrong layout or whose first line lacks docid or
    text, before anything is queued (cheap checks only: :mod:`engine.data.preflight`); one line, exit status 2."""
    from engine.data.preflight import check_corpus

    for spec in study.template.evaluations:
        check_corpus(spec)


def cmd_template(args: argparse.Namespace) -> int:
    from vocabulary.templates import TEMPLATES, template

    if args.list or args.name is None:
        width = max(map(len, TEMPLATES))
        for name, (description, _build) in TEMPLATES.items():
            print(f"{name:<{width}}  {description}")
        return 0
    try:
        print(json.dumps(template(args.name), indent=2, ensure_ascii=False))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from engine.data.remote import study_files
    from results.cost import estimate

    study = _load_study(args.study, f" (hybridscale template NAME > {Path(args.study)} writes one)")
    runs = study.expand()
    # The hub files the runs read; their sizes need the network, so they are not counted.
    cost = estimate(study, sorted({files.url for files in study_files(runs)}), runs=runs)
    if args.json:
        print(json.dumps(cost.to_dict(), indent=2))
    else:
        print(f"plan for {study.name}")
        for line in cost.lines():
            print(line)
    return 0


def _with_miracl_corpus(study, corpus: str):
    """The study with ``corpus`` as the passage collection of its MIRACL evaluation (not shipped)."""
    import dataclasses

    template = study.template
    if not any(spec.dataset == "miracl" for spec in template.evaluations):
        raise UserError("--corpus gives the MIRACL passage corpus, but this study does not evaluate on miracl")
    if not Path(corpus).expanduser().exists():
        raise UserError(f"--corpus {corpus}: no such file or folder (a MIRACL-style JSONL/TSV file, or a folder)")
    _check_readable(Path(corpus).expanduser())
    corpus = str(Path(corpus).expanduser().resolve())  # workers may start elsewhere
    evaluations = tuple(
        dataclasses.replace(spec, path=corpus) if spec.dataset == "miracl" else spec for spec in template.evaluations
    )
    return dataclasses.replace(study, template=dataclasses.replace(template, evaluations=evaluations))


def _check_readable(corpus: Path) -> None:
    """Open the corpus file (every file of a corpus folder) now, not when a worker reaches its evaluation."""
    from engine.data.files import file_kind

    what = None if corpus.is_dir() else file_kind(corpus)  # opening a FIFO would wait for a writer
    if corpus.is_dir() and not any(p.is_file() for p in corpus.iterdir()):
        what = "a folder without files"
    if what is not None:
        raise UserError(f"--corpus {corpus}: {what}, not a corpus; give a MIRACL-style JSONL/TSV file or a folder of "
                        "them")
    try:
        files = [p for p in corpus.iterdir() if p.is_file()] if corpus.is_dir() else [corpus]
        for file in files:
            with file.open("rb") as stream:
                stream.read(1)
    except OSError as exc:
        raise UserError(f"--corpus {corpus}: cannot be read ({exc.strerror}: {exc.filename or corpus}); "
                        "check its permissions") from None


def _submit_slurm(args: argparse.Namespace, study) -> int:
    """Queue the study, then write the sbatch job array that works it off (one task per queued run)."""
    from hybridscale.slurm import SlurmOptions, check_shared_database, check_task_workdir, render_array
    from storage.db import display_url, url_without_password
    from storage.queue import submit_study

    db = _open(args)
    warning = check_shared_database(db.url, allow_sqlite=args.allow_sqlite)  # before queueing anything
    check_task_workdir(args.task_workdir)
    default_name = "hybridscale-study-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", study.name) + ".sbatch"
    out = Path(args.slurm_out or default_name).resolve()
    log_dir = out.parent / "slurm-logs"
    options = SlurmOptions(
        partition=args.partition, account=args.account, time=args.time, gpus_per_task=args.gpus_per_task,
        cpus_per_task=args.cpus_per_task, mem=args.mem, array_parallel=args.array_parallel,
        log_dir=str(log_dir), setup=tuple(args.slurm_setup), job_name=args.job_name,
    ).validate()
    if warning:
        print(warning, file=sys.stderr)
    result = submit_study(db, study)
    print(result.summary())
    if not result.queued:
        print("no job array written: nothing new was queued")
        return 0
    task_url = url_without_password(db.url)  # no file holds a password
    script = render_array(
        len(result.queued), task_url, options, artifacts=args.task_artifacts, workdir=args.task_workdir,
        study=study.name,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(exist_ok=True)
    out.touch(mode=0o700)
    out.chmod(0o700)
    out.write_text(script, encoding="utf-8")
    print(f"wrote {out}: a job array of {len(result.queued)} task(s); submit it with: sbatch {out}")
    if task_url != db.url:
        print(f"the script names the database as {display_url(task_url)}, without its password: the tasks read it "
              f"from ~/.pgpass on the nodes, or submit with PGPASSWORD set in the environment of sbatch")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from storage.db import DatabaseMissing, database_name
    from storage.provenance import latest_provenance
    from storage.queries import list_runs, list_studies, run_warnings
    from vocabulary.provenance import throughput_text

    hint = "submit one with 'hybridscale submit STUDY.json' or run 'hybridscale demo'"
    try:
        db = _open(args, read_only=True)
    except DatabaseMissing as exc:
        print(f"no studies: {exc}; {hint}")
        return 0
    studies = list_studies(db)
    if not studies:
        print(f"no studies in {database_name(db.url)}: {hint}")
        return 0
    warnings = run_warnings(db, args.study)
    records = latest_provenance(db, args.study)
    for study in studies:
        if args.study is not None and study.id != args.study:
            continue
        counts = ", ".join(f"{n} {status}" for status, n in sorted(study.status_counts.items()))
        print(f"study {study.id} {study.name!r}: {counts}")
        for run in list_runs(db, study.id):
            steps = f" step {run.step}/{run.total_steps}" if run.total_steps else ""
            loss = f" loss={run.loss:.4f}" if run.loss is not None else ""
            loss += f" dev_loss={run.dev_loss:.4f}" if run.dev_loss is not None else ""
            detail = f" error: {run.error}" if run.error else (f" [{run.phase}]" if run.phase else "")
            speed = throughput_text(records[run.id]) if run.id in records else ""
            speed = f" ({speed})" if speed else ""
            print(f"  {run.id} {run.status:<9} {run.progress:5.0%} {run.label}{steps}{loss}{speed}{detail}")
            for warning in warnings.get(run.id, []):
                print(f"    warning: {warning}")
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
    from storage.export import export_csv, export_per_query_csv, export_runs_csv

    if not (args.csv or args.per_query or args.runs or args.mlflow):
        raise UserError("say what to write: --csv FILE (the metrics), --per-query FILE (per-query values), "
                        "--runs FILE (one row per run with its provenance) and/or --mlflow URI")
    db = _open(args, read_only=True)
    if args.csv:
        print(f"wrote {export_csv(db, args.csv, study_id=args.study)} rows to {args.csv}")
    if args.per_query:
        print(f"wrote {export_per_query_csv(db, args.per_query, study_id=args.study)} per-query values to "
              f"{args.per_query}")
    if args.runs:
        print(f"wrote {export_runs_csv(db, args.runs, study_id=args.study)} runs to {args.runs}")
    if args.mlflow:
        from hybridscale.mlflow_export import MlflowExportError, export_to_mlflow

        try:
            done = export_to_mlflow(db, args.mlflow, study_id=args.study)
        except MlflowExportError as exc:
            raise UserError(str(exc)) from None
        print(f"{args.mlflow}: {done.summary()}")
    return 0


# ---- analysis --------------------------------------------------------------
def cmd_compare(args: argparse.Namespace) -> int:
    from analysis.compare import FIELDS
    from hybridscale.analysis_io import comparisons, holm_family

    db = _open(args, read_only=True)
    found = comparisons(db, args.study, args.eval_set, args.setting, args.metric, args.baseline)
    if not found:
        raise UserError(f"{args.eval_set}, {args.setting}, {args.metric}: no two series share a query in any cell")
    family = holm_family(found, args.eval_set, args.setting, args.metric)
    if args.json:
        print(json.dumps([c.as_dict() for c in found], indent=2, ensure_ascii=False))
        print(family, file=sys.stderr)
        return 0
    rows = [c.as_dict() for c in found]
    width = max(len(str(row[name])) for row in rows for name in _NAMED) + 1
    print(" ".join(f"{name:<{width}}" if name in _NAMED else f"{name:>16}" for name in FIELDS))
    for row in rows:
        print(" ".join(_column(name, value, width) for name, value in row.items()))
    print(family)
    return 0


#: The text columns of a comparison (strategy keys and series labels), left-aligned.
_NAMED = ("strategy", "series", "baseline", "baseline_series")


def _column(name: str, value, width: int) -> str:
    if name in _NAMED:
        return f"{value:<{width}}"
    if value is None:
        return f"{'–':>16}"
    if isinstance(value, float):
        if name.startswith("p_") or name.endswith("alpha"):
            return f"{value:>16.4g}"
        return f"{value:>16.4f}" if name.startswith("seed_sd") else f"{value:>+16.4f}"
    return f"{value!s:>16}"


def cmd_report(args: argparse.Namespace) -> int:
    from hybridscale.report import write_report

    files = write_report(_open(args, read_only=True), args.study, Path(args.out))
    print(f"wrote {files.summary}, {files.tidy.name}, {files.per_query.name}, {files.comparisons.name}, "
          f"{files.fits.name} and {len(files.plots)} plot(s) in {files.summary.parent}")
    return 0


# ---- engine ----------------------------------------------------------------
def cmd_worker(args: argparse.Namespace) -> int:
    from engine.distributed import init_from_env, launched_by_torchrun, shutdown, torchrun_command
    from hybridscale.signals import run_forwarding_signals, stop_on_signals

    if args.nproc_per_node < 1:
        raise UserError(f"--nproc-per-node {args.nproc_per_node}: must be at least 1")
    _use_data_dir(args.data_dir)
    if args.nproc_per_node > 1 and not launched_by_torchrun():
        # Start again as N processes under torchrun; each of them reads WORLD_SIZE and joins the group.
        return run_forwarding_signals(torchrun_command(args.nproc_per_node, ["-m", "hybridscale", *args.argv]))
    from hybridscale.worker import WorkerOptions, WorkerStopped, run_worker

    options = WorkerOptions(
        device=args.device,
        once=args.once,
        max_runs=args.max_runs,
        exit_when_empty=args.exit_when_empty,
        stale_after_s=args.stale_after,
        poll_s=args.poll,
        worker_id=args.worker_id,
        mirror=_mirror(args),
    )
    context = init_from_env(args.device)
    try:
        with stop_on_signals("hybridscale worker") as stop:
            executed = run_worker(_open(args) if context.is_main else None, options, context=context, shutdown=stop)
    except WorkerStopped as exc:
        raise UserError(f"stopped: {exc}") from None
    finally:
        shutdown()
    if context.is_main:
        print(f"worker finished: {executed} run(s) executed")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_demo(args: argparse.Namespace) -> int:
    from hybridscale.demo import run_demo
    from hybridscale.worker import WorkerStopped

    try:
        return run_demo(Path(args.out), quick=args.quick, device=args.device, workers=args.workers)
    except WorkerStopped as exc:
        raise UserError(f"stopped: {exc}") from None


def cmd_inspect_batches(args: argparse.Namespace) -> int:
    from engine.data import load_training_sources
    from engine.sampling import describe_batches
    from vocabulary.batching import batch_plan
    from vocabulary.config import ConfigError, RunConfig, StudyConfig

    path = Path(args.config)
    try:
        data = json.loads(_read_text(path, "study or run file"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); fix the file") from None
    if "template" in data or "strategies" in data:
        runs = [r for r in StudyConfig.from_dict(data).expand() if r.is_training]
        if not runs:
            raise ConfigError("strategies", "this study has no training run to inspect")
        config = runs[args.run_index]
    else:
        config = RunConfig.from_dict(data)
    config.validate()
    for batch in describe_batches(batch_plan(config), load_training_sources(config), args.batches):
        print(json.dumps(batch, ensure_ascii=False))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from engine.trec import as_json, as_trec, score_files

    measures = [m.strip() for m in args.measures.split(",") if m.strip()]
    per_query = score_files(Path(args.qrels), Path(args.run), measures, complete=args.complete)
    if args.format == "trec":
        print(as_trec(per_query, args.per_query))
    else:
        print(json.dumps(as_json(per_query, args.per_query), indent=2 if args.per_query else None, ensure_ascii=False))
    return 0


def cmd_export_model(args: argparse.Namespace) -> int:
    from engine.loading import load_encoder
    from engine.train import MODEL_DIR
    from hybridscale.worker import run_folder
    from vocabulary.config import is_run_id

    run_id = args.run_id
    if not is_run_id(run_id):
        raise UserError(f"{run_id!r} is not a run id (16 hexadecimal digits; 'hybridscale status' lists them)")
    db = _open(args, read_only=True)
    model = run_folder(db.artifacts_dir, run_id) / MODEL_DIR
    if not model.is_dir():
        raise UserError(_no_model(db, run_id, model))
    target = Path(args.dir)
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} exists and is not empty; give a new folder")
    load_encoder(str(model), device="cpu").save(target)
    print(f"wrote the model of run {run_id} to {target} (a Hugging Face and sentence-transformers folder)")
    return 0


def _no_model(db, run_id: str, model: Path) -> str:
    """Why ``model`` is missing: in another artifacts folder (the one of the run's log), or never kept."""
    from engine.train import MODEL_DIR
    from storage.queries import run_log_path

    log_path = run_log_path(db, run_id)
    kept = Path(log_path).parent / MODEL_DIR if log_path else None
    if kept is not None and kept != model and kept.is_dir():
        return f"run {run_id} has no model in {model}, but its model is in {kept}: give --artifacts {kept.parents[2]}"
    return (f"run {run_id} has no model in {model} (not finished, or it ran with keep_model off); "
            "run it again with keep_model on")


def cmd_gui(args: argparse.Namespace) -> int:
    from gui.app import main as gui_main
    from gui.qt_check import BrokenQtError
    from hybridscale.study_data import EngineStudyData

    try:
        return gui_main(db=args.db, study_data=EngineStudyData())
    except BrokenQtError as exc:
        raise UserError(str(exc)) from None


# ---- hub data ----------------------------------------------------------------
def _study_hub_files(path_text: str):
    """The hub files the study's runs read (a study file that does not parse is a UserError)."""
    from engine.data.remote import study_files

    return study_files(_load_study(path_text).expand())


def cmd_data_list(args: argparse.Namespace) -> int:
    from engine.data.remote import with_sizes

    files, unreachable = with_sizes(_study_hub_files(args.study))
    if not files:
        print("this study reads no hub files (everything it needs is shipped or local)")
        return 0
    for remote in files:
        size = "size unknown" if remote.size is None else _megabytes(remote.size)
        matched = "" if remote.sizes is None or "*" not in remote.files.path else f", {len(remote.sizes)} files"
        print(f"{remote.files.url}  ({size}{matched})")
    if unreachable:
        print(f"sizes unknown: the hub could not be reached ({unreachable})", file=sys.stderr)
    else:
        print(f"total {_megabytes(sum(r.size or 0 for r in files))}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from engine.data.hub import DATA_DIR_ENV
    from engine.data.remote import download

    files = _study_hub_files(args.study)
    target = Path(args.to).expanduser().resolve()
    try:
        folders = download(files, target)
    except Exception as exc:  # offline, a refused or moved repo: one line, nothing half-claimed
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"download into {target} failed ({type(exc).__name__}: {cause}); run it again where the "
                        "hub can be reached (finished files are kept and resumed)") from None
    for folder in folders:
        print(folder)
    print(f"done; on the compute nodes: export {DATA_DIR_ENV}={target} (or 'hybridscale worker --data-dir {target}')")
    return 0


def _use_data_dir(folder: str | None) -> None:
    """Point every loader (here and in processes started from here) at downloaded hub repos in ``folder``."""
    if folder is None:
        return
    from engine.data.hub import DATA_DIR_ENV

    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"--data-dir {folder}: no such folder (fill it with 'hybridscale data download STUDY --to DIR')")
    os.environ[DATA_DIR_ENV] = str(path)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


# ---- parser ----------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybridscale",
        description="Hybrid batch training scaling studies for zero-shot cross-lingual retrieval (sw, yo).",
    )
    parser.add_argument("--version", action="version", version=f"hybridscale {__version__}")
    db_help = ("database: a SQLite file path or any SQLAlchemy URL (default: $HYBRIDSCALE_DB, else hybridscale.db "
               "in the user data folder); before or after the command")
    parser.add_argument("--db", default=os.environ.get("HYBRIDSCALE_DB") or None, help=db_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        # After the command too; SUPPRESS leaves the value given before it (or the default) when it is not repeated.
        command.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
        return command

    p = add("submit", cmd_submit, "queue the runs of a study file (runs already done are reused)")
    p.add_argument("study", help="study JSON file (StudyConfig)")
    p.add_argument("--corpus", default=None, metavar="PATH",
                   help="MIRACL passage corpus (JSONL/TSV file or folder) for the study's miracl evaluation; "
                        "needed offline, since MIRACL passages are not shipped")
    slurm = p.add_argument_group("cluster", "with --slurm, also write an sbatch job array: one task per queued run")
    slurm.add_argument("--slurm", action="store_true", help="write the sbatch script after queueing")
    slurm.add_argument("--slurm-out", metavar="FILE", default=None,
                       help="script path (default: hybridscale-study-NAME.sbatch here); task logs go to slurm-logs/ beside it")
    slurm.add_argument("--partition", default=None)
    slurm.add_argument("--account", default=None)
    slurm.add_argument("--time", default="24:00:00", help="time limit per task (default: 24:00:00)")
    slurm.add_argument("--gpus-per-task", type=int, default=1,
                       help="GPUs per task; more than 1 trains each run with DDP on that many (default: 1; 0: CPU)")
    slurm.add_argument("--cpus-per-task", type=int, default=8)
    slurm.add_argument("--mem", default=None, help="memory per node, e.g. 64G")
    slurm.add_argument("--array-parallel", type=int, default=None, metavar="K", help="at most K tasks at once")
    slurm.add_argument("--job-name", default="hybridscale")
    slurm.add_argument("--slurm-setup", action="append", default=[], metavar="LINE",
                       help="shell line run before the worker, e.g. 'source ~/venv/bin/activate' (repeatable)")
    slurm.add_argument("--artifacts", dest="task_artifacts", default=None, metavar="URL",
                       help="the tasks' shared artifact location (path or fsspec URL, see 'worker --artifacts')")
    slurm.add_argument("--workdir", dest="task_workdir", default=None, metavar="DIR",
                       help="the tasks' local working folder; expanded by the task's shell, e.g. '$SLURM_TMPDIR/hs'")
    slurm.add_argument("--allow-sqlite", action="store_true",
                       help="accept a SQLite file on a local disk (only if every task runs on this node)")

    p = add("status", cmd_status, "show studies and their runs")
    p.add_argument("--study", type=int, default=None, help="only this study id")

    p = add("cancel", cmd_cancel, "cancel queued runs, or ask running ones to stop")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID")

    p = add("retry", cmd_retry, "queue failed or cancelled runs again")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID")

    p = add("export", cmd_export, "write the tidy metrics table and/or the per-query values as CSV")
    p.add_argument("--csv", metavar="FILE", help="the metrics: one row per run, eval set, setting, languages, metric")
    p.add_argument("--per-query", metavar="FILE",
                   help="the per-query values behind the metrics: one row per run, eval set, setting, languages, "
                        "query and metric")
    p.add_argument("--runs", metavar="FILE",
                   help="one row per run: its settings, state and provenance (software, device, timings, data read)")
    p.add_argument("--mlflow", metavar="URI",
                   help="an MLflow tracking URI (e.g. file:./mlruns): one MLflow run per finished run, updated in "
                        "place when exported again (needs 'pip install hybridscale[mlflow]')")
    p.add_argument("--study", type=int, default=None, help="only runs of this study id")

    p = add("compare", cmd_compare,
            "paired comparisons of a study's strategies at every size and language, on stored per-query values")
    p.add_argument("--study", type=int, required=True, help="study id (see 'hybridscale status')")
    p.add_argument("--eval-set", required=True, help="eval set label as stored, e.g. 'flores/test'")
    p.add_argument("--setting", required=True, choices=("mono", "cross", "multi"))
    p.add_argument("--metric", required=True, help="a stored metric, e.g. nDCG@10")
    p.add_argument("--baseline", default=None, metavar="STRATEGY",
                   help="compare every series with this one (a series name, or a strategy key such as 'hybrid' when "
                        "one series has it); default: every pair")
    p.add_argument("--json", action="store_true", help="a JSON list of objects (the Holm family goes to stderr)")

    p = add("report", cmd_report,
            "write a study's findings (summary.md), its CSVs (metrics, per-query, comparisons, fits) and plots")
    p.add_argument("--study", type=int, required=True, help="study id (see 'hybridscale status')")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")

    p = add("worker", cmd_worker, "take runs from the queue and execute them (train, evaluate, store)")
    p.add_argument("--once", action="store_true", help="execute at most one run, then exit")
    p.add_argument("--max-runs", type=int, default=None, help="exit after this many runs")
    p.add_argument("--exit-when-empty", action="store_true", help="exit when the queue is empty instead of waiting")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to train and encode")
    p.add_argument("--stale-after", type=float, default=120.0, metavar="SECONDS",
                   help="requeue runs whose worker has not sent a heartbeat for this long")
    p.add_argument("--poll", type=float, default=2.0, metavar="SECONDS", help="queue polling interval when idle")
    p.add_argument("--worker-id", default=None, help="name shown in the queue (default: host:pid)")
    p.add_argument("--artifacts", default=None, metavar="LOCATION",
                   help="checkpoints, logs and trained models: a folder (default: 'artifacts' beside a SQLite file), "
                        "or any fsspec URL (s3://bucket/hs, file:///shared/hs) that workers on several machines "
                        "share; with a URL, training works in --workdir and mirrors every checkpoint there")
    p.add_argument("--workdir", default=None, metavar="DIR",
                   help="local working folder when --artifacts is a shared location (default: the 'artifacts' "
                        "folder beside a SQLite file, or in the user data folder)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="read hub datasets from DIR, filled by 'hybridscale data download' (default: "
                        "$HYBRIDSCALE_DATA_DIR, else the hub)")
    p.add_argument("--nproc-per-node", type=int, default=1, metavar="N",
                   help="train each run on N processes (GPUs) of this machine with DDP, launched through torchrun")

    p = add("demo", cmd_demo, "run the embedded demo study headless and write results, CSV and plots")
    p.add_argument("--out", default="hybridscale-demo", help="output folder (database, report.csv, plots, summary.md)")
    p.add_argument("--quick", action="store_true", help="a much smaller study for smoke tests (a few minutes)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="worker processes sharing the CPU cores (default 2, or 1 on a 1-core machine; "
                        "a GPU always gets one)")

    p = add("template", cmd_template, "print a study file to start from (--list: the templates)")
    p.add_argument("name", nargs="?", help="the template's name (see --list)")
    p.add_argument("--list", action="store_true", help="list the templates")

    p = add("plan", cmd_plan, "what a study will cost before it is submitted: runs, steps, tokens, GPU and CPU "
                              "hours, memory, disk, downloads")
    p.add_argument("study", help="study JSON file (StudyConfig)")
    p.add_argument("--json", action="store_true", help="the plan as JSON (runs, gpu_hours, disk_gb, downloads, ...)")

    p = add("inspect-batches", cmd_inspect_batches,
            "print the composition of the first training batches as JSON lines (kind, languages, groups, passage ids)")
    p.add_argument("config", help="a study or run JSON file")
    p.add_argument("--batches", type=int, default=10, help="how many batches to print")
    p.add_argument("--run-index", type=int, default=0, help="for a study file: which training run (0 = first)")

    p = add("metrics", cmd_metrics, "score a TREC run file against TREC qrels with trec_eval's code (pytrec_eval)")
    p.add_argument("--qrels", required=True, help="TREC qrels file: qid iter docid rel (.gz is read as gzip)")
    p.add_argument("--run", required=True, help="TREC run file: qid Q0 docid rank score tag (.gz is read as gzip)")
    p.add_argument("--measures", default=",".join(DEFAULT_MEASURES), help="comma-separated ir_measures names")
    p.add_argument("--per-query", "-q", action="store_true", help="the value of every query (and, for trec, the means)")
    p.add_argument("--complete", "-c", action="store_true",
                   help="score judged queries the run lacks as 0 (trec_eval -c); by default they are skipped")
    p.add_argument("--format", choices=("json", "trec"), default="json",
                   help="json (every digit) or trec (trec_eval's layout: measure, query or 'all', value)")

    p = add("export-model", cmd_export_model,
            "write a run's trained model as a full Hugging Face / sentence-transformers folder")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("dir", metavar="DIR", help="a new (or empty) folder")
    p.add_argument("--artifacts", default=None, metavar="DIR",
                   help="the artifacts folder the run was executed in (default: 'artifacts' beside a SQLite file)")

    p = add("data", lambda _args: 0, "the hub files a study reads: list them, or download them for offline nodes")
    data = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data.add_parser("list", help="one line per hub file the study reads (hf://datasets/REPO/PATH), with sizes")
    q.set_defaults(handler=cmd_data_list)
    q.add_argument("study", help="study JSON file (StudyConfig)")
    q = data.add_parser("download", help="fetch them into DIR in the hub layout (resumable), for nodes without internet")
    q.set_defaults(handler=cmd_data_download)
    q.add_argument("study", help="study JSON file (StudyConfig)")
    q.add_argument("--to", required=True, metavar="DIR", help="the data folder (DIR/<owner>/<name>/...)")

    p = add("gui", cmd_gui, "open the desktop app")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    args.argv = raw  # what a relaunch under torchrun repeats
    try:
        return args.handler(args)
    except (UserError, ValueError, OSError, KeyError) as exc:  # OSError: files, disks and databases
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"hybridscale {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hybridscale {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``hybridscale export --mlflow URI``: one MLflow run per finished hybridscale run.

Params are the run's settings (its RunConfig, nested values as JSON),
metrics every stored value, named after the CSV's columns
(``eval_set/setting/query_language-passage_language/metric``, with the
characters MLflow refuses in a key, such as ``@``, as ``_``: ``nDCG@10`` is
``nDCG_10``), tags the study, series, strategy, label and the provenance
columns (``provenance.torch``, …), and the TREC run files and qrels of the
run's ``eval/`` folder are its artifacts (where this machine has them).

The hybridscale run id is the key: every MLflow run carries it as the tag
``hybridscale.run_id`` and a digest of what was exported as
``hybridscale.digest``. Exporting again leaves a run whose content is
unchanged as it is, and replaces (deletes, then writes anew) one whose
content changed, so a store never holds two active runs of one hybridscale
run. MLflow keeps a metric's history, so re-logging in place would grow it.

MLflow 3's file store (``file:`` URIs) refuses to open unless
``MLFLOW_ALLOW_FILE_STORE`` is set; for a ``file:`` URI the export sets it
(the README names this), since a local folder is what most users point at.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from storage.db import Database
from storage.provenance import run_rows
from storage.queries import list_studies, run_configs, tidy_metrics
from vocabulary.checks import check_run_id
from vocabulary.config import RunConfig
from vocabulary.provenance import PROVENANCE_COLUMNS
from vocabulary.run_files import EVAL_DIR
from vocabulary.status import RunStatus

#: The experiment runs go to when no study is named (with ``--study`` it is the study's name).
DEFAULT_EXPERIMENT = "hybridscale"
RUN_ID_TAG = "hybridscale.run_id"
DIGEST_TAG = "hybridscale.digest"
_NOT_IN_KEY = re.compile(r"[^/\w.\- ]")
#: MLflow's limits (mlflow.utils.validation): values per batch, characters per param and tag value.
_METRICS_PER_BATCH, _PARAMS_TAGS_PER_BATCH, _PARAM_LENGTH, _TAG_LENGTH = 1000, 100, 6000, 8000
_RUN_TAGS = ("study", "series", "strategy", "label")
#: MLflow runs asked for at once when the experiment's runs are listed (MLflow's default page).
_SEARCH_PAGE = 1000


class MlflowExportError(RuntimeError):
    """MLflow is not installed, or the tracking store refused the export; the message is one line."""


@dataclass(frozen=True)
class MlflowExport:
    created: int
    replaced: int
    unchanged: int
    skipped: int

    def summary(self) -> str:
        return (f"{self.created} run(s) created, {self.replaced} replaced, {self.unchanged} unchanged; "
                f"{self.skipped} not finished (not exported)")


def metric_key(row: dict[str, Any]) -> str:
    """The MLflow name of a tidy metric row (the CSV's cell columns joined by ``/``)."""
    key = (f"{row['eval_set']}/{row['setting']}/{row['query_language']}-{row['passage_language']}/"
           f"{row['metric']}")
    return _NOT_IN_KEY.sub("_", key)


def export_to_mlflow(db: Database, uri: str, study_id: int | None = None) -> MlflowExport:
    """Write every done run (of the study) to the tracking store at ``uri``; return what happened."""
    client = _client(uri)
    from mlflow.exceptions import MlflowException

    try:
        return _export(client, db, study_id)
    except MlflowException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MlflowExportError(f"{uri}: {first}") from exc


def _export(client, db: Database, study_id: int | None) -> MlflowExport:
    experiment_id = _experiment(client, _experiment_name(db, study_id))
    metrics: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in tidy_metrics(db, study_id):
        metrics[row["run_id"]].append(row)
    configs, existing = run_configs(db, study_id), _exported(client, experiment_id)
    counts = {"created": 0, "replaced": 0, "unchanged": 0, "skipped": 0}
    for run in run_rows(db, study_id):
        if run["status"] != RunStatus.DONE:
            counts["skipped"] += 1
            continue
        counts[_export_run(client, experiment_id, db, run, configs[run["run_id"]], metrics[run["run_id"]],
                           existing.get(run["run_id"], []))] += 1
    return MlflowExport(**counts)


def _exported(client, experiment_id: str) -> dict[str, list]:
    """The experiment's active MLflow runs by the hybridscale run id they carry, listed once for every run."""
    found: dict[str, list] = defaultdict(list)
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=_SEARCH_PAGE, page_token=token)
        for run in page:
            if RUN_ID_TAG in run.data.tags:
                found[run.data.tags[RUN_ID_TAG]].append(run)
        token = page.token
        if not token:
            return found


def _client(uri: str):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MlflowExportError("--mlflow needs MLflow: pip install 'hybridscale[mlflow]'") from None
    if uri.startswith("file:") or "://" not in uri and ":" not in uri.split("/")[0]:  # a file: URI or a folder
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri)


def _experiment_name(db: Database, study_id: int | None) -> str:
    if study_id is None:
        return DEFAULT_EXPERIMENT
    return next((s.name for s in list_studies(db) if s.id == study_id), DEFAULT_EXPERIMENT)


def _experiment(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _export_run(client, experiment_id: str, db: Database, run: dict[str, Any], config: RunConfig,
                rows: Sequence[dict[str, Any]], existing: list) -> str:
    """Create, replace or leave the MLflow run of one hybridscale run (``existing``: the MLflow runs that carry
    its id); return which it was."""
    from mlflow.entities import Metric, Param, RunTag

    params = {_key(k): _text(v, _PARAM_LENGTH) for k, v in config.to_dict().items()}
    values = {metric_key(row): float(row["value"]) for row in rows}
    tags = {name: _text(run[name], _TAG_LENGTH) for name in _RUN_TAGS if run.get(name) not in (None, "")}
    tags.update({f"provenance.{_key(k)}": _text(v, _TAG_LENGTH) for k, v in run.items()
                 if k not in _RUN_TAGS and v not in (None, "") and k in PROVENANCE_COLUMNS})
    folder = Path(db.artifacts_dir) / "runs" / check_run_id(run["run_id"]) / EVAL_DIR  # a planted id is no path
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    digest = hashlib.sha256(json.dumps([params, values, tags, files], sort_keys=True).encode()).hexdigest()
    if any(r.data.tags.get(DIGEST_TAG) == digest for r in existing):
        return "unchanged"
    for old in existing:
        client.delete_run(old.info.run_id)
    created = client.create_run(experiment_id, tags={RUN_ID_TAG: run["run_id"]}, run_name=run["label"][:250])
    mlflow_id, now = created.info.run_id, int(time.time() * 1000)
    for chunk in _chunks([Param(k, v) for k, v in params.items()], _PARAMS_TAGS_PER_BATCH):
        client.log_batch(mlflow_id, params=chunk)
    for chunk in _chunks([RunTag(k, v) for k, v in tags.items()], _PARAMS_TAGS_PER_BATCH):
        client.log_batch(mlflow_id, tags=chunk)
    for chunk in _chunks([Metric(k, v, now, 0) for k, v in values.items()], _METRICS_PER_BATCH):
        client.log_batch(mlflow_id, metrics=chunk)
    if files:
        client.log_artifacts(mlflow_id, str(folder), "eval")
    client.set_tag(mlflow_id, DIGEST_TAG, digest)  # last: a run cut off mid-export is replaced next time
    client.set_terminated(mlflow_id, "FINISHED")
    return "replaced" if existing else "created"


def _key(name: str) -> str:
    return _NOT_IN_KEY.sub("_", name)


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:limit]


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


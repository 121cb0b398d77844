"""What a provenance record holds, and the views of it every reader shares.

A record is a plain JSON object written by the worker at the end of each
attempt of a run (:mod:`hybridscale.provenance` collects it) and stored per
attempt (:mod:`storage.provenance`). Readers (``export --runs``, the report,
``status``, the queue view, the MLflow export) only ever see it through the
functions here, so a column means the same thing everywhere:

``software``: package -> version (``hybridscale_commit`` where it ran from a
git checkout); ``device``: ``{"name", "count"}``; ``phases``: one entry per
reported phase in order, ``{"phase", "start", "end", "seconds", "done",
"rate"}`` where ``done`` counts training steps or encoded texts and ``rate``
is that count per second between the phase's first and last report;
``peak_rss_mb``/``peak_gpu_mb``; ``data``: the files the run opened for
reading, ``{"file", "size", "sha256", "kind", "repo", "revision"}``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: The packages whose versions a record names, in the order columns show them.
PACKAGES: tuple[str, ...] = (
    "hybridscale", "torch", "transformers", "tokenizers", "sentence-transformers", "datasets", "huggingface_hub",
    "faiss-cpu", "faiss-gpu", "numpy", "scipy", "bm25s", "pytrec_eval-terrier", "SQLAlchemy",
)
#: What a comparison across runs must hold equal to be like for like (software and hardware).
ENVIRONMENT_FIELDS: tuple[str, ...] = ("hybridscale", "torch", "transformers", "cuda", "cudnn", "device", "devices")
#: The columns of ``export --runs`` after the run's own (one tidy row per run, its latest attempt's record).
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "attempt", "outcome", "started_at", "finished_at", "hybridscale", "hybridscale_commit", "python", "os", "host",
    "torch", "transformers", "tokenizers", "sentence-transformers", "datasets", "huggingface_hub", "faiss", "numpy",
    "cuda", "cudnn", "device", "devices", "training_s", "evaluation_s", "steps_per_s", "passages_per_s",
    "peak_rss_mb", "peak_gpu_mb", "data_files", "data",
)
#: The phase that trains (as the trainer reports it) and the evaluation sub-phase that encodes passages.
TRAINING_PHASE = "training"
PASSAGE_PHASE = "encoding passages"
EVALUATION_PREFIX = "evaluating "


def _phases(record: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    return record.get("phases") or ()


def training_seconds(record: Mapping[str, Any]) -> float | None:
    spans = [p["seconds"] for p in _phases(record) if p["phase"] == TRAINING_PHASE]
    return sum(spans) if spans else None


def evaluation_seconds(record: Mapping[str, Any]) -> float | None:
    spans = [p["seconds"] for p in _phases(record) if p["phase"].startswith(EVALUATION_PREFIX)]
    return sum(spans) if spans else None


def steps_per_second(record: Mapping[str, Any]) -> float | None:
    rates = [p["rate"] for p in _phases(record) if p["phase"] == TRAINING_PHASE and p.get("rate")]
    return rates[-1] if rates else None


def passages_per_second(record: Mapping[str, Any]) -> float | None:
    """Passages encoded per second over every eval set's passage encoding (texts over the seconds it took)."""
    spans = [p for p in _phases(record) if p["phase"].endswith(PASSAGE_PHASE) and p.get("done")]
    seconds = sum(p["seconds"] for p in spans)
    return sum(p["done"] for p in spans) / seconds if spans and seconds > 0 else None


def throughput_text(record: Mapping[str, Any]) -> str:
    """``0.99 steps/s, 413 passages/s`` (what the record measured; empty when it measured neither)."""
    parts = []
    steps, passages = steps_per_second(record), passages_per_second(record)
    if steps is not None:
        parts.append(f"{steps:.3g} steps/s")
    if passages is not None:
        parts.append(f"{passages:.0f} passages/s")
    return ", ".join(parts)


def device_text(record: Mapping[str, Any]) -> str:
    """``1 × NVIDIA H100 80GB HBM3``, ``2 × cpu``."""
    device = record.get("device") or {}
    return f"{device.get('count', 1)} × {device.get('name', 'unknown device')}"


def environment(record: Mapping[str, Any]) -> dict[str, Any]:
    """The software and hardware a run's numbers depend on (:data:`ENVIRONMENT_FIELDS`)."""
    software = record.get("software") or {}
    device = record.get("device") or {}
    return {"hybridscale": software.get("hybridscale_commit") or software.get("hybridscale"),
            "torch": software.get("torch"), "transformers": software.get("transformers"),
            "cuda": software.get("cuda"), "cudnn": software.get("cudnn"), "device": device.get("name"),
            "devices": device.get("count")}


def differences(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Field -> the distinct values (in first-seen order) of each environment field on which the records differ."""
    found: dict[str, list[Any]] = {}
    for record in records:
        for name, value in environment(record).items():
            values = found.setdefault(name, [])
            if value not in values:
                values.append(value)
    return {name: values for name, values in found.items() if len(values) > 1}


def data_text(record: Mapping[str, Any]) -> str:
    """The data files read, one ``file (size bytes, sha256 prefix or revision)`` each, joined by ``; ``."""
    parts = []
    for item in record.get("data") or ():
        detail = [f"{item.get('size')} bytes"]
        if item.get("revision"):
            detail.append(f"{item.get('repo')}@{item['revision']}")
        elif item.get("sha256"):
            detail.append(f"sha256 {item['sha256'][:12]}")
        parts.append(f"{item['file']} ({', '.join(detail)})")
    return "; ".join(parts)


def columns(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as the flat cells of :data:`PROVENANCE_COLUMNS`."""
    software = record.get("software") or {}
    device = record.get("device") or {}
    return {
        "attempt": record.get("attempt"), "outcome": record.get("outcome"), "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"), "hybridscale": software.get("hybridscale"),
        "hybridscale_commit": software.get("hybridscale_commit"), "python": software.get("python"),
        "os": record.get("os"), "host": record.get("host"),
        **{name: software.get(name) for name in ("torch", "transformers", "tokenizers", "sentence-transformers",
                                                 "datasets", "huggingface_hub", "numpy", "cuda", "cudnn")},
        "faiss": software.get("faiss-cpu") or software.get("faiss-gpu"),
        "device": device.get("name"), "devices": device.get("count"),
        "training_s": _rounded(training_seconds(record)), "evaluation_s": _rounded(evaluation_seconds(record)),
        "steps_per_s": _rounded(steps_per_second(record)), "passages_per_s": _rounded(passages_per_second(record)),
        "peak_rss_mb": record.get("peak_rss_mb"), "peak_gpu_mb": record.get("peak_gpu_mb"),
        "data_files": len(record.get("data") or ()), "data": data_text(record),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summary_line(records: Sequence[Mapping[str, Any]]) -> str:
    """``all runs on torch X, transformers Y, 1 × NVIDIA …`` or, where they differ, what differs."""
    if not records:
        return "no run has a provenance record (runs finished before hybridscale recorded one)"
    first = environment(records[0])
    differing = differences(records)
    shared = [f"{name} {first[name]}" for name in ("torch", "transformers") if name not in differing]
    if "device" not in differing and "devices" not in differing:
        shared.append(device_text(records[0]))
    runs = f"all {len(records)} runs" if len(records) > 1 else "the one run"
    text = f"{runs} on " + ", ".join(shared) if shared else runs
    if differing:
        text += "; they differ in " + "; ".join(
            f"{name} ({' vs '.join(str(v) for v in values)})" for name, values in differing.items())
    return text


def tooltip_lines(record: Mapping[str, Any]) -> list[str]:
    """A few lines for a tooltip or a details pane: software, device, timings, memory, data."""
    software = record.get("software") or {}
    commit = software.get("hybridscale_commit")
    lines = [f"hybridscale {software.get('hybridscale')}" + (f" ({commit[:10]})" if commit else "")
             + f", torch {software.get('torch')}, transformers {software.get('transformers')}",
             f"{device_text(record)} on {record.get('host')}, Python {software.get('python')}"]
    timing = [f"{name} {value:.1f} s" for name, value in (("training", training_seconds(record)),
                                                          ("evaluation", evaluation_seconds(record)))
              if value is not None]
    if throughput_text(record):
        timing.append(throughput_text(record))
    if timing:
        lines.append(", ".join(timing))
    memory = [f"peak RAM {record['peak_rss_mb']:.0f} MB"] if record.get("peak_rss_mb") is not None else []
    if record.get("peak_gpu_mb") is not None:
        memory.append(f"peak GPU {record['peak_gpu_mb']:.0f} MB")
    if memory:
        lines.append(", ".join(memory))
    data = record.get("data") or ()
    if data:
        more = " …" if len(data) > 3 else ""
        lines.append(f"{len(data)} data file(s) read: {data_text({'data': data[:3]})}{more}")
    return lines

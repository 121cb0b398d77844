"""Trained parameters only: a frozen-prefix run's model as its base model plus what training changed.

A run that trains the top N layers leaves the embeddings and the layers below
untouched, and they are most of the model (e5-small: 110 of 118 M parameters
with the top 4 of 12 layers trained). Such a run's model folder holds
:data:`TRAINED_FILE` (the trained tensors, safetensors) and
:data:`RECORD` (the base model spec, the resolved encoder settings and their
sources, the names of the trained tensors, and a digest of every other tensor
of the base). :func:`engine.loading.load_encoder` loads such a folder like any
model: it loads the base, checks that its untrained tensors still have that
digest (a base folder changed since the run is refused, not silently mixed),
and loads the trained tensors on top. ``hybridscale export-model`` turns it
into a full Hugging Face / sentence-transformers folder with
:meth:`engine.model.Encoder.save`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from engine.embedded import make_readable
from engine.folders import replaced_whole

#: The record that makes a folder a compact model (and names its base).
RECORD = "hybridscale_trained.json"
TRAINED_FILE = "trained.safetensors"


def is_compact_folder(folder: Path) -> bool:
    return (Path(folder) / RECORD).is_file()


def untrained_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(memoryview(tensors[name].detach().cpu().contiguous().numpy()).cast("B"))
    return digest.hexdigest()


def save_trained(encoder, folder: Path) -> None:
    """Write ``encoder``'s trainable tensors and a reference to its base into ``folder`` (replaced whole)."""
    trained = {name for name, p in encoder.named_parameters() if p.requires_grad}
    state = encoder.state_dict()
    record = {
        "base_model": encoder.spec,
        "settings": dataclasses.asdict(encoder.settings),
        "sources": encoder.sources,
        "trained": sorted(trained),
        "untrained_sha256": untrained_digest({k: v for k, v in state.items() if k not in trained}),
    }
    with replaced_whole(Path(folder)) as work:
        save_file({k: state[k].detach().cpu().contiguous() for k in sorted(trained)}, str(work / TRAINED_FILE))
        (work / RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        make_readable(work)

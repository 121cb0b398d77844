"""Run artifacts mirrored to a shared location: a path or any fsspec URL (file://, s3://, gs://, memory://).

Training reads and writes a fast local working folder; workers on several
machines share their runs through a mirror of it. After each checkpoint the
worker uploads it to ``<location>/runs/<run_id>/checkpoints/<step>/`` and then
writes ``checkpoint.json`` naming that folder; a worker that claims the run on
another machine (another local folder) downloads the newest mirrored
checkpoint first, so the run resumes wherever it is claimed. The final model
goes to ``<location>/runs/<run_id>/model/``, the run log beside it.

Why a pointer file rather than renaming a folder into place: object stores
have no atomic folder rename, but a small object is written whole, so a
reader sees the previous complete checkpoint or the new complete one, never a
half-uploaded folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import fsspec

from engine.train import checkpoint_step

_POINTER = "checkpoint.json"


class ArtifactMirror:
    """The shared copy of every run's checkpoint, model and log under one root location."""

    def __init__(self, location: str):
        self.location = location
        self._fs, self._root = fsspec.core.url_to_fs(location)

    def __str__(self) -> str:
        return self.location

    def _run(self, run_id: str) -> str:
        return f"{self._root.rstrip('/')}/runs/{run_id}"

    def url(self, run_id: str, name: str) -> str:
        """Where ``name`` (e.g. ``model``) of a run lives, as a URL other tools can open."""
        return self._fs.unstrip_protocol(f"{self._run(run_id)}/{name}")

    # ---- checkpoints --------------------------------------------------------
    def push_checkpoint(self, run_id: str, checkpoint_dir: Path, step: int) -> str:
        """Upload a local checkpoint, point ``checkpoint.json`` at it, drop older ones; return its URL."""
        run = self._run(run_id)
        name = f"checkpoints/{step:09d}"
        self._put_tree(Path(checkpoint_dir), f"{run}/{name}")
        self._fs.pipe_file(f"{run}/{_POINTER}", json.dumps({"step": step, "folder": name}).encode())
        for old in self._fs.ls(f"{run}/checkpoints", detail=False):
            if old.rstrip("/").rsplit("/", 1)[-1] != f"{step:09d}":
                self._fs.rm(old, recursive=True)
        return self.url(run_id, name)

    def pull_checkpoint(self, run_id: str, checkpoint_dir: Path) -> int | None:
        """Replace the local checkpoint by the mirrored one when that is newer; return its step, else None."""
        run = self._run(run_id)
        pointer = self._read_pointer(f"{run}/{_POINTER}")
        local = checkpoint_step(checkpoint_dir)
        if pointer is None or (local is not None and local >= pointer["step"]):
            return None
        download = Path(checkpoint_dir).with_name(Path(checkpoint_dir).name + ".download")
        shutil.rmtree(download, ignore_errors=True)
        self._get_tree(f"{run}/{pointer['folder']}", download)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        download.rename(checkpoint_dir)
        return int(pointer["step"])

    def _read_pointer(self, pointer: str) -> dict | None:
        if not self._fs.exists(pointer):
            return None
        try:
            return json.loads(self._fs.cat_file(pointer))
        except ValueError:
            raise ValueError(
                f"{self._fs.unstrip_protocol(pointer)} is not valid JSON (an interrupted upload?): "
                "delete it to resume from the local checkpoint or from scratch"
            ) from None

    # ---- whole folders and files ---------------------------------------------
    def push_folder(self, run_id: str, local: Path, name: str) -> str:
        """Replace ``name`` of the run by a copy of the local folder; return its URL."""
        target = f"{self._run(run_id)}/{name}"
        if self._fs.exists(target):
            self._fs.rm(target, recursive=True)
        self._put_tree(Path(local), target)
        return self.url(run_id, name)

    def push_file(self, run_id: str, local: Path) -> str:
        target = f"{self._run(run_id)}/{Path(local).name}"
        self._fs.makedirs(self._run(run_id), exist_ok=True)
        self._fs.put_file(str(local), target)
        return self.url(run_id, Path(local).name)

    def _put_tree(self, local: Path, remote: str) -> None:
        self._fs.makedirs(remote, exist_ok=True)
        for path in sorted(local.rglob("*")):
            target = f"{remote}/{path.relative_to(local).as_posix()}"
            if path.is_dir():
                self._fs.makedirs(target, exist_ok=True)  # empty folders matter (2_Normalize)
            else:
                self._fs.put_file(str(path), target)

    def _get_tree(self, remote: str, local: Path) -> None:
        local.mkdir(parents=True)
        prefix = remote.rstrip("/") + "/"
        for path in self._fs.find(remote):
            target = local / path[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            self._fs.get_file(path, str(target))

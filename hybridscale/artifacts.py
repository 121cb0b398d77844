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
half-uploaded folder. A finished run's checkpoints are removed
(:meth:`ArtifactMirror.remove_checkpoints`); its model and log stay.

The mirror is shared, so what it holds is checked before use: a run id must
be one (:func:`vocabulary.config.check_run_id`) before it becomes part of a
URL, and a pointer must name one of the run's own checkpoint folders.

:func:`share_identical_files` keeps one copy of the files every saved model
repeats (the 17 MB tokenizer): a content-addressed store of hard links beside
the runs, so each model folder stays complete and loads anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import fsspec

from engine.train import checkpoint_step
from vocabulary.config import check_run_id

_POINTER = "checkpoint.json"
_CHECKPOINT_FOLDER = re.compile(r"checkpoints/[0-9]{9}")


class ArtifactMirror:
    """The shared copy of every run's checkpoint, model and log under one root location."""

    def __init__(self, location: str):
        self.location = location
        self._fs, self._root = fsspec.core.url_to_fs(location)

    def __str__(self) -> str:
        return self.location

    def _run(self, run_id: str) -> str:
        return f"{self._root.rstrip('/')}/runs/{check_run_id(run_id)}"

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
        try:
            self._get_tree(f"{run}/{pointer['folder']}", download)
        except BaseException:
            shutil.rmtree(download, ignore_errors=True)  # a full disk must not keep half a checkpoint
            raise
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        download.rename(checkpoint_dir)
        return int(pointer["step"])

    def remove_checkpoints(self, run_id: str) -> None:
        """Delete the run's mirrored checkpoints and their pointer (its results are stored; nothing resumes)."""
        run = self._run(run_id)
        if self._fs.exists(f"{run}/{_POINTER}"):
            self._fs.rm(f"{run}/{_POINTER}")
        if self._fs.exists(f"{run}/checkpoints"):
            self._fs.rm(f"{run}/checkpoints", recursive=True)

    def _read_pointer(self, pointer: str) -> dict | None:
        if not self._fs.exists(pointer):
            return None
        where = self._fs.unstrip_protocol(pointer)
        try:
            content = json.loads(self._fs.cat_file(pointer))
        except ValueError:
            raise ValueError(
                f"{where} is not valid JSON (an interrupted upload?): "
                "delete it to resume from the local checkpoint or from scratch"
            ) from None
        valid = (isinstance(content, dict) and isinstance(content.get("step"), int)
                 and isinstance(content.get("folder"), str) and _CHECKPOINT_FOLDER.fullmatch(content["folder"]))
        if not valid:
            raise ValueError(f"{where} does not name one of the run's checkpoints (checkpoints/NNNNNNNNN): "
                             "delete it to resume from the local checkpoint or from scratch")
        return content

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


#: Files below this size are not worth a link; model weights differ per run and are never shared.
_SHARE_MIN_BYTES = 1024 * 1024
_NEVER_SHARED = (".safetensors", ".bin")


def share_identical_files(folder: Path, store: Path) -> int:
    """Replace ``folder``'s large non-weight files by hard links into a content-addressed ``store``.

    Every run's model carries the same tokenizer; with this it is stored once
    and each folder keeps a real file under its own name (a hard link), so
    ``AutoModel.from_pretrained`` and ``SentenceTransformer`` load the folder
    as before. Shared files are made read-only (an edit through one folder
    would change them all). Where hard links are impossible (another
    filesystem, no link support) the copy stays. Store entries no folder
    links to any more are deleted. Returns the bytes saved.
    """
    _prune(store)
    saved = 0
    for path in sorted(Path(folder).rglob("*")):
        if path.is_symlink() or not path.is_file() or path.name.endswith(_NEVER_SHARED):
            continue
        size = path.stat().st_size
        if size < _SHARE_MIN_BYTES:
            continue
        try:
            store.mkdir(parents=True, exist_ok=True)
            if _link_into_store(path, store / _sha256(path)):
                saved += size
        except OSError:
            continue  # keep the copy
    return saved


def _link_into_store(path: Path, shared: Path) -> bool:
    """Make ``path`` and ``shared`` one file; True when ``path``'s own bytes were given up for the store's."""
    try:
        os.link(path, shared)  # the first copy becomes the shared one
        shared.chmod(0o444)
        return False
    except FileExistsError:
        pass
    if os.path.samefile(path, shared):
        return False
    temporary = path.with_name(f".{path.name}.shared")
    temporary.unlink(missing_ok=True)
    os.link(shared, temporary)
    try:
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    return True


def _prune(store: Path) -> None:
    if not store.is_dir():
        return
    for entry in store.iterdir():
        try:
            if entry.is_file() and entry.stat().st_nlink == 1:
                entry.unlink()
        except OSError:
            continue


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

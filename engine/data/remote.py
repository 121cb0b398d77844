"""Which hub files a study reads, how large they are, and fetching them for machines without internet.

``hybridscale data list`` and ``data download`` are built on this. A source
reads the hub only where the study gives no local copy (``path``, an
AfriQA ``corpus`` that is not ``hf:NAME``, a training source ``NAME:PATH``);
each source module declares its files (:class:`engine.data.hub.HubFiles`),
so the list is the same one its loader reads. Sizes come from the hub's file
listing (``HfFileSystem``) when it can be reached; downloads go through
``huggingface_hub.snapshot_download`` (resumable, with progress bars) into
``DIR/<owner>/<name>/`` in the hub's layout, which :data:`engine.data.hub.DATA_DIR_ENV`
then points every loader at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from engine.data import afriqa, ciral, miracl, mmarco
from engine.data.hub import HubFiles
from vocabulary.config import EvalSpec, RunConfig
from vocabulary.sources import parse_source


@dataclass(frozen=True)
class RemoteFile:
    """One hub file (or glob) a study reads, with the sizes of what it matches when the hub was reachable."""

    files: HubFiles
    sizes: tuple[tuple[str, int], ...] | None = None

    @property
    def size(self) -> int | None:
        return None if self.sizes is None else sum(size for _, size in self.sizes)


def eval_files(spec: EvalSpec) -> list[HubFiles]:
    """The hub files an eval set reads when the study gives no local copy."""
    if spec.dataset in ("miracl", "ciral") and spec.path is None:
        module = miracl if spec.dataset == "miracl" else ciral
        return [module.hub_files(lang) for lang in spec.languages]
    if spec.dataset == "afriqa" and spec.corpus and spec.corpus.startswith(afriqa.HUB_PREFIX):
        return [afriqa.hub_files(spec.corpus[len(afriqa.HUB_PREFIX):])]
    return []


def train_files(source: str, languages: Iterable[str]) -> list[HubFiles]:
    """The hub files a training source (``NAME`` or ``NAME:PATH``) reads in ``languages``."""
    name, path = parse_source(source)
    if name != "mmarco" or path is not None:
        return []
    return mmarco.hub_files([lang for lang in languages if lang in mmarco.NAMES])


def run_files(run: RunConfig) -> list[HubFiles]:
    files = [f for spec in run.evaluations for f in eval_files(spec)]
    if run.is_training:
        files += [f for source in run.train_sources for f in train_files(source, run.train_languages)]
    return files


def study_files(runs: Iterable[RunConfig]) -> list[HubFiles]:
    """Every hub file of the runs, each once, in first-use order."""
    return list(dict.fromkeys(f for run in runs for f in run_files(run)))


def with_sizes(files: Iterable[HubFiles]) -> tuple[list[RemoteFile], str | None]:
    """Each file with the sizes of its matches, and why sizes are missing (the hub cannot be reached)."""
    files = list(files)
    try:
        from huggingface_hub import HfFileSystem

        fs = HfFileSystem()
        found = []
        for f in files:
            matches = fs.glob(f"datasets/{f.repo}/{f.path}", detail=True)
            sizes = tuple(sorted((path.split("/", 3)[3], int(info.get("size") or 0)) for path, info in matches.items()))
            found.append(RemoteFile(f, sizes))
        return found, None
    except Exception as exc:  # offline or the hub refused: the list stays useful without sizes
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [RemoteFile(f) for f in files], cause


def download(files: Iterable[HubFiles], to: Path) -> list[Path]:
    """Fetch the files into ``to/<owner>/<name>/`` in the hub's layout (resumable, progress bars); the folders."""
    from huggingface_hub import snapshot_download

    by_repo: dict[str, list[str]] = {}
    for f in files:
        by_repo.setdefault(f.repo, []).append(f.path)
    folders = []
    for repo, patterns in by_repo.items():
        folder = to / repo
        snapshot_download(repo, repo_type="dataset", allow_patterns=patterns, local_dir=folder)
        folders.append(folder)
    return folders

"""The shipped assets/data are the upstream files, compressed only, with their licences beside them."""

from __future__ import annotations

import lzma
from pathlib import Path

from engine.data.files import DATA_ROOT
from vocabulary.datasets import DATASETS

#: Files of ours, not copies of upstream files.
OWN_FILES = {"README.md", "__init__.py"}


def _shipped() -> list[Path]:
    return sorted(p for p in DATA_ROOT.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_every_shipped_file_equals_its_upstream_file_after_decompression(shared_data):
    compared = 0
    for path in _shipped():
        relative = path.relative_to(DATA_ROOT)
        if str(relative) in OWN_FILES:
            continue
        content = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
        upstream = shared_data / (relative.with_suffix("") if path.suffix == ".xz" else relative)
        assert content == upstream.read_bytes(), relative
        compared += 1
    assert compared == 110  # 96 data files + 14 licence/README copies


def test_every_source_has_its_licence_and_the_total_stays_small():
    for source in ("xquad", "flores", "afriqa", "miracl", "ntrex", "ciral"):
        folder = DATA_ROOT / source
        assert any(p.name.startswith("LICENSE") for p in folder.iterdir()), source
        assert source in (DATA_ROOT / "README.md").read_text(encoding="utf-8")
    assert sum(p.stat().st_size for p in _shipped()) < 4_000_000
    assert {info.id.split("-")[0] for info in DATASETS.values() if info.shipped} <= {p.name for p in DATA_ROOT.iterdir()}

"""The corpus sizes the registry declares are the ones the upstream READMEs shipped in assets/ publish."""

from __future__ import annotations

import re
from pathlib import Path

from vocabulary.datasets import DATASETS

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "data"


def _passages(readme: Path, language: str) -> int:
    """The '# of Passages' cell of ``language``'s row in the first table of an upstream README that has one."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if "# of Passages" in line)
    column = [cell.strip() for cell in lines[header].split("|")].index("# of Passages")
    row = next(line for line in lines[header:] if line.startswith(f"| {language} ("))
    return int(row.split("|")[column].strip().replace(",", ""))


def test_ciral_corpus_sizes_are_the_readmes():
    readme = ASSETS / "ciral" / "UPSTREAM_README.ciral.md"
    assert dict(DATASETS["ciral"].corpus_passages) == {"sw": _passages(readme, "Swahili"),
                                                     "yo": _passages(readme, "Yoruba")}
    assert "UPSTREAM_README.ciral.md" in DATASETS["ciral"].corpus_source


def test_miracl_sw_corpus_size_is_the_readmes_and_yo_names_its_source():
    readme = ASSETS / "miracl" / "UPSTREAM_README.miracl.md"
    assert DATASETS["miracl"].corpus_passages["sw"] == _passages(readme, "Swahili")
    assert re.search(r"yo: .*Cohere/miracl-yo-corpus-22-12", DATASETS["miracl"].corpus_source)


def test_the_sizes_in_words():
    assert DATASETS["ciral"].corpus_text() == "sw 949,013 and yo 82,095 passages"
    assert DATASETS["flores"].corpus_text() == ""

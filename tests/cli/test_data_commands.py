"""``hybridscale data list`` / ``data download``: the hub files a study reads, named as laid out on the hub,
and a data folder that the loaders then read (``worker --data-dir``, ``HYBRIDSCALE_DATA_DIR``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.data.hub import DATA_DIR_ENV
from engine.data.remote import study_files
from vocabulary.config import StudyConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
STUDY = {
    "name": "ciral and miracl", "strategies": ["mono"], "train_sizes": [150], "seeds": [0], "include_bm25": True,
    "template": {"train_dataset": ["xquad", "mmarco"], "train_languages": ["en", "de"],
                 "evaluations": [{"dataset": "ciral", "languages": ["sw", "yo"], "split": "test-a"},
                                 {"dataset": "miracl", "languages": ["sw"], "split": "dev"},
                                 {"dataset": "miracl", "languages": ["yo"], "split": "dev", "path": "/local/copy"}]},
}


def _hybridscale(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "hybridscale", *argv], capture_output=True, text=True,
                          env=environment, timeout=120)


def test_data_list_names_the_hub_files_of_ciral_miracl_and_mmarco_as_laid_out(tmp_path):
    study = tmp_path / "study.json"
    study.write_text(json.dumps(STUDY))
    result = _hybridscale("data", "list", str(study))
    assert result.returncode == 0, result.stderr
    assert [line.split("  ")[0] for line in result.stdout.splitlines()] == [
        "hf://datasets/CIRAL/ciral-corpus/passages-v1.0/swahili_passages.jsonl",
        "hf://datasets/CIRAL/ciral-corpus/passages-v1.0/yoruba_passages.jsonl",
        "hf://datasets/miracl/miracl-corpus/miracl-corpus-v1.0-sw/docs-*.jsonl.gz",
        "hf://datasets/unicamp-dl/mmarco/data/triples.train.ids.small.tsv",
        "hf://datasets/unicamp-dl/mmarco/data/google/queries/train/english_queries.train.tsv",
        "hf://datasets/unicamp-dl/mmarco/data/google/queries/train/german_queries.train.tsv",
        "hf://datasets/unicamp-dl/mmarco/data/google/collections/english_collection.tsv",
        "hf://datasets/unicamp-dl/mmarco/data/google/collections/german_collection.tsv",
    ]
    assert all(line.endswith("(size unknown)") for line in result.stdout.splitlines())
    assert result.stderr.startswith("sizes unknown: the hub could not be reached")


def test_a_study_without_hub_data_and_bad_input(tmp_path):
    shipped = dict(STUDY, template={"evaluations": [{"dataset": "flores", "languages": ["sw", "yo"]}]})
    study = tmp_path / "study.json"
    study.write_text(json.dumps(shipped))
    assert "reads no hub files" in _hybridscale("data", "list", str(study)).stdout
    missing = _hybridscale("data", "list", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and missing.stderr.strip().endswith("nope.json: no such study file")
    offline = _hybridscale("data", "download", str(tmp_path / "s.json"), "--to", str(tmp_path / "d"))
    assert offline.returncode == 2
    study.write_text(json.dumps(STUDY))
    offline = _hybridscale("data", "download", str(study), "--to", str(tmp_path / "d"))
    assert offline.returncode == 2 and len(offline.stderr.strip().splitlines()) == 1
    assert "download into" in offline.stderr and "run it again where the hub can be reached" in offline.stderr
    no_folder = _hybridscale("worker", "--once", "--data-dir", str(tmp_path / "absent"))
    assert no_folder.returncode == 2 and "--data-dir" in no_folder.stderr and "no such folder" in no_folder.stderr


def test_the_listed_files_are_the_ones_the_loaders_read_from_a_data_folder(tmp_path, monkeypatch):
    """Files laid out at DIR/<repo>/<path>, as 'data download' writes them, are what the loaders then read."""
    files = study_files(StudyConfig.from_dict(STUDY).validate().expand())
    ciral_yo = next(f for f in files if f.path.endswith("yoruba_passages.jsonl"))
    target = tmp_path / ciral_yo.repo / ciral_yo.path
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"docid": "BBC#3475#4", "title": "", "text": "Pogba"}) + "\n", encoding="utf-8")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    from engine.data import ciral
    from vocabulary.config import EvalSpec

    eval_set = ciral.load_eval_set(EvalSpec("ciral", ("yo",), "test-a"))
    assert [p.id for p in eval_set.passages] == ["yo:BBC#3475#4"]

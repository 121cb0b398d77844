"""The Setup page with the engine's answers (as ``hybridscale gui`` builds it): what a study will download and how
large, the corpus sizes in the evaluation table, and a local corpus in the wrong layout refused as submit does.

No machine here reaches the hub; huggingface_hub's offline switch is set too, so
the sizes end as "size unknown offline" wherever the test runs. The page must
say so without waiting for them (the lookup runs off the GUI thread).
"""

from __future__ import annotations

import json
import time

import pytest
from huggingface_hub import constants as hub_constants

from gui.setup_view import SetupView
from hybridscale.study_data import EngineStudyData
from results.study_data import DOWNLOAD_COMMAND
from tests.gui.conftest import grab, show_page
from vocabulary.config import EvalSpec, StudyConfig


@pytest.fixture()
def form(qtbot, app_model):
    return show_page(qtbot, SetupView(app_model, EngineStudyData()), 1200, 900)


def _evaluate(form: SetupView, *specs: EvalSpec) -> StudyConfig | None:
    """The form's study with only ``specs`` as its evaluations, validated as an edit would."""
    by_dataset = {spec.dataset: spec for spec in specs}
    for row in form.eval_rows:
        row.set_spec(by_dataset.get(row.dataset))
    return form.validate()


def test_the_page_says_which_hub_files_the_study_downloads_without_waiting_for_their_size(qtbot, form, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    began = time.monotonic()
    study = _evaluate(form, EvalSpec("ciral", ("sw", "yo"), "test-a"), EvalSpec("miracl", ("sw",), "dev"))
    assert study is not None and time.monotonic() - began < 2.0
    assert form.downloads.isVisible()
    first = form.downloads.text()
    # In the order of the form's evaluation table (MIRACL's row comes before CIRAL's).
    assert first.startswith("Downloads: 3 hub files (miracl sw corpus, ciral sw corpus, ciral yo corpus; ")
    assert first.endswith(f"— '{DOWNLOAD_COMMAND}' fetches them ahead for machines without internet")
    assert "; looking up the size)" in first  # the page never waits for the hub: the answer comes later
    qtbot.waitUntil(lambda: "size unknown offline" in form.downloads.text(), timeout=15_000)
    assert form.downloads.text() == first.replace("looking up the size", "size unknown offline")
    tooltip = form.downloads.toolTip().splitlines()
    assert tooltip[:3] == [
        "hf://datasets/miracl/miracl-corpus/miracl-corpus-v1.0-sw/docs-*.jsonl.gz  (size unknown)",
        "hf://datasets/CIRAL/ciral-corpus/passages-v1.0/swahili_passages.jsonl  (size unknown)",
        "hf://datasets/CIRAL/ciral-corpus/passages-v1.0/yoruba_passages.jsonl  (size unknown)",
    ]
    assert tooltip[3].startswith("The hub: Cannot reach https://huggingface.co/api/datasets/")
    assert "offline mode is enabled" in tooltip[3]
    grab(form, form.app_model.db.artifacts_dir.parent / "setup_downloads.png")


def test_a_study_of_shipped_and_local_data_shows_no_downloads_line(qtbot, form, tmp_path):
    corpus = tmp_path / "ciral-corpus" / "passages-v1.0" / "yoruba_passages.jsonl"
    corpus.parent.mkdir(parents=True)
    corpus.write_text(json.dumps({"docid": "BBC#1", "title": "", "text": "Pogba"}) + "\n", encoding="utf-8")
    assert _evaluate(form, EvalSpec("ciral", ("yo",), "test-a", path=str(corpus.parents[1])),
                     EvalSpec("flores", ("sw", "yo"), "test")) is not None
    assert not form.downloads.isVisible()


def test_a_local_corpus_in_the_wrong_layout_is_refused_with_the_line_submit_prints(qtbot, form, tmp_path):
    folder = tmp_path / "ciral"
    folder.mkdir()
    assert _evaluate(form, EvalSpec("ciral", ("yo",), "test-a", path=str(folder))) is None
    line = (f"{folder}: no passages-v1.0/yoruba_passages.jsonl in it; it is not laid out like hub repo "
            "CIRAL/ciral-corpus (see 'hybridscale data list')")
    ciral = next(row for row in form.eval_rows if row.dataset == "ciral")
    assert ciral.error.text() == f"ciral: {line}"
    assert form.preview.text() == f"Fix the ciral evaluation row, marked in red: {line}"
    assert not form.submit_button.isEnabled() and not form.downloads.isVisible()
    grab(form, form.app_model.db.artifacts_dir.parent / "setup_corpus_layout.png")


def test_the_evaluation_table_shows_the_corpus_sizes_of_ciral_and_miracl(form):
    corpus = {row.dataset: row.corpus for row in form.eval_rows}
    assert corpus["ciral"].text() == "sw 949,013 and yo 82,095 passages"
    assert corpus["miracl"].text() == "sw 131,924 and yo 49,043 passages"
    assert "CIRAL README" in corpus["ciral"].toolTip()
    assert corpus["flores"].text() == "shipped"

"""The form's training sources (issue 17): several at once, their sizes, paths and sampling, the zero-shot guard."""

from __future__ import annotations

import dataclasses

import pytest

from gui.setup_view import SetupView
from tests.gui.conftest import grab, show_page
from vocabulary.config import EvalSpec, StudyConfig


@pytest.fixture()
def form(qtbot, app_model):
    return show_page(qtbot, SetupView(app_model), 1200, 900)


def two_source_study() -> StudyConfig:
    """xquad plus MIRACL sw train from a local corpus, evaluated on MIRACL sw: an ablation, said so."""
    template = dataclasses.replace(
        StudyConfig("two sources").template,
        train_dataset=("miracl-train:/data/miracl-sw-corpus.jsonl", "xquad"),
        source_sampling="round_robin",
        ablation=True,
        train_languages=("de", "en", "sw"),  # in the form's order, as the eval sets below
        evaluations=(EvalSpec("flores", ("en", "sw", "yo"), "test"),
                     EvalSpec("miracl", ("sw",), "dev", path="/data/miracl-sw-corpus.jsonl")),
    )
    return StudyConfig("two sources", strategies=("mono", "hybrid"), train_sizes=(100, 400), seeds=(0,),
                       template=template)


def test_a_study_with_a_list_of_sources_loads_and_saves_unchanged(qtbot, form, tmp_path):
    study = two_source_study()
    assert study.validate() is study
    path = tmp_path / "two.json"
    path.write_text(study.to_json())
    form.load_study(path)
    assert form.left_out == []
    assert form.validate() == study
    saved = tmp_path / "saved.json"
    form.save_study(saved)
    assert StudyConfig.from_json(saved.read_text()) == study


def test_each_source_shows_its_size_and_languages(form):
    texts = {row.name: row.use.text() for row in form.train_sources.rows}
    assert texts == {
        "xquad": "xquad — 698 groups, 12 languages",
        "mmarco": "mmarco — size known after reading, 14 languages",
        "miracl-train": "miracl-train — 801 groups, 1 language, monolingual",
        "file": "file — size known after reading, any language",
        "flores": "flores — 701 groups, 17 languages",
    }
    # The default evaluations hold sw and yo (FLORES, AfriQA): the sources that have them say so.
    notes = {row.name: row.zero_shot.text() for row in form.train_sources.rows}
    assert notes == {"xquad": "", "mmarco": "", "miracl-train": "has evaluated sw", "file": "has evaluated sw, yo",
                     "flores": "has evaluated sw, yo"}


def test_two_sources_show_their_languages_sampling_and_largest_size(qtbot, form):
    sources = form.train_sources
    assert sources.names() == ("xquad",) and not form.sampling_row.isVisible()
    checked = form.train_languages.checked()
    sources.row("miracl-train").use.setChecked(True)
    assert sources.sources() == ("xquad", "miracl-train") and form.sampling_row.isVisible()
    # None of the ticked languages is in MIRACL train, so its one language is ticked with them.
    assert form.train_languages.checked() == tuple(sorted(checked + ("sw",)))
    # 698 + 801 groups; 675 split by largest remainder: 675*698/1499 = 314.3, 675*801/1499 = 360.7.
    assert form.size_hint.text() == ("At most 1,499 question groups: xquad 698 + miracl-train 801.\nA size is split "
                                     "across them in proportion: 675 is xquad 314 + miracl-train 361.")
    form.train_sizes.setText("100, 1500")
    assert form.validate() is None
    assert "larger than the 1499 question groups of xquad + miracl-train" in form._errors["train_sizes"].text()
    form.train_sizes.setText("100, 1499")
    form.source_sampling.setCurrentIndex(form.source_sampling.findData("round_robin"))
    study = form.validate()
    assert study is not None, form.general_error.text()
    assert study.template.train_dataset == ("xquad", "miracl-train")
    assert study.template.source_sampling == "round_robin"
    sources.row("xquad").use.setChecked(False)
    assert sources.sources() == ("miracl-train",) and not form.sampling_row.isVisible()
    assert form.size_hint.text() == "At most 801 question groups (the miracl-train train split)."


def test_training_on_sw_from_any_ticked_source_warns_and_ablation_relabels(qtbot, form, tmp_path):
    sources = form.train_sources
    sources.row("miracl-train").use.setChecked(True)
    sources.row("flores").use.setChecked(True)
    form.train_languages.set_checked(("de", "en", "sw"))
    flores = next(r for r in form.eval_rows if r.dataset == "flores")
    flores.split.setCurrentText("test")  # 'all' would hold FLORES' training sentences
    form.train_sizes.setText("100, 300")
    study = form.validate()
    assert study is not None, [label.text() for label in form._errors.values() if label.isVisible()]
    assert form.zero_shot_warning.text() == (
        "Trained on and evaluated: sw on flores; sw on afriqa (sw from miracl-train, flores). These results are not "
        "zero-shot (labelled [not zero-shot: sw]); untick sw under Training languages for a zero-shot study, or tick "
        "Ablation if that is the point.")
    assert {run.zero_shot_note for run in study.expand() if run.is_training} == {"not zero-shot: sw"}
    form.resize(1200, 1250)  # the training and evaluation boxes whole
    hint = form.size_hint  # two lines: the layout gives them room after a few passes
    qtbot.waitUntil(lambda: hint.height() >= hint.heightForWidth(hint.width()), timeout=2000)
    grab(form, tmp_path / "setup_two_sources_not_zero_shot.png")
    form.ablation.setChecked(True)
    study = form.validate()
    assert study.template.ablation and form.zero_shot_warning.text() == (
        "Trained on and evaluated: sw on flores; sw on afriqa (sw from miracl-train, flores). Ablation: the runs are "
        "labelled [ablation: trains on sw].")
    assert {run.label.split(" [")[1] for run in study.expand() if run.is_training} == {"ablation: trains on sw]"}
    sources.row("miracl-train").use.setChecked(False)  # it has sw alone
    form.train_languages.set_checked(("de", "en"))
    assert form.validate() is not None and not form.zero_shot_warning.isVisible()


def test_a_source_without_its_required_path_or_none_at_all_is_refused(qtbot, form, tmp_path):
    sources = form.train_sources
    sources.row("file").use.setChecked(True)
    assert form.validate() is None
    assert form._errors["train_dataset"].text() == "file needs a path: write it as 'file:/path/to/your/file'"
    sources.row("file").path.setText(str(tmp_path / "pairs.jsonl"))
    study = form.validate()
    assert study is not None and study.template.train_dataset == ("xquad", f"file:{tmp_path / 'pairs.jsonl'}")
    assert form.size_hint.text() == ("xquad 698; file: size known after reading, so a size too large for it is "
                                     "refused when a run starts.")
    for row in sources.rows:
        row.use.setChecked(False)
    assert form.validate() is None
    assert form._errors["train_dataset"].text() == "give at least one training source"


def test_a_source_the_form_cannot_show_is_named_as_left_out(qtbot, form, tmp_path):
    study = two_source_study()
    template = dataclasses.replace(study.template, train_dataset=("file:/a.jsonl", "file:/b.jsonl", "xquad"))
    path = tmp_path / "two-files.json"
    path.write_text(dataclasses.replace(study, template=template).to_json())
    form.load_study(path)
    assert form.train_sources.sources() == ("file:/a.jsonl", "xquad")
    assert form.left_out == ["training source 'file:/b.jsonl' (the form shows one file source; edit the study file "
                             "for more)"]
    template = dataclasses.replace(study.template, train_dataset=("tydi",))
    path.write_text(dataclasses.replace(study, template=template).to_json())
    form.load_study(path)
    assert form.train_sources.sources() == ("xquad",)
    assert form.left_out[:2] == ["training source 'tydi' (not one of xquad, mmarco, miracl-train, file, flores)",
                                 "no training source the form can show; xquad is ticked instead"]


def test_xquad_alone_offers_all_its_articles_when_nothing_evaluates_on_them(qtbot, form):
    xquad_r = next(r for r in form.eval_rows if r.dataset == "xquad-r")
    assert form.size_hint.text() == "At most 698 question groups (the xquad train split)."
    xquad_r.use.setChecked(False)
    assert form.validate() is not None
    assert form.size_hint.text() == (
        "At most 1,190 question groups (the xquad all split). No xquad or xquad-r evaluation is ticked, so xquad's "
        "evaluation articles are trained on too; ticking one limits training to the train split (698 groups).")

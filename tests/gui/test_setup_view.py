"""The study form: filling it in and submitting creates the right runs; bad input is shown and blocks submit."""

from __future__ import annotations

import json

import pytest
from PySide6 import QtCore

from gui.setup_view import SetupView
from storage.queries import list_runs, run_config
from tests.gui.conftest import grab, show_page
from vocabulary.config import StudyConfig


@pytest.fixture()
def form(qtbot, app_model):
    return show_page(qtbot, SetupView(app_model), 1200, 900)


def type_into(qtbot, line_edit, text: str) -> None:
    line_edit.selectAll()
    qtbot.keyClicks(line_edit, text)


def fill(qtbot, form: SetupView) -> None:
    """A small study, the way a user clicks it in."""
    type_into(qtbot, form.name, "sw/yo pilot")
    form.model_kind.setCurrentIndex(form.model_kind.findData("hub"))
    type_into(qtbot, form.model_value, "tiny:")
    form.train_languages.set_checked(("de", "en", "es"))
    for strategy, box in form.strategy_boxes.items():
        box.setChecked(strategy in ("cross", "hybrid", "contrastive"))
    type_into(qtbot, form.alphas, "0.25, 0.75")
    type_into(qtbot, form.train_sizes, "20 40")
    type_into(qtbot, form.seeds, "0, 1")
    form.include_baseline.setChecked(False)
    for row in form.eval_rows:
        row.use.setChecked(row.dataset == "flores")
    flores = next(r for r in form.eval_rows if r.dataset == "flores")
    flores.languages.set_checked(("en", "sw", "yo"))
    flores.max_queries.setValue(30)
    form.fields["batch_size"].widget.setValue(8)
    type_into(qtbot, form.fields["learning_rate"].widget, "1e-4")
    type_into(qtbot, form.fields["contrastive_weight"].widget, "0.3")
    form.start_worker.setChecked(False)


def test_filling_the_form_and_submitting_creates_the_runs(qtbot, form):
    fill(qtbot, form)
    study = form.validate()
    assert study is not None and form.submit_button.isEnabled()
    # (cross + 2 hybrid alphas + contrastive) x 2 sizes x 2 seeds, no baseline
    assert form.preview.text().startswith("16 runs (16 training)")
    assert form.preview.text().endswith("\nGPU plan: not estimated (tiny:: model size unknown)")
    with qtbot.waitSignal(form.submitted, timeout=10_000) as signal:
        qtbot.mouseClick(form.submit_button, QtCore.Qt.MouseButton.LeftButton)
    study_id, summary, start_worker = signal.args
    assert "16 run(s) queued" in summary and start_worker is False

    runs = list_runs(form.app_model.db, study_id)
    assert len(runs) == 16 and {r.status for r in runs} == {"queued"}
    configs = [run_config(form.app_model.db, r.id) for r in runs]
    assert {(c.strategy, c.alpha) for c in configs} == {
        ("cross", None), ("hybrid", 0.25), ("hybrid", 0.75), ("contrastive", None)}
    assert {c.train_size for c in configs} == {20, 40} and {c.seed for c in configs} == {0, 1}
    first = configs[0]
    assert (first.model, first.train_languages, first.batch_size, first.learning_rate) == ("tiny:", ("de", "en", "es"), 8, 1e-4)
    (flores,) = first.evaluations
    assert (flores.dataset, flores.languages, flores.split, flores.max_queries) == ("flores", ("en", "sw", "yo"), "test", 30)
    assert {c.contrastive_weight for c in configs if c.strategy == "contrastive"} == {0.3}
    grab(form, form.app_model.db.artifacts_dir.parent / "setup_filled.png")


@pytest.mark.parametrize(
    "edit, field, message",
    [
        (lambda f: [b.setChecked(False) for b in f.strategy_boxes.values()], "strategies", "choose at least one of mono, cross, hybrid, multi, cross+semantic"),
        (lambda f: f.train_sizes.setText("100, lots"), "train_sizes", "'lots' is not a whole number"),
        (lambda f: f.train_sizes.setText("100, 5000"), "train_sizes", "size 5000 is larger than the 698 question groups"),
        (lambda f: f.seeds.setText(""), "seeds", "give at least one seed"),
        (lambda f: f.alphas.setText("1.5"), "alphas", "alpha 1.5 is outside [0, 1]"),
        (lambda f: f.train_languages.set_checked(()), "train_languages", "choose at least one language"),
        (lambda f: f.name.setText("  "), "name", "give the study a name"),
        (lambda f: f.fields["learning_rate"].widget.setText("fast"), "learning_rate", "'fast' is not a number"),
        (lambda f: f.fields["temperature"].widget.setText("0"), "temperature", "must be greater than 0"),
    ],
)
def test_invalid_input_is_shown_beside_its_field_and_blocks_submit(qtbot, form, edit, field, message):
    assert form.validate() is not None  # the defaults are a valid study
    edit(form)
    qtbot.waitUntil(lambda: not form.submit_button.isEnabled(), timeout=2000)
    label = form._errors[field]
    assert label.isVisible() and message in label.text()
    assert form.preview.text().startswith("Fix ") and message in form.preview.text()
    shown = [name for name, other in form._errors.items() if other.isVisible()]
    assert shown == [field]
    if field in form.fields:
        assert form.advanced.isVisible()  # the Advanced section opens to show its error


def test_an_error_in_the_closed_advanced_section_is_shown_whole_and_in_view(qtbot, form):
    """Size 16 with the default batch size 32: the footer names the field, which is opened and scrolled to."""
    assert not form.advanced.isVisible()
    form.train_sizes.setText("16")
    qtbot.waitUntil(lambda: not form.submit_button.isEnabled(), timeout=2000)
    label = form._errors["batch_size"]
    message = "batch size 32 is larger than training size 16"
    assert form.preview.text().startswith("Fix Batch size in Advanced settings, marked in red: " + message)
    assert form.advanced.isVisible() and label.isVisible() and message in label.text()
    viewport = form.scroll.viewport()

    def in_view() -> bool:
        top_left = label.mapTo(viewport, QtCore.QPoint(0, 0))
        return 0 <= top_left.y() and top_left.y() + label.height() <= viewport.height()
    qtbot.waitUntil(in_view, timeout=2000)
    # The whole message fits the label: its lines (wrapped to the label's width) are not cut off.
    assert label.height() >= label.heightForWidth(label.width())
    assert label.width() > form.fields["batch_size"].widget.width() * 2  # as wide as the form, not the spin box
    grab(form, form.app_model.db.artifacts_dir.parent / "setup_error_in_advanced.png")


def test_an_eval_set_without_languages_is_flagged_on_its_row(qtbot, form):
    flores = next(r for r in form.eval_rows if r.dataset == "flores")
    flores.languages.set_checked(())
    assert form.validate() is None
    assert flores.error.isVisible() and "flores: choose at least one language" in flores.error.text()
    for row in form.eval_rows:
        row.use.setChecked(False)
    assert form.validate() is None
    assert "choose at least one evaluation set" in form._errors["evaluations"].text()


def test_save_and_load_round_trip_through_a_study_file(qtbot, form, tmp_path):
    fill(qtbot, form)
    expected = form.validate()
    path = tmp_path / "pilot.json"
    form.save_study(path)
    assert StudyConfig.from_json(path.read_text()) == expected
    assert json.loads(path.read_text())["template"]["model"] == "tiny:"
    form.reset()
    assert form.validate() != expected
    assert form.load_study(path) == expected
    assert form.validate() == expected
    assert form.model_kind.currentData() == "hub" and form.model_value.text() == "tiny:"


def test_loading_a_broken_study_file_names_the_problem(form, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x", "strategies": ["mono"], "colour": 3}')
    with pytest.raises(ValueError, match="colour: is not a study setting"):
        form.load_study(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        form.load_study(path)


def test_the_preview_counts_runs_and_the_size_hint_names_the_maximum(form):
    study = form.validate()
    assert study is not None and len(study.expand()) == 28
    assert form.preview.text().startswith("28 runs (27 training + 1 evaluation-only), about ")
    assert "At most 698 question groups" in form.size_hint.text()
    form.train_sources.set_sources(("flores",))
    assert "At most 701 question groups" in form.size_hint.text()
    assert set(form.train_languages.checked()) <= {"ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh"}


def test_a_preset_fills_the_model_and_its_encoder_settings(qtbot, form):
    # A new study leaves the encoder settings to the model (null in the study file).
    template = form.validate().template
    assert (template.pooling, template.query_prefix, template.passage_prefix, template.max_length) == (None,) * 4
    assert form.fields["query_prefix"].unset.isChecked() and not form.fields["query_prefix"].text.isEnabled()
    assert "sw: supervised retrieval pairs: MIRACL" in form.model_saw.text()  # the embedded e5-small

    form.model_preset.setCurrentIndex(form.model_preset.findData("paper-labse"))
    form.model_preset.activated.emit(form.model_preset.currentIndex())
    template = form.validate().template
    assert (template.model, template.pooling, template.query_prefix, template.passage_prefix, template.max_length) == (
        "sentence-transformers/LaBSE", None, "Query: ", "Passage: ", None)
    assert form.model_kind.currentData() == "hub"
    saw = form.model_saw.text()
    assert saw.startswith("LaBSE (Feng et al. 2022); its own training saw") and "yo: translation pairs" in saw

    form.model_preset.setCurrentIndex(form.model_preset.findData("paper-xlmr"))
    form.model_preset.activated.emit(form.model_preset.currentIndex())
    template = form.validate().template
    assert (template.model, template.pooling) == ("FacebookAI/xlm-roberta-base", "mean")
    assert "yo: none listed" in form.model_saw.text()
    # An explicit empty prefix is a setting of its own, distinct from the model's own.
    form.fields["query_prefix"].unset.setChecked(False)
    form.fields["query_prefix"].text.setText("")
    assert form.validate().template.query_prefix == ""
    type_into(qtbot, form.model_value, "someone/unknown-model")
    assert "Not a model we know" in form.model_saw.text()
    form.reset()
    assert form.model_preset.currentData() is None and form.validate().template.pooling is None


def test_the_budget_seeds_and_model_selection_fields_reach_every_run(qtbot, form, tmp_path):
    fill(qtbot, form)
    form.fields["steps"].widget.setValue(40)  # a step count without the budget that uses it is refused
    assert form.validate() is None and "is only used with budget 'steps'" in form._errors["steps"].text()
    form.fields["budget"].widget.setCurrentText("steps")
    form.fields["data_seed"].widget.setValue(7)
    form.fields["select"].widget.setCurrentText("best_dev")
    assert form.validate() is None and "needs a dev loss" in form._errors["dev_every"].text()
    form.fields["dev_every"].widget.setValue(5)
    study = form.validate()
    assert study is not None
    runs = [run for run in study.expand() if run.is_training]
    assert {(r.budget, r.steps, r.data_seed, r.dev_every, r.select) for r in runs} == {("steps", 40, 7, 5, "best_dev")}
    assert {r.subset_seed for r in runs} == {7} and {r.seed for r in runs} == {0, 1}
    path = tmp_path / "budget.json"
    form.save_study(path)
    form.reset()
    assert form.fields["data_seed"].value() is None and form.fields["budget"].value() == "epochs"
    assert form.load_study(path) == study and form.validate() == study


def test_only_the_chosen_budgets_amount_is_editable(qtbot, form):
    budget, epochs, steps = (form.fields[name].widget for name in ("budget", "epochs", "steps"))
    assert budget.currentText() == "epochs" and epochs.isEnabled() and not steps.isEnabled()
    budget.setCurrentText("steps")
    assert steps.isEnabled() and not epochs.isEnabled() and not form.fields["pairs"].widget.isEnabled()
    qtbot.waitUntil(lambda: not form.submit_button.isEnabled(), timeout=2000)  # no number of steps yet: said where
    assert form._errors["steps"].isVisible() and form.preview.text().startswith("Fix Steps in Advanced settings")


def test_unticking_xquad_r_says_the_training_pool_grows(qtbot, form):
    assert form.size_hint.text() == "At most 698 question groups (the xquad train split)."
    next(r for r in form.eval_rows if r.dataset == "xquad-r").use.setChecked(False)
    qtbot.waitUntil(lambda: "1,190" in form.size_hint.text(), timeout=2000)
    assert "No xquad or xquad-r evaluation is ticked, so xquad's evaluation articles are trained on too" in \
        form.size_hint.text()
    assert "limits training to the train split (698 groups)." in form.size_hint.text()


def test_an_unset_encoder_setting_says_what_the_run_log_says(form):
    assert form.fields["max_length"].widget.specialValueText() == "the model's own, else hybridscale default"
    assert form.fields["pooling"].widget.currentText() == "the model's own, else hybridscale default"


def test_a_new_study_evaluates_flores_as_the_demo_does(form):
    flores = next(r for r in form.eval_rows if r.dataset == "flores")
    assert flores.use.isChecked() and flores.split.currentText() == "test"


def test_the_laptop_template_fills_the_form_with_the_demos_study(qtbot, form):
    from vocabulary.templates import demo_study

    box = form.template
    names = [box.itemData(i) for i in range(box.count())]
    assert names == [None, "paper-sw-yo", "paper-sw-yo-labse", "laptop"]
    with qtbot.waitSignal(form.message) as signal:
        box.setCurrentIndex(names.index("laptop"))
        box.activated.emit(names.index("laptop"))
    assert signal.args[0].startswith("Filled the form from template laptop")
    study = form.validate()
    demo = demo_study()
    assert study is not None and study.strategies == demo.strategies and study.train_sizes == demo.train_sizes
    # The same runs as 'hybridscale demo' (by their ids: how they are stored, not what the form shows, may differ).
    assert [run.run_id for run in study.expand()] == [run.run_id for run in demo.expand()]
    assert form.include_bm25.isChecked() and box.currentIndex() == 0


def test_a_loaded_study_keeps_the_eval_settings_the_form_does_not_show(form, tmp_path):
    import dataclasses

    study = form.validate()
    first, second, *rest = study.template.evaluations
    chosen = (dataclasses.replace(first, index="hnsw", passage_max_length=256),
              dataclasses.replace(second, vectors="float16"))
    expected = dataclasses.replace(study, template=dataclasses.replace(study.template, evaluations=(*chosen, *rest)))
    path = tmp_path / "approximate.json"
    path.write_text(expected.to_json())
    assert form.load_study(path) == expected
    again = form.validate()
    assert again is not None, form.preview.text()
    assert again.template.evaluations[:2] == chosen  # not dropped on the way back out


def test_a_loaded_study_keeps_its_notes_and_data_seeds(form, tmp_path):
    import dataclasses

    study = dataclasses.replace(form.validate(), notes="deviations: th and tr dropped", data_seeds=(7, 8))
    path = tmp_path / "noted.json"
    path.write_text(study.to_json())
    assert form.load_study(path) == study
    assert form.validate() == study  # what Save or Submit would write: the notes and data seeds are still there
    form.reset()
    assert (form.validate().notes, form.validate().data_seeds) == ("", ())  # a reset forgets them

"""The study form shows the study it holds (issue 21): checklists repaint when changed in code, and input the
engine would refuse is refused here, beside its field, naming what is wrong."""

from __future__ import annotations

import dataclasses
import json

import pytest
from PySide6 import QtCore, QtWidgets

from gui.form_widgets import LanguageChecklist
from gui.setup_view import SetupView
from tests.gui.conftest import grab, show_page
from vocabulary.config import StudyConfig


def on_screen(view: QtWidgets.QAbstractItemView):
    """What the window shows of ``view`` now: its pixels in the window's backing store (no repaint forced)."""
    window = view.window().windowHandle()
    corner = view.viewport().mapTo(view.window(), QtCore.QPoint(0, 0))
    size = view.viewport().size()
    return window.screen().grabWindow(window.winId(), corner.x(), corner.y(), size.width(), size.height()).toImage()


def expected(view: LanguageChecklist):
    """What ``view`` must show: a twin of the same size, laid out from the same entries and ticks from scratch."""
    twin = LanguageChecklist()
    twin.resize(view.size())
    entries = [(view.items.item(i).data(QtCore.Qt.ItemDataRole.UserRole), view.items.item(i).text())
               for i in range(view.items.rowCount())]
    twin.items.fill(entries, view.checked())
    twin.reset()  # the twin reads its model afresh, whatever it was told
    image = twin.viewport().grab().toImage()
    twin.deleteLater()
    return image


def shows_its_model(qtbot, view: LanguageChecklist) -> bool:
    """Whether, once the window has painted what it was asked to, the screen shows the model's entries and ticks."""
    want = expected(view)

    def same() -> bool:  # over the width both have (a scroll bar may narrow one of them)
        shown = on_screen(view)
        width, height = min(shown.width(), want.width()), min(shown.height(), want.height())
        return shown.copy(0, 0, width, height) == want.copy(0, 0, width, height)

    try:
        qtbot.waitUntil(same, timeout=1500)
    except qtbot.TimeoutError:
        return False
    return True


def test_a_checklist_changed_in_code_is_repainted(qtbot):
    checklist = LanguageChecklist()
    checklist.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # no focus frame, which its twin would not have
    show_page(qtbot, checklist, 300, 200)
    checklist.set_languages(("ar", "de", "en", "es", "sw", "yo"), ("ar", "de"))
    qtbot.waitExposed(checklist)
    assert shows_its_model(qtbot, checklist)
    checklist.set_checked(("sw", "yo"))  # Load study
    assert shows_its_model(qtbot, checklist)
    checklist.set_languages(("en", "ig", "ln", "sw", "wo", "yo"), ("sw",))  # another training set
    assert shows_its_model(qtbot, checklist)
    checklist.set_languages(("ar", "de", "en"), ("en",))  # New study: fewer rows than before
    assert shows_its_model(qtbot, checklist)
    assert checklist.checked() == ("en",)


@pytest.fixture()
def form(qtbot, app_model):
    return show_page(qtbot, SetupView(app_model), 1200, 900)


def test_the_form_shows_the_ticks_it_holds_after_load_new_study_and_a_training_set_change(qtbot, form, tmp_path):
    qtbot.waitExposed(form)
    checklist = form.train_languages
    told: list[str] = []  # what the model tells its views (blocked signals told them nothing)
    checklist.items.modelReset.connect(lambda: told.append("reset"))
    checklist.items.dataChanged.connect(lambda *_args: told.append("ticks"))
    flores = dataclasses.replace(form.study(), template=dataclasses.replace(
        form.study().template, train_dataset="flores", train_languages=("ig", "ln", "wo")))
    path = tmp_path / "flores.json"
    path.write_text(flores.to_json())
    form.load_study(path)
    assert checklist.checked() == ("ig", "ln", "wo")
    assert told[-2:] == ["reset", "ticks"]  # FLORES' languages, then the study's ticks
    assert shows_its_model(qtbot, checklist)
    grab(form, tmp_path / "setup_after_load_study.png")
    told.clear()
    form.reset()  # File -> New study: XQuAD, the paper's nine languages
    assert form.train_sources.names() == ("xquad",) and "ig" not in checklist.items.values()
    assert told[-2:] == ["reset", "ticks"]
    assert shows_its_model(qtbot, checklist)
    told.clear()
    form.train_sources.set_sources(("flores",))
    assert told == ["reset"]
    assert shows_its_model(qtbot, checklist)


# ---- input the engine would refuse ---------------------------------------------------------------------
def shown_errors(form: SetupView) -> dict[str, str]:
    return {name: label.text() for name, label in form._errors.items() if label.isVisible()}


def test_a_negative_seed_is_refused_at_the_seeds_field(qtbot, form):
    form.seeds.setText("0, -1")
    assert form.validate() is None and not form.submit_button.isEnabled()
    assert shown_errors(form) == {"seeds": "seed -1 is outside 0..2147483647"}


def test_a_local_model_folder_must_exist_and_hold_a_model(qtbot, form, tmp_path):
    form.model_kind.setCurrentIndex(form.model_kind.findData("folder"))
    form.model_value.setText(str(tmp_path / "no-such-model"))
    assert form.validate() is None
    assert shown_errors(form) == {"model": f"model folder '{tmp_path / 'no-such-model'}' does not exist (or is not a "
                                           "folder); give an existing folder"}
    (tmp_path / "empty").mkdir()
    form.model_value.setText(str(tmp_path / "empty"))
    assert form.validate() is None and "has no config.json" in shown_errors(form)["model"]
    (tmp_path / "empty" / "config.json").write_text("{}")
    assert form.validate() is not None and not shown_errors(form)


def test_a_batch_larger_than_sizes_is_shown_at_batch_size_naming_every_size(qtbot, form):
    form.train_sizes.setText("16, 24, 100")
    form.fields["batch_size"].widget.setValue(32)
    assert form.validate() is None
    assert shown_errors(form) == {"batch_size": "batch size 32 is larger than training size 16, 24: a batch needs "
                                                "that many distinct question groups; use a batch size of at most 16 "
                                                "or larger sizes"}
    assert form.advanced.isVisible()


def test_training_on_an_evaluated_language_warns_that_it_is_not_zero_shot(qtbot, form):
    form.train_sources.set_sources(("flores",))
    form.train_sizes.setText("100, 300")  # FLORES has 701 training groups
    form.train_languages.set_checked(("en", "sw"))
    flores = next(r for r in form.eval_rows if r.dataset == "flores")
    flores.use.setChecked(True)
    flores.languages.set_checked(("en", "sw", "yo"))
    flores.split.setCurrentText("all")
    assert form.validate() is None  # it would hold the training sentences
    assert "split 'all' holds the flores training sentences" in flores.error.text()
    flores.split.setCurrentText("test")
    study = form.validate()
    assert study is not None and form.submit_button.isEnabled(), shown_errors(form)  # allowed, but said
    warning = form.zero_shot_warning
    assert warning.isVisible() and warning.text() == (
        "Trained on and evaluated: sw on flores; sw on afriqa (sw from flores). These results are not zero-shot "
        "(labelled [not zero-shot: sw]); untick sw under Training languages for a zero-shot study, or tick Ablation "
        "if that is the point.")
    grab(form, form.app_model.db.artifacts_dir.parent / "setup_not_zero_shot.png")
    form.train_languages.set_checked(("en", "ig"))
    flores.languages.set_checked(("sw", "yo"))
    assert form.validate() is not None and not warning.isVisible()


def test_loading_a_study_names_what_the_form_left_out(qtbot, window, tmp_path, monkeypatch):
    study = StudyConfig("odd languages", strategies=("mono",), train_sizes=(100,), seeds=(0,))
    data = json.loads(study.to_json())
    data["template"]["train_languages"] = ["ar", "xx", "sw"]  # xx: no language; sw: not in XQuAD
    data["template"]["evaluations"] = [{"dataset": "flores", "languages": ["sw", "zz"], "split": "test"},
                                       {"dataset": "tydi", "languages": ["sw"], "split": "test"}]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(data))
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(path), ""))
    warnings: list[str] = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda _parent, _title, text: warnings.append(text))
    window.choose_study_to_load()
    assert window.setup.train_languages.checked() == ("ar",)
    message = window.statusBar().currentMessage()
    for said in ("training language(s) xx, sw (xquad has no such language)", "flores language(s) zz",
                 "eval set(s) tydi"):
        assert said in message and said in warnings[0], said
    plain = tmp_path / "plain.json"
    plain.write_text(study.to_json())
    window.setup.load_study(plain)
    assert window.setup.left_out == []

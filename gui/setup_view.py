"""The study setup page: point-and-click a :class:`StudyConfig`, see it validated and costed, submit it.

Validation is the config's own (:meth:`StudyConfig.validate`, which also
knows each training set's size from the dataset registry): after every edit
the form builds the study, and a :class:`ConfigError` is shown beside the
field it names, with Submit disabled until it is fixed. The form adds the
checks the config cannot make without this machine's files: a local model
folder that does not exist, and (given the engine's answers,
:class:`results.study_data.StudyData`) a local corpus in the wrong layout, in
the line ``hybridscale submit`` refuses it with. Under the run count it says
which hub files the study will download and how large they are; the sizes
are looked up off the GUI thread, so an offline machine never waits. It
warns (without refusing) when a language is
trained on and evaluated, so its results are not zero-shot; and a loaded
study file's settings that the form cannot show (a language the dataset
does not have, an unknown eval set) are named, not dropped silently.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtWidgets

from gui.form_widgets import (
    LIST_HINT,
    WARNING_COLOUR,
    ErrorLabel,
    LanguageChecklist,
    ListParseError,
    format_numbers,
    hint_label,
    parse_numbers,
    stacked,
)
from gui.setup_fields import ADVANCED_FIELDS, EvalRow, FieldWidget, eval_rows_grid
from gui.training_sources import TrainingSources
from gui.workers import DEVICES
from results.app_model import AppModel
from results.cost import estimate
from results.plan import largest_size_text, plan
from results.study_data import Download, SizeLookup, StudyData, downloads_text
from vocabulary.budget import BUDGETS
from vocabulary.config import DEFAULT_MODEL, ConfigError, RunConfig, StudyConfig
from vocabulary.datasets import DATASETS, dataset_ids
from vocabulary.languages import PAPER_TRAIN_LANGUAGES, TARGET_LANGUAGES
from vocabulary.models import PRESETS, base_model, preset
from vocabulary.sources import SOURCE_SAMPLINGS, parse_source, trained_eval_languages, zero_shot_note
from vocabulary.strategies import STRATEGIES
from vocabulary.templates import TEMPLATES, template

#: Said under the evaluation sets while the embedded model is chosen (it saw Swahili before any of our training).
EMBEDDED_MODEL_NOTE = ("The embedded multilingual-e5-small was already fine-tuned on MIRACL and Mr. TyDi, Swahili "
                       "included: zero-shot here means that no run of this study trains on sw or yo.")

if TYPE_CHECKING:
    from results.app_model import SubmitResult

MODEL_KINDS: tuple[tuple[str, str], ...] = (
    ("embedded", "Embedded multilingual-e5-small (offline)"),
    ("folder", "Local model folder"),
    ("hub", "Hugging Face hub name (online)"),
)
#: Fields a run-level ConfigError names -> the study-level field the form shows it at.
_RUN_TO_STUDY_FIELD = {"strategy": "strategies", "alpha": "alphas", "train_size": "train_sizes", "seed": "seeds"}
_VALIDATE_DELAY_MS = 120
#: The form's names for the study-level fields an error can name (the Advanced ones carry their own label).
_FIELD_LABELS = {"name": "Name", "model": "Model", "train_dataset": "Training sources",
                 "source_sampling": "Source per batch", "train_languages": "Training languages",
                 "strategies": "Strategies", "alphas": "Hybrid α values", "train_sizes": "Training sizes",
                 "seeds": "Seeds", "evaluations": "Evaluation"}
#: How each batch picks its source, in words (vocabulary.sources.SOURCE_SAMPLINGS).
SAMPLING_TEXT = {"proportional": "one source per batch, drawn in proportion to its size (the paper)",
                 "round_robin": "one source per batch, taking turns (round robin)"}
#: What a new study starts from: sizes fit XQuAD's 698 training groups and grow by a factor of 3. FLORES is
#: evaluated on its test split, as the demo is, so a study started here compares with the demo's numbers.
#: StudyConfig settings set in a study file, not in the form; a loaded study keeps them.
_UNSHOWN_STUDY_FIELDS = ("data_seeds", "notes")

DEFAULT_STUDY = StudyConfig(
    name="hybrid scaling sw/yo", train_sizes=(75, 225, 675), seeds=(0, 1, 2),
    template=RunConfig(evaluations=tuple(dataclasses.replace(spec, split="test") if spec.dataset == "flores" else spec
                                         for spec in RunConfig().evaluations)))


def _form(box: QtWidgets.QWidget) -> QtWidgets.QFormLayout:
    """A form whose text boxes grow with the window and whose pick lists keep their natural width."""
    form = QtWidgets.QFormLayout(box)
    form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
    return form


def guess_device() -> str:
    """What ``auto`` will pick, without importing torch: CUDA where an NVIDIA driver answers."""
    return "cuda" if shutil.which("nvidia-smi") else "cpu"


class SetupView(QtWidgets.QWidget):
    """The form; ``submitted(study_id, summary, start_worker)`` fires after a study is queued."""

    submitted = QtCore.Signal(int, str, bool)
    message = QtCore.Signal(str)
    #: The hub's sizes came in (emitted on the lookup's thread, so delivered queued to this one).
    _sizes_arrived = QtCore.Signal()

    def __init__(self, app_model: AppModel, study_data: StudyData | None = None,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.app_model = app_model
        #: The engine's answers about the study's data (hub downloads, local corpora); None: not asked.
        self.study_data = study_data
        self._sizes = SizeLookup(study_data.with_sizes) if study_data is not None else None
        self._downloads: list[Download] = []
        self._sizes_arrived.connect(self._show_downloads)
        self.current_study: StudyConfig | None = None
        #: Study settings kept from a loaded study file that the form has no field for (a template's notes,
        #: data seeds), so saving or submitting it again does not drop them.
        self._unshown_study: dict[str, object] = {}
        #: What the last loaded study file held that the form could not show (named in the status bar).
        self.left_out: list[str] = []
        self._submitting = False
        self._errors: dict[str, ErrorLabel] = {}
        self._validate_timer = QtCore.QTimer(self, singleShot=True, interval=_VALIDATE_DELAY_MS, timeout=self.validate)

        content = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(content)
        column.addWidget(self._general_box())
        column.addWidget(self._training_box())
        column.addWidget(self._evaluation_box())
        column.addWidget(self._advanced_box())
        column.addStretch(1)
        content.setMaximumWidth(1100)  # long lines of form are hard to read on a wide screen
        self.scroll = QtWidgets.QScrollArea(widgetResizable=True)
        self.scroll.setWidget(content)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(self._submit_bar())
        self.reset()

    # ---- building the form ---------------------------------------------------------
    def _error(self, field_name: str) -> ErrorLabel:
        label = self._errors[field_name] = ErrorLabel()
        return label

    def _general_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Study")
        form = _form(box)
        self.name = QtWidgets.QLineEdit(placeholderText="e.g. hybrid scaling sw/yo")
        form.addRow("Name:", stacked(self.name, self._error("name")))
        self.model_kind = QtWidgets.QComboBox()
        for key, text in MODEL_KINDS:
            self.model_kind.addItem(text, key)
        self.model_value = QtWidgets.QLineEdit()
        self.model_browse = QtWidgets.QPushButton("Browse…")
        self.model_browse.clicked.connect(self._choose_model_folder)
        self.model_kind.currentIndexChanged.connect(self._model_kind_changed)
        model_row = QtWidgets.QHBoxLayout()
        model_row.addWidget(self.model_kind)
        model_row.addWidget(self.model_value, 1)
        model_row.addWidget(self.model_browse)
        self.model_preset = QtWidgets.QComboBox(toolTip="fill the model and its encoder settings (Advanced) for a "
                                                "published encoder")
        self.model_preset.addItem("Choose a preset…", None)
        for entry in PRESETS:
            self.model_preset.addItem(entry.label, entry.key)
            self.model_preset.setItemData(self.model_preset.count() - 1, entry.note, QtCore.Qt.ItemDataRole.ToolTipRole)
        self.model_preset.activated.connect(self._apply_preset)
        self.template = QtWidgets.QComboBox(toolTip="fill the whole form with a study template (hybridscale template)")
        self.template.addItem("Start from a template…", None)
        for name, (description, _make) in TEMPLATES.items():
            self.template.addItem(name, name)
            self.template.setItemData(self.template.count() - 1, description, QtCore.Qt.ItemDataRole.ToolTipRole)
        self.template.activated.connect(self._apply_template)
        form.addRow("Template:", self.template)
        self.model_saw = hint_label("")
        form.addRow("Preset:", self.model_preset)
        form.addRow("Model:", stacked(model_row, self.model_saw, self._error("model")))
        self.model_value.textChanged.connect(self._show_model_saw)
        self.device = QtWidgets.QComboBox(toolTip="where workers started from this window train (auto: CUDA if present)")
        self.device.addItems(DEVICES)
        form.addRow("Device:", self.device)
        for widget in (self.name, self.model_value):
            widget.textChanged.connect(self._changed)
        self.device.currentIndexChanged.connect(self._changed)
        return box

    def _training_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Training")
        form = _form(box)
        self.train_sources = TrainingSources()
        self.train_sources.changed.connect(self._sources_changed)
        form.addRow("Training sources:", stacked(self.train_sources, self._error("train_dataset")))
        self.source_sampling = QtWidgets.QComboBox(toolTip="how a run with several sources picks each batch's source")
        for policy in SOURCE_SAMPLINGS:
            self.source_sampling.addItem(SAMPLING_TEXT[policy], policy)
        self.source_sampling.currentIndexChanged.connect(self._changed)
        self.sampling_row = stacked(self.source_sampling, self._error("source_sampling"))
        form.addRow("Source per batch:", self.sampling_row)
        self.train_languages = LanguageChecklist()
        self.train_languages.setMaximumHeight(150)
        self.train_languages.changed.connect(self._changed)
        form.addRow("Training languages:", stacked(self.train_languages, self._error("train_languages")))
        self.ablation = QtWidgets.QCheckBox(
            "Ablation: train on an evaluated language on purpose",
            toolTip="runs that train on an evaluated sw or yo are labelled 'ablation: trains on sw' instead of "
                    "'not zero-shot: sw'")
        self.ablation.toggled.connect(self._changed)
        form.addRow("", self.ablation)

        strategies = QtWidgets.QHBoxLayout()
        self.strategy_boxes: dict[str, QtWidgets.QCheckBox] = {}
        for entry in STRATEGIES.values():
            check = QtWidgets.QCheckBox(entry.label, toolTip=entry.help)
            check.toggled.connect(self._changed)
            strategies.addWidget(check)
            self.strategy_boxes[entry.name] = check
        strategies.addStretch(1)
        form.addRow("Strategies:", stacked(strategies, self._error("strategies")))
        self.alphas = QtWidgets.QLineEdit(toolTip="shares of monolingual batches, one hybrid line each; " + LIST_HINT)
        form.addRow("Hybrid α values:", stacked(self.alphas, self._error("alphas")))
        self.train_sizes = QtWidgets.QLineEdit(toolTip="question groups per run; " + LIST_HINT)
        self.size_hint = hint_label("")
        form.addRow("Training sizes:", stacked(self.train_sizes, self.size_hint, self._error("train_sizes")))
        self.seeds = QtWidgets.QLineEdit(toolTip="one run per seed; the plots show mean and spread; " + LIST_HINT)
        form.addRow("Seeds:", stacked(self.seeds, self._error("seeds")))
        self.include_baseline = QtWidgets.QCheckBox("Also evaluate the untrained model (the size-0 baseline)")
        form.addRow("", self.include_baseline)
        self.include_bm25 = QtWidgets.QCheckBox("Also evaluate BM25 (the lexical reference; no training)")
        form.addRow("", self.include_bm25)
        for widget in (self.alphas, self.train_sizes, self.seeds):
            widget.textChanged.connect(self._changed)
        self.include_baseline.toggled.connect(self._changed)
        self.include_bm25.toggled.connect(self._changed)
        return box

    def _evaluation_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Evaluation (zero-shot)")
        layout = QtWidgets.QVBoxLayout(box)
        self.eval_rows = [EvalRow(dataset, self._changed) for dataset in dataset_ids("eval")]
        layout.addLayout(eval_rows_grid(self.eval_rows))
        layout.addWidget(self._error("evaluations"))
        self.zero_shot_warning = ErrorLabel(colour=WARNING_COLOUR)
        self.model_note = hint_label(EMBEDDED_MODEL_NOTE)
        layout.addWidget(self.zero_shot_warning)
        layout.addWidget(self.model_note)
        return box

    def _advanced_box(self) -> QtWidgets.QWidget:
        wrapper = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(wrapper)
        layout.setContentsMargins(0, 0, 0, 0)
        self.show_advanced = QtWidgets.QToolButton(
            text="Advanced settings (CPU defaults; the paper's are the 'paper' preset, see docs/training.md)",
            checkable=True)
        self.show_advanced.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.show_advanced.setArrowType(QtCore.Qt.ArrowType.RightArrow)
        self.advanced = QtWidgets.QGroupBox()
        form = _form(self.advanced)
        self.fields: dict[str, FieldWidget] = {}
        for spec in ADVANCED_FIELDS:
            field_widget = FieldWidget(spec, self._changed)
            self.fields[spec.name] = field_widget
            self._errors[spec.name] = field_widget.error
            form.addRow(spec.label + ":", field_widget.widget)
            # Its own row, as wide as the form: beside a narrow editor (a spin box) the message would be cut off.
            form.addRow(field_widget.error)
        self.advanced.setVisible(False)
        self.show_advanced.toggled.connect(self._toggle_advanced)
        layout.addWidget(self.show_advanced)
        layout.addWidget(self.advanced)
        return wrapper

    def _submit_bar(self) -> QtWidgets.QBoxLayout:
        self.preview = QtWidgets.QLabel()
        self.preview.setWordWrap(True)
        self.downloads = hint_label("")
        self.downloads.setVisible(False)
        summary = QtWidgets.QVBoxLayout()
        summary.addWidget(self.preview)
        summary.addWidget(self.downloads)
        self.general_error = ErrorLabel()
        self.start_worker = QtWidgets.QCheckBox("Start a local worker after submitting", checked=True)
        self.submit_button = QtWidgets.QPushButton("Submit study")
        self.submit_button.setDefault(True)
        self.submit_button.clicked.connect(self.submit)
        column = QtWidgets.QVBoxLayout()
        column.addWidget(self.general_error)
        row = QtWidgets.QHBoxLayout()
        row.addLayout(summary, 1)
        row.addWidget(self.start_worker)
        row.addWidget(self.submit_button)
        column.addLayout(row)
        return column

    # ---- reacting to edits ------------------------------------------------------------
    def _changed(self, *_args: object) -> None:
        self.alphas.setEnabled(self._uses_alpha(tuple(s for s, box in self.strategy_boxes.items() if box.isChecked())))
        budget = self.fields["budget"].value()
        for name in BUDGETS:  # only the chosen budget's amount counts; the others are greyed, as the alphas are
            self.fields[name].widget.setEnabled(name == budget)
        self.model_note.setVisible(self.model_spec().startswith("embedded:"))
        self._validate_timer.start()

    @staticmethod
    def _uses_alpha(strategies: tuple[str, ...]) -> bool:
        """Whether the alphas field counts: some chosen strategy trains with a share alpha (the strategy table says)."""
        return any(STRATEGIES[name].uses_alpha for name in strategies)

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.show_advanced.setArrowType(QtCore.Qt.ArrowType.DownArrow if on else QtCore.Qt.ArrowType.RightArrow)

    def _model_kind_changed(self) -> None:
        kind = self.model_kind.currentData()
        self.model_browse.setVisible(kind == "folder")
        self.model_value.setReadOnly(kind == "embedded")
        if kind == "embedded":
            self.model_value.setText(DEFAULT_MODEL)
        elif self.model_value.text() == DEFAULT_MODEL:
            self.model_value.clear()
        self.model_value.setPlaceholderText(
            {"folder": "a folder with config.json and model weights", "hub": "e.g. intfloat/multilingual-e5-base"}.get(kind, "")
        )
        self._changed()

    def _apply_preset(self) -> None:
        key = self.model_preset.currentData()
        if key is None:
            return
        settings = preset(key).run_settings()
        model = settings.pop("model")
        kind = "embedded" if model.startswith("embedded:") else "hub"
        self.model_kind.setCurrentIndex(self.model_kind.findData(kind))
        self.model_value.setText(model)
        for name, value in settings.items():
            self.fields[name].set_value(value)
        self._changed()

    def _apply_template(self) -> None:
        """Fill every field from the chosen template (``laptop`` is the demo's study); name what the form left out."""
        name = self.template.currentData()
        self.template.setCurrentIndex(0)  # a menu of starting points, not a setting of the study
        if name is None:
            return
        self.left_out = self.set_study(StudyConfig.from_dict(template(name)))
        note = f"; left out: {'; '.join(self.left_out)}" if self.left_out else ""
        self.message.emit(f"Filled the form from template {name}{note}")

    def _show_model_saw(self) -> None:
        """What the base model's own training saw in sw and yo (from vocabulary.models), under the model field."""
        known = base_model(self.model_spec())
        if known is None:
            self.model_saw.setText("Not a model we know: check what its own training saw before calling a "
                                   "result zero-shot." if self.model_spec() else "")
            return
        self.model_saw.setText(f"{known.label}; its own training saw\n{known.summary(TARGET_LANGUAGES)}")

    def _choose_model_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a Hugging Face model folder")
        if folder:
            self.model_value.setText(folder)

    def _sources_changed(self) -> None:
        """The training languages become those of the ticked sources, keeping the ticks they still offer.

        A source none of whose languages is ticked (MIRACL train: sw) gets its
        languages ticked, since a run refuses a source it takes nothing from;
        the zero-shot warning then says what that means.
        """
        languages = self.train_sources.languages()
        if languages and languages != self.train_languages.items.values():  # none ticked: keep the list
            keep = set(self.train_languages.checked() or PAPER_TRAIN_LANGUAGES)
            for name in self.train_sources.names():
                if not keep.intersection(DATASETS[name].languages):
                    keep.update(DATASETS[name].languages)
            self.train_languages.set_languages(languages, [lang for lang in languages if lang in keep])
        # The sampling policy is kept (and saved) with one source, where it changes nothing, but not shown.
        self.sampling_row.parentWidget().layout().setRowVisible(self.sampling_row, len(self.train_sources.names()) > 1)
        self._show_sources_facts()
        self._changed()

    # ---- form <-> config ------------------------------------------------------------------
    def model_spec(self) -> str:
        return self.model_value.text().strip()

    def study(self) -> StudyConfig:
        """The study the form describes; raises ConfigError naming the first unreadable field."""
        strategies = tuple(s for s, box in self.strategy_boxes.items() if box.isChecked())
        lists = [("train_sizes", self.train_sizes, int), ("seeds", self.seeds, int)]
        if self._uses_alpha(strategies):  # the alpha field is greyed out otherwise, so it is not read
            lists.append(("alphas", self.alphas, float))
        numbers = {"alphas": ()}
        for name, widget, kind in lists:
            try:
                numbers[name] = parse_numbers(widget.text(), kind, name.replace("_", " "))
            except ListParseError as exc:
                raise ConfigError(name, str(exc)) from None
        values = {name: field_widget.value() for name, field_widget in self.fields.items()}
        template = dataclasses.replace(
            RunConfig(),
            model=self.model_spec(),
            train_dataset=self.train_sources.sources(),
            source_sampling=self.source_sampling.currentData(),
            ablation=self.ablation.isChecked(),
            train_languages=self.train_languages.checked(),
            evaluations=tuple(spec for row in self.eval_rows if (spec := row.spec()) is not None),
            **values,
        )
        return StudyConfig(
            name=self.name.text().strip(),
            strategies=strategies,
            alphas=numbers["alphas"],
            train_sizes=numbers["train_sizes"],
            seeds=numbers["seeds"],
            include_baseline=self.include_baseline.isChecked(),
            include_bm25=self.include_bm25.isChecked(),
            template=template,
            **self._unshown_study,
        )

    def set_study(self, study: StudyConfig) -> list[str]:
        """Fill every field from ``study`` (Load study, Reset); return what the form had to leave out, in words.

        The form offers only what the registry knows (each dataset's languages
        and splits, the known eval sets); anything else in ``study`` is left
        out, and said so, rather than silently changing the study.
        """
        template = study.template
        self._unshown_study = {name: getattr(study, name) for name in _UNSHOWN_STUDY_FIELDS}
        self.model_preset.setCurrentIndex(0)  # a study's settings are its own, whichever preset began them
        self.name.setText(study.name)
        model = template.model
        looks_local = model.startswith(("/", ".", "~")) or Path(model).expanduser().is_dir()
        kind = "embedded" if model.startswith("embedded:") else "folder" if looks_local else "hub"
        self.model_kind.setCurrentIndex(self.model_kind.findData(kind))
        self.model_value.setText(model)
        left_out = self.train_sources.set_sources(template.train_sources)
        if not self.train_sources.names():  # none of them could be shown: the form's default source
            default = DEFAULT_STUDY.template.train_sources
            self.train_sources.set_sources(default)
            left_out.append(f"no training source the form can show; {'+'.join(default)} is ticked instead")
        self.source_sampling.setCurrentIndex(max(0, self.source_sampling.findData(template.source_sampling)))
        if self.source_sampling.findData(template.source_sampling) < 0:
            left_out.append(f"source sampling {template.source_sampling!r} (not one of {', '.join(SOURCE_SAMPLINGS)})")
        self.ablation.setChecked(template.ablation)
        self.train_languages.set_checked(template.train_languages)
        missing = [lang for lang in template.train_languages if lang not in self.train_languages.items.values()]
        if missing:
            left_out.append(f"training language(s) {', '.join(missing)} ({'+'.join(self.train_sources.names())} has "
                            "no such language)")
        for strategy, box in self.strategy_boxes.items():
            box.setChecked(strategy in study.strategies)
        self.alphas.setText(format_numbers(study.alphas))
        self.train_sizes.setText(format_numbers(study.train_sizes))
        self.seeds.setText(format_numbers(study.seeds))
        self.include_baseline.setChecked(study.include_baseline)
        self.include_bm25.setChecked(study.include_bm25)
        by_dataset = {spec.dataset: spec for spec in template.evaluations}
        for row in self.eval_rows:
            row.set_spec(by_dataset.get(row.dataset))
            if row.dataset in by_dataset:
                left_out += row.left_out(by_dataset[row.dataset])
        unknown = [name for name in by_dataset if name not in {row.dataset for row in self.eval_rows}]
        if unknown:
            left_out.append(f"eval set(s) {', '.join(unknown)} (not one of {', '.join(dataset_ids('eval'))})")
        for name, field_widget in self.fields.items():
            field_widget.set_value(getattr(template, name))
        self.validate()
        return left_out

    def reset(self) -> None:
        """The paper's comparison: mono, cross and hybrid(0.5) at three sizes, 3 seeds, zero-shot sw and yo."""
        self.model_kind.setCurrentIndex(0)
        self._model_kind_changed()
        self.set_study(DEFAULT_STUDY)

    # ---- validation and preview ---------------------------------------------------------------
    def validate(self) -> StudyConfig | None:
        """Check the form now; show the problem beside its field; return the study when it is valid."""
        self._validate_timer.stop()
        for label in self._errors.values():
            label.show_message("")
        for row in self.eval_rows:
            row.error.show_message("")
        self.general_error.show_message("")
        self.zero_shot_warning.show_message("")
        self._show_sources_facts()
        try:
            study = self.study().validate()
            self._check_model_folder()
            if self.study_data is not None:
                self.study_data.check(study)
        except ConfigError as error:
            self.current_study = None
            self.preview.setText(f"Fix {self._show_error(error)}, marked in red: {error.message}")
            self.submit_button.setEnabled(False)
            self._downloads = []
            self._show_downloads()
            return None
        self.current_study = study
        self.zero_shot_warning.show_message(zero_shot_warning(study))
        self.preview.setText(f"{plan(study, self._estimate_device()).summary()}\n{estimate(study).gpu_summary()}")
        self._downloads = self.study_data.downloads(study) if self.study_data is not None else []
        self._show_downloads()
        self.submit_button.setEnabled(not self._submitting)
        return study

    def _show_downloads(self) -> None:
        """The hub files the study will download, and their size as far as it is known yet (never waited for)."""
        if not self._downloads:
            self.downloads.setVisible(False)
            return
        sizes = self._sizes.sizes(self._downloads, self._sizes_came_in)
        self.downloads.setText(downloads_text(sizes))
        self.downloads.setToolTip("\n".join(
            [f"{d.url}  ({'size unknown' if d.size is None else f'{d.size:,} bytes'})" for d in sizes.downloads]
            + ([f"The hub: {sizes.detail}"] if sizes.detail else [])))
        self.downloads.setVisible(True)
        if sizes.missing == "looking up the size":  # say "unknown" once the wait is over, answer or not
            QtCore.QTimer.singleShot(int(self._sizes.wait_s * 1000) + 50, self, self._show_downloads)

    def _sizes_came_in(self) -> None:
        """Called on the lookup's thread: hand over to this page's thread (unless the page is gone by now)."""
        try:
            self._sizes_arrived.emit()
        except RuntimeError:  # the page was closed and deleted while the hub was being asked
            pass

    def _show_sources_facts(self) -> None:
        """The largest valid size and each source's evaluated targets; shown whether or not the form is valid."""
        evaluations = tuple(spec for row in self.eval_rows if (spec := row.spec()) is not None)
        self.train_sources.show_zero_shot({lang for spec in evaluations for lang in spec.languages})
        sources = self.train_sources.sources()
        if not sources:
            self.size_hint.setText("")
            return
        try:
            sizes = parse_numbers(self.train_sizes.text(), int, "train sizes")
        except ListParseError:
            sizes = ()
        template = RunConfig(train_dataset=sources, evaluations=evaluations,
                             dev_every=self.fields["dev_every"].value())
        self.size_hint.setText(largest_size_text(template, max(sizes, default=None)))

    def _check_model_folder(self) -> None:
        """A local folder must exist here, with a model's config.json: a worker would fail on it."""
        if self.model_kind.currentData() != "folder":
            return
        folder = Path(self.model_spec()).expanduser()
        if not folder.is_dir():
            raise ConfigError("model", f"{folder}: no such folder; choose a Hugging Face model folder (Browse…)")
        if not (folder / "config.json").is_file():
            raise ConfigError("model", f"{folder} has no config.json: not a Hugging Face model folder")

    def _show_error(self, error: ConfigError) -> str:
        """Show ``error`` beside its field, opened and scrolled into view; return the field's name in words.

        The footer names the field too, so the message is never only in a part
        of the form the user cannot see.
        """
        field_name = _RUN_TO_STUDY_FIELD.get(error.field, error.field)
        if field_name.startswith("evaluations["):
            dataset = field_name[len("evaluations["):].split("]")[0]
            row = next((r for r in self.eval_rows if r.dataset == dataset), None)
            if row is not None:
                row.error.show_message(f"{dataset}: {error.message}")
                self._scroll_to(row.error)
                return f"the {dataset} evaluation row"
        label = self._errors.get(field_name)
        if label is None:
            self.general_error.show_message(str(error))
            return "the study"
        label.show_message(error.message)
        if field_name in self.fields:
            self.show_advanced.setChecked(True)
            self._scroll_to(label)
            return f"{self.fields[field_name].spec.label} in Advanced settings"
        self._scroll_to(label)
        return _FIELD_LABELS.get(field_name, field_name.replace("_", " "))

    def _scroll_to(self, widget: QtWidgets.QWidget) -> None:
        """Bring ``widget`` into view once the layout has made room for it (a just-opened section has no size yet)."""
        QtCore.QTimer.singleShot(0, self, lambda: self.scroll.ensureWidgetVisible(widget, 50, 50))

    def _estimate_device(self) -> str:
        device = self.device.currentText()
        return guess_device() if device == "auto" else device

    # ---- actions -------------------------------------------------------------------------------------
    def submit(self) -> None:
        """Queue the study in the background; a second request while one is under way is ignored."""
        if self._submitting:
            return
        study = self.validate()
        if study is None:
            return
        self._submitting = True
        self.submit_button.setEnabled(False)
        start_worker = self.start_worker.isChecked()

        def done(result: SubmitResult) -> None:
            self._submitting = False
            self.submit_button.setEnabled(True)
            self.submitted.emit(result.study_id, result.summary(), start_worker)

        def failed(error: BaseException) -> None:
            self._submitting = False
            self.submit_button.setEnabled(True)
            self.message.emit(f"Could not submit the study: {error}")

        self.app_model.submit_study(study, done, failed)

    def save_study(self, path: Path) -> None:
        """Write the form's study as JSON (``hybridscale submit`` reads it); raises ConfigError if invalid."""
        study = self.validate()
        if study is None:
            raise ConfigError("study", "the form has errors (marked in red); fix them before saving")
        Path(path).write_text(study.to_json() + "\n", encoding="utf-8")

    def load_study(self, path: Path) -> StudyConfig:
        """Fill the form from a study JSON file; raises ConfigError (with the field) or OSError.

        :attr:`left_out` then names what the file held that the form could not show.
        """
        study = StudyConfig.from_json(Path(path).read_text(encoding="utf-8"))
        self.left_out = self.set_study(study)
        return study


def zero_shot_warning(study: StudyConfig) -> str:
    """A warning when a training source trains on a target language (sw, yo) the study evaluates.

    The training languages are evaluated too (XQuAD-R), but as seen
    languages; the research question is about the targets, which the
    strategies must reach without training data in them. A language counts
    as trained on only where a ticked source has it (the runs' own rule,
    :func:`vocabulary.sources.trained_eval_languages`).
    """
    template = study.template
    trained = trained_eval_languages(template.train_sources, template.train_languages, template.evaluations)
    if not trained:
        return ""
    names = [parse_source(spec)[0] for spec in template.train_sources]
    by_source = "; ".join(
        f"{lang} from {', '.join(name for name in names if lang in DATASETS[name].languages)}" for lang in trained)
    both = {spec.dataset: [lang for lang in spec.languages if lang in trained] for spec in template.evaluations}
    parts = [f"{', '.join(languages)} on {dataset}" for dataset, languages in both.items() if languages]
    label = zero_shot_note(trained, template.ablation)
    if template.ablation:
        return (f"Trained on and evaluated: {'; '.join(parts)} ({by_source}). Ablation: the runs are labelled "
                f"[{label}].")
    return (f"Trained on and evaluated: {'; '.join(parts)} ({by_source}). These results are not zero-shot "
            f"(labelled [{label}]); untick {', '.join(trained)} under Training languages for a zero-shot study, or "
            "tick Ablation if that is the point.")

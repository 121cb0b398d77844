"""The study form's repeated parts: the "Advanced" run settings and one row per evaluation set.

The advanced settings are declared once, on their
:class:`vocabulary.config.RunConfig` fields (label, kind, help, bounds:
:mod:`vocabulary.settings`), and their widgets are generated from
:data:`ADVANCED_FIELDS`, so adding a setting to the form is part of declaring
it. Each widget reads and writes the config value itself, so the form never
needs to know how a field is edited.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets

from gui.form_widgets import CheckableComboBox, ErrorLabel, language_item_text
from vocabulary.config import DEFAULT_EVALUATIONS, ConfigError, EvalSpec, RunConfig
from vocabulary.datasets import DATASETS
from vocabulary.settings import FormField, form_fields

#: The Advanced section: every RunConfig setting declared with a form entry, in field order.
ADVANCED_FIELDS: tuple[FormField, ...] = form_fields(RunConfig)


class FieldWidget:
    """One generated editor: ``widget`` to lay out, ``value()``/``set_value()`` in config terms."""

    def __init__(self, spec: FormField, on_change) -> None:
        self.spec = spec
        self.error = ErrorLabel()
        kind = spec.kind
        if kind in ("float", "text"):
            self.widget = QtWidgets.QLineEdit()
            self.widget.textChanged.connect(on_change)
        elif kind in ("int", "optional_int"):
            self.widget = QtWidgets.QSpinBox()
            self.widget.setRange(spec.minimum, spec.maximum)
            if kind == "optional_int":
                self.widget.setSpecialValueText(spec.none_text)
            self.widget.valueChanged.connect(on_change)
        elif kind == "bool":
            self.widget = QtWidgets.QCheckBox()
            self.widget.toggled.connect(on_change)
        elif kind == "choice":
            self.widget = QtWidgets.QComboBox()
            self.widget.addItems(((spec.none_text,) if spec.none_text else ()) + spec.choices)
            self.widget.currentIndexChanged.connect(on_change)
        elif kind == "optional_text":
            self.unset = QtWidgets.QCheckBox(spec.none_text)
            self.text = QtWidgets.QLineEdit()
            self.unset.toggled.connect(lambda on: self.text.setEnabled(not on))
            self.unset.toggled.connect(on_change)
            self.text.textChanged.connect(on_change)
            self.widget = QtWidgets.QWidget()
            row = QtWidgets.QHBoxLayout(self.widget)
            row.setContentsMargins(0, 0, 0, 0)
            row.addWidget(self.unset)
            row.addWidget(self.text, 1)
        else:
            raise ValueError(f"advanced field {spec.name}: unknown kind {kind!r}")
        self.widget.setToolTip(spec.help)
        self.widget.setObjectName(spec.name)

    def value(self) -> Any:
        kind, widget = self.spec.kind, self.widget
        if kind == "float":
            text = widget.text().strip()
            try:
                return float(text)
            except ValueError:
                raise ConfigError(self.spec.name, f"{text!r} is not a number") from None
        if kind == "text":
            return widget.text()
        if kind == "int":
            return widget.value()
        if kind == "optional_int":
            return None if widget.value() == widget.minimum() else widget.value()
        if kind == "bool":
            return widget.isChecked()
        if kind == "optional_text":
            return None if self.unset.isChecked() else self.text.text()
        if self.spec.none_text and widget.currentText() == self.spec.none_text:
            return None
        return widget.currentText()

    def set_value(self, value: Any) -> None:
        kind, widget = self.spec.kind, self.widget
        if kind == "float":
            widget.setText(repr(float(value)))  # every digit: the form must not change a loaded study
        elif kind == "text":
            widget.setText(value)
        elif kind == "int":
            widget.setValue(int(value))
        elif kind == "optional_int":
            widget.setValue(widget.minimum() if value is None else int(value))
        elif kind == "bool":
            widget.setChecked(bool(value))
        elif kind == "optional_text":
            self.unset.setChecked(value is None)
            self.text.setText(value or "")
        else:
            widget.setCurrentText(self.spec.none_text if value is None else str(value))


#: EvalSpec settings set in a study file, not in the form; a loaded study keeps them.
_UNSHOWN_SPEC_FIELDS = ("passage_max_length", "symmetric", "corpus", "index", "vectors")


class EvalRow:
    """One evaluation set in the form: use it or not, its languages, split, query cap and local files."""

    def __init__(self, dataset: str, on_change) -> None:
        info = DATASETS[dataset]
        self.dataset = dataset
        self.use = QtWidgets.QCheckBox(dataset, toolTip=info.description)
        self.languages = CheckableComboBox(empty_text="choose languages")
        self.languages.set_entries([(code, language_item_text(code)) for code in info.languages], ())
        self.split = QtWidgets.QComboBox(toolTip="which split's queries and passages")
        self.split.addItems(info.splits)
        default = next((spec for spec in DEFAULT_EVALUATIONS if spec.dataset == dataset), None)
        self.split.setCurrentText(default.split if default is not None else info.default_eval_split)
        #: A loaded spec's settings the row has no widget for (passage length, symmetric, corpus), kept as they were.
        self._unshown: dict[str, object] = {}
        self.max_queries = QtWidgets.QSpinBox(
            toolTip="evaluate a fixed, deterministic subset of queries (the passage corpus is never cut)"
        )
        self.max_queries.setRange(0, 1_000_000)
        self.max_queries.setSpecialValueText("all queries")
        needs_corpus = dataset in ("miracl", "ciral")
        self.path = QtWidgets.QLineEdit(
            placeholderText="passage corpus file or folder (required offline)" if needs_corpus else "shipped copy",
            toolTip="local copy of this dataset's files" + (" — its passages are not shipped" if needs_corpus else ""),
        )
        self.browse = QtWidgets.QPushButton("…", maximumWidth=32,
                                            toolTip="choose a file (for a folder, type or paste its path)")
        self.browse.clicked.connect(self._choose_path)
        #: The corpus a run searches: its size where it is not shipped (the registry's count, with its source).
        self.corpus = QtWidgets.QLabel()
        self.error = ErrorLabel()
        self.use.toggled.connect(self._enable)
        self._show_corpus()
        for signal in (self.use.toggled, self.languages.changed, self.split.currentIndexChanged,
                       self.max_queries.valueChanged, self.path.textChanged):
            signal.connect(on_change)
        self._enable(False)

    def widgets(self) -> list[QtWidgets.QWidget]:
        return [self.use, self.languages, self.split, self.max_queries, self.path, self.browse, self.corpus]

    def _enable(self, on: bool) -> None:
        for widget in self.widgets()[1:]:
            widget.setEnabled(on)

    def _choose_path(self) -> None:
        chosen, _filter = QtWidgets.QFileDialog.getOpenFileName(
            self.use.window(), f"Local files for {self.dataset}", "", "Corpus files (*.jsonl *.tsv *.gz *.xz);;All files (*)"
        )
        if chosen:
            self.path.setText(chosen)

    def spec(self) -> EvalSpec | None:
        if not self.use.isChecked():
            return None
        cap = self.max_queries.value() or None
        return EvalSpec(self.dataset, self.languages.checked(), self.split.currentText(), cap,
                        self.path.text().strip() or None, **self._unshown)

    def left_out(self, spec: EvalSpec) -> list[str]:
        """What of ``spec`` this row cannot show: languages or a split the dataset does not have."""
        missing = [lang for lang in spec.languages if lang not in self.languages.values()]
        notes = [f"{self.dataset} language(s) {', '.join(missing)} (not in {self.dataset})"] if missing else []
        if self.split.findText(spec.split) < 0:
            notes.append(f"{self.dataset} split {spec.split!r} (it has {', '.join(DATASETS[self.dataset].splits)})")
        return notes

    def set_spec(self, spec: EvalSpec | None) -> None:
        self.use.setChecked(spec is not None)
        if spec is None:
            return
        self.languages.set_checked(spec.languages)
        self.split.setCurrentText(spec.split)
        self.max_queries.setValue(spec.max_queries or 0)
        self.path.setText(spec.path or "")
        self._unshown = {name: getattr(spec, name) for name in _UNSHOWN_SPEC_FIELDS}
        self._show_corpus()

    def _show_corpus(self) -> None:
        """The registry's corpus size, or the collection a loaded study searches instead (AfriQA's ``corpus``)."""
        info = DATASETS[self.dataset]
        collection = self._unshown.get("corpus")
        if collection:
            self.corpus.setText(f"collection {str(collection).rstrip('/').split('/')[-1]}")
            self.corpus.setToolTip(f"the study file's corpus: {collection} (not shipped)")
            return
        self.corpus.setText(info.corpus_text() or "shipped")
        self.corpus.setToolTip(f"counted in {info.corpus_source}" if info.corpus_source else
                               "its passages ship with hybridscale")


def eval_rows_grid(rows: list[EvalRow]) -> QtWidgets.QGridLayout:
    """The evaluation sets as a table: a header, then one line per set with its error beneath."""
    grid = QtWidgets.QGridLayout()
    titles = ("Set", "Languages", "Split", "Queries", "Local files", "", "Corpus")
    for column, title in enumerate(titles):
        header = QtWidgets.QLabel(f"<b>{title}</b>")
        grid.addWidget(header, 0, column)
    line = 1
    for row in rows:
        for column, widget in enumerate(row.widgets()):
            grid.addWidget(widget, line, column)
        grid.addWidget(row.error, line + 1, 0, 1, len(titles))
        line += 2
    grid.setColumnStretch(4, 1)
    grid.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
    return grid

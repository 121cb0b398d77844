"""The form's training sources: every registered source with its size and languages, several may be ticked.

A run's ``train_dataset`` is an ordered list (the first source's dev split
gives the dev loss, and a size's split gives ties to the earlier source), so
the control keeps the order in which sources were ticked, or loaded, rather
than the registry's. Each source takes an optional local path (required for
``file``), written into the study as ``NAME:PATH``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from PySide6 import QtCore, QtWidgets

from gui.form_widgets import WARNING_COLOUR
from results.wording import plural
from vocabulary.datasets import DATASETS, dataset_ids
from vocabulary.languages import TARGET_LANGUAGES
from vocabulary.sources import SOURCE_SEPARATOR, parse_source

#: What the path field of a source holds; the sources not listed read a shipped copy when it is empty.
_PATH_PLACEHOLDERS = {
    "mmarco": "a local copy of mMARCO's folders (empty: the Hub, online)",
    "miracl-train": "MIRACL sw passage corpus file (empty: the Hub, online)",
    "file": "your JSONL or TSV file (required)",
}
#: Sources whose path is a folder, not a file (the Browse button asks for one).
_FOLDER_SOURCES = frozenset({"mmarco"})


def source_text(name: str) -> str:
    """``xquad — 698 groups, 12 languages`` (what the registry knows before anything is read)."""
    info = DATASETS[name]
    groups = info.train_groups.get("train")
    size = plural(groups, "group") if groups is not None else "size known after reading"
    languages = "any language" if name == "file" else plural(len(info.languages), "language")
    note = ", monolingual" if info.monolingual else ""
    return f"{name} — {size}, {languages}{note}"


class SourceRow:
    """One training source: tick it, and optionally point it at local files."""

    def __init__(self, name: str, on_toggle, on_change) -> None:
        info = DATASETS[name]
        self.name = name
        self.use = QtWidgets.QCheckBox(source_text(name))
        self.use.setToolTip(f"{info.description}\nLanguages: {', '.join(info.languages)}")
        self.path = QtWidgets.QLineEdit(placeholderText=_PATH_PLACEHOLDERS.get(name, "shipped copy"),
                                        toolTip=f"local files of {name}")
        self.browse = QtWidgets.QPushButton("…", maximumWidth=32, toolTip=f"choose {name}'s local files")
        self.browse.clicked.connect(self._choose_path)
        #: Evaluated targets this source has: they stop being zero-shot if it trains on them.
        self.zero_shot = QtWidgets.QLabel(styleSheet=f"color: {WARNING_COLOUR};")
        self.use.toggled.connect(lambda on: on_toggle(self, on))
        self.use.toggled.connect(self._enable)
        self.path.textChanged.connect(on_change)
        self._enable(False)

    def widgets(self) -> list[QtWidgets.QWidget]:
        return [self.use, self.zero_shot, self.path, self.browse]

    def _enable(self, on: bool) -> None:
        self.path.setEnabled(on)
        self.browse.setEnabled(on)

    def _choose_path(self) -> None:
        window = self.use.window()
        if self.name in _FOLDER_SOURCES:
            chosen = QtWidgets.QFileDialog.getExistingDirectory(window, f"Local copy of {self.name}")
        else:
            chosen, _filter = QtWidgets.QFileDialog.getOpenFileName(
                window, f"Local file for {self.name}", "", "Data files (*.jsonl *.json *.tsv *.gz *.xz);;All files (*)")
        if chosen:
            self.path.setText(chosen)

    def spec(self) -> str:
        """``NAME`` or ``NAME:PATH``."""
        path = self.path.text().strip()
        return f"{self.name}{SOURCE_SEPARATOR}{path}" if path else self.name

    def show_zero_shot(self, evaluated_targets: Iterable[str]) -> None:
        at_risk = [lang for lang in DATASETS[self.name].languages if lang in set(evaluated_targets)]
        self.zero_shot.setText(f"has evaluated {', '.join(at_risk)}" if at_risk else "")
        self.zero_shot.setToolTip(f"training {self.name} on {', '.join(at_risk)} makes those results not zero-shot"
                                  if at_risk else "")


class TrainingSources(QtWidgets.QWidget):
    """The training sources as a table of rows; ``changed`` fires on every tick or path edit."""

    changed = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.rows = [SourceRow(name, self._toggled, lambda *_args: self.changed.emit()) for name in dataset_ids("train")]
        self._order: list[SourceRow] = []
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for line, row in enumerate(self.rows):
            for column, widget in enumerate(row.widgets()):
                grid.addWidget(widget, line, column)
        grid.setColumnStretch(2, 1)

    def _toggled(self, row: SourceRow, on: bool) -> None:
        if on and row not in self._order:
            self._order.append(row)
        elif not on and row in self._order:
            self._order.remove(row)
        self.changed.emit()

    def row(self, name: str) -> SourceRow:
        return next(row for row in self.rows if row.name == name)

    def names(self) -> tuple[str, ...]:
        """The ticked sources' names, in the order they were ticked."""
        return tuple(row.name for row in self._order)

    def sources(self) -> tuple[str, ...]:
        """What ``train_dataset`` holds: each ticked source as ``NAME`` or ``NAME:PATH``, in order."""
        return tuple(row.spec() for row in self._order)

    def languages(self) -> tuple[str, ...]:
        """Every language some ticked source has, sorted."""
        return tuple(sorted({lang for row in self._order for lang in DATASETS[row.name].languages}))

    def set_sources(self, specs: Sequence[str]) -> list[str]:
        """Tick ``specs`` in their order; return what the rows cannot show (an unknown source, one named twice)."""
        wanted: list[tuple[SourceRow, str | None]] = []
        left_out = []
        for spec in specs:
            name, path = parse_source(spec)
            row = next((r for r in self.rows if r.name == name), None)
            if row is None:
                left_out.append(f"training source {spec!r} (not one of {', '.join(r.name for r in self.rows)})")
            elif any(r is row for r, _path in wanted):
                left_out.append(f"training source {spec!r} (the form shows one {name} source; edit the study file "
                                "for more)")
            else:
                wanted.append((row, path))
        self.blockSignals(True)
        self._order.clear()
        for row in self.rows:
            row.use.setChecked(False)
        for row, path in wanted:
            row.path.setText(path or "")
            row.use.setChecked(True)
        for row in self.rows:
            if row not in self._order:
                row.path.clear()
        self.blockSignals(False)
        self.changed.emit()
        return left_out

    def show_zero_shot(self, evaluated: Iterable[str]) -> None:
        """Mark each source that has an evaluated target language (sw, yo)."""
        targets = [lang for lang in set(evaluated) if lang in TARGET_LANGUAGES]
        for row in self.rows:
            row.show_zero_shot(targets)

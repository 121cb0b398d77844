"""The folder every file dialog of the window opens in: the last one a file was chosen in (kept in the settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6 import QtCore


class RememberedFolder:
    """The window's one starting folder for open and save dialogs.

    Until a file is chosen it is ``first()``: the open database's folder,
    where the demo wrote its report and plots, rather than the home folder.
    """

    def __init__(self, settings: QtCore.QSettings, first: Callable[[], Path | None] = lambda: None):
        self.settings = settings
        self.first = first

    def path(self) -> str:
        remembered = self.settings.value("folder")
        return str(remembered) if remembered else str(self.first() or Path.home())

    def suggest(self, file_name: str) -> str:
        """``file_name`` in the remembered folder: what a save dialog proposes."""
        return str(Path(self.path()) / file_name)

    def remember(self, chosen: str) -> None:
        """Open the next dialog where ``chosen`` (a file just picked) lies."""
        self.settings.setValue("folder", str(Path(chosen).parent))

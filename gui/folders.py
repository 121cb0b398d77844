"""The folder every file dialog of the window opens in: the last one a file was chosen in (kept in the settings)."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore


class RememberedFolder:
    """The window's one starting folder for open and save dialogs (the home folder until a file is chosen)."""

    def __init__(self, settings: QtCore.QSettings):
        self.settings = settings

    def path(self) -> str:
        return str(self.settings.value("folder", str(Path.home())))

    def suggest(self, file_name: str) -> str:
        """``file_name`` in the remembered folder: what a save dialog proposes."""
        return str(Path(self.path()) / file_name)

    def remember(self, chosen: str) -> None:
        """Open the next dialog where ``chosen`` (a file just picked) lies."""
        self.settings.setValue("folder", str(Path(chosen).parent))

"""Name the system libraries Qt's X11 plugin lacks, before Qt aborts with a generic message.

On a fresh Debian or Ubuntu machine PySide6's X11 platform plugin (xcb) often
cannot load: it needs xcb libraries that a minimal desktop does not install
(``libxcb-cursor0``, ``libxcb-icccm4``, ``libxcb-keysyms1``, ...). Qt then
prints "Could not load the Qt platform plugin "xcb" ... even though it was
found" and aborts the process, naming none of them. This module loads the
plugin the way Qt would (``dlopen``, through ctypes) before any QApplication
exists; when that fails, it names every missing library and the ``apt``
line that installs it.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from pathlib import Path

from PySide6 import QtCore

from gui.qt_check import BrokenQtError

PLUGIN_FILE = "libqxcb.so"
#: The system libraries PySide6's xcb plugin and its libQt6XcbQpa load (their ELF "NEEDED" entries, Qt 6.11):
#: after the first one dlopen names, the others are tried one by one, so one message names them all.
XCB_PLUGIN_LIBRARIES: tuple[str, ...] = (
    "libxcb.so.1", "libX11.so.6", "libX11-xcb.so.1", "libxkbcommon.so.0", "libxkbcommon-x11.so.0",
    "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-util.so.1", "libxcb-image.so.0", "libxcb-keysyms.so.1",
    "libxcb-randr.so.0", "libxcb-render.so.0", "libxcb-render-util.so.0", "libxcb-shape.so.0", "libxcb-shm.so.0",
    "libxcb-sync.so.1", "libxcb-xfixes.so.0", "libxcb-xkb.so.1", "libGL.so.1", "libglib-2.0.so.0",
    "libgthread-2.0.so.0",
)
#: Debian packages whose names do not follow the library-package rule of :func:`debian_package`.
DEBIAN_EXCEPTIONS = {"libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0"}
_NOT_FOUND = re.compile(r"([\w.+-]+\.so(?:\.\d+)*): cannot open shared object file")


class MissingDisplayLibraries(BrokenQtError):
    """Qt's X11 plugin cannot load on this machine; the message names the libraries and their packages."""


def debian_package(soname: str) -> str:
    """The Debian package of a shared library: its name and major version (``libxcb-icccm.so.4`` -> ``libxcb-icccm4``).

    Debian policy names a library package after the soname, with a hyphen
    before the version when the name ends in a digit (``libxkbcommon-x11-0``).
    """
    if soname in DEBIAN_EXCEPTIONS:
        return DEBIAN_EXCEPTIONS[soname]
    name, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    return (name + ("-" if name[-1:].isdigit() else "") + version).lower()


def _loads(library: str) -> str | None:
    """None when ``library`` loads, else the loader's message."""
    try:
        ctypes.CDLL(library)
    except OSError as error:
        return str(error)
    return None


def missing_libraries(plugin: Path) -> tuple[list[str], str]:
    """(sonames the plugin lacks, the loader's message) when ``plugin`` cannot be loaded; ([], '') when it can."""
    error = _loads(str(plugin))
    if error is None:
        return [], ""
    first = _NOT_FOUND.search(error)
    missing = [first.group(1)] if first else []
    missing += [name for name in XCB_PLUGIN_LIBRARIES if name not in missing and _loads(name) is not None]
    return missing, error


def xcb_plugin() -> Path:
    """Where Qt will look for its xcb plugin: $QT_QPA_PLATFORM_PLUGIN_PATH, else PySide6's plugin folder."""
    folder = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if folder:
        return Path(folder) / PLUGIN_FILE
    plugins = QtCore.QLibraryInfo.path(QtCore.QLibraryInfo.LibraryPath.PluginsPath)
    return Path(plugins) / "platforms" / PLUGIN_FILE


def uses_xcb() -> bool:
    """Whether a QApplication made now would open an X11 display through the xcb plugin.

    Qt's own choice (QGuiApplication): QT_QPA_PLATFORM if set, else xcb,
    except in a Wayland session that is not GNOME's, where it takes wayland.
    """
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or not os.environ.get("DISPLAY") or platform not in ("", "xcb"):
        return False
    desktops = (os.environ.get("XDG_CURRENT_DESKTOP", "") + os.environ.get("XDG_SESSION_DESKTOP", "")).lower()
    wayland = os.environ.get("XDG_SESSION_TYPE") == "wayland" and "gnome" not in desktops
    return platform == "xcb" or not wayland


def check_display() -> None:
    """Raise :class:`MissingDisplayLibraries` naming the missing libraries, where Qt would abort without naming them."""
    plugin = xcb_plugin()
    if not uses_xcb() or not plugin.is_file():
        return
    missing, error = missing_libraries(plugin)
    if not error:
        return
    if not missing:
        raise MissingDisplayLibraries(f"Qt's X11 display plugin {plugin} cannot be loaded ({error}); "
                                      "or run without a display: QT_QPA_PLATFORM=offscreen")
    packages = " ".join(dict.fromkeys(debian_package(name) for name in missing))
    raise MissingDisplayLibraries(
        f"Qt's X11 display plugin cannot load: {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} missing. Install with: sudo apt install {packages} "
        "(Debian/Ubuntu; elsewhere the packages that provide these files)"
    )

"""Let pyqtgraph 0.14's SVGExporter read the closed paths that Qt >= 6.10 writes.

Qt's SVG generator now ends closed paths with ``Z``; pyqtgraph's
``correctCoordinates`` parses every path token as ``x,y`` and raises
"not enough values to unpack" on it, so every SVG export fails
(pyqtgraph issue #3495, fixed upstream by PR #3458, not in 0.14.0).

Rather than rewrite the exporter, :func:`install` wraps that one function:
the ``Z`` tokens are taken out before pyqtgraph maps the coordinates (it maps
token by token, so their places are kept) and put back afterwards. With a
pyqtgraph that handles ``Z`` itself the wrapper changes nothing; with one that
no longer has the function it is not installed.
"""

from __future__ import annotations

import sys
from typing import Callable

_CLOSE = "Z"


def _strip_close_commands(node) -> list[tuple[object, list[int]]]:
    stripped = []
    for path in node.getElementsByTagName("path"):
        tokens = path.getAttribute("d").strip().split(" ")
        places = [i for i, token in enumerate(tokens) if token.upper() == _CLOSE]
        if places:
            path.setAttribute("d", " ".join(t for t in tokens if t.upper() != _CLOSE))
            stripped.append((path, places))
    return stripped


def _restore_close_commands(stripped: list[tuple[object, list[int]]]) -> None:
    for path, places in stripped:
        tokens = path.getAttribute("d").strip().split(" ")
        for place in places:
            tokens.insert(place, _CLOSE)
        path.setAttribute("d", " ".join(tokens))


def _wrap(correct: Callable) -> Callable:
    def correct_coordinates(node, defs, item, options):
        stripped = _strip_close_commands(node)
        try:
            return correct(node, defs, item, options)
        finally:
            _restore_close_commands(stripped)

    correct_coordinates.wrapped_for_close_paths = True
    return correct_coordinates


def install() -> None:
    """Wrap ``pyqtgraph.exporters.SVGExporter.correctCoordinates`` once (idempotent)."""
    import pyqtgraph.exporters  # noqa: F401  (loads the exporter module)

    module = sys.modules.get("pyqtgraph.exporters.SVGExporter")
    correct = getattr(module, "correctCoordinates", None)
    if correct is None or getattr(correct, "wrapped_for_close_paths", False):
        return
    module.correctCoordinates = _wrap(correct)
